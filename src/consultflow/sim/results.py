"""What a simulation gives back: one row per consultation, aggregates, exports, plots.

``Results`` needs nothing beyond consultflow for its rows, totals, aggregates and CSV; pandas,
pyarrow and matplotlib (the ``sim`` extra) are imported only by ``to_pandas``, ``to_parquet`` and
the plots. Money is kept exact (``Decimal``) and written as text; every export is deterministic,
so the same scenario and seed give the same bytes.
"""

from __future__ import annotations

import csv
import hashlib
import html
import io
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..errors import InvalidInput
from ..log import LogEntry

if TYPE_CHECKING:  # pragma: no cover
    from .scenario import Scenario

__all__ = ["COLUMNS", "FORMAT_COLUMNS", "Outcome", "Results", "Timeline", "Totals", "need"]


@attrs.frozen(slots=True)
class Outcome:
    """One simulated consultation, read off its final record (and the steps that made it)."""

    id: str
    community: str
    sub_district: str
    year: int
    month: int
    topic: str
    category: str
    form: str
    carrier: str
    major: bool
    state: str
    ending: str  # done, ruling, rejected, withdrawn; empty if still open at the end
    rounds: int  # meetings held (activities)
    cycles: int
    unlawful: int  # decisions found unlawful and corrected (依法纠正)
    escalations: int
    refusals: int  # commands the procedure refused
    days_to_decision: float | None  # to the decision that took effect
    days_to_close: float | None
    participants: int  # distinct people at any round
    person_times: int  # attendances summed over rounds (人次)
    online_person_times: int
    round_table: int  # rounds by format
    heart_to_heart: int
    review: int
    hearing: int
    deliberation: int
    online: int
    measures: int  # measures decided, in every decision
    projects: int  # measures carried out with fund money (spent > 0, reported done)
    budget: Decimal  # of the decision in force
    spent: Decimal
    steps: int  # log entries


COLUMNS: tuple[str, ...] = tuple(a.name for a in attrs.fields(Outcome))
FORMAT_COLUMNS: tuple[str, ...] = ("round_table", "heart_to_heart", "review", "hearing", "deliberation", "online")
_SUMMED = (
    "rounds",
    "unlawful",
    "escalations",
    "refusals",
    "person_times",
    "online_person_times",
    *FORMAT_COLUMNS,
    "measures",
    "projects",
    "budget",
    "spent",
    "steps",
)


def need(module: str) -> Any:
    """Import an optional dependency of the ``sim`` extra, or say how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InvalidInput(
            f"this needs {module.split('.', maxsplit=1)[0]}: pip install 'consultflow[sim]'", code="missing_extra"
        ) from None


@attrs.frozen(slots=True)
class Totals:
    """The district's totals: what the CLI prints and the calibration compares with the seed."""

    consultations: int
    activities: int
    round_tables: int
    person_times: int
    projects: int
    spent_yuan: Decimal
    fund_yuan: Decimal

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: money as a number of yuan with two decimals (exact, from the Decimal)."""
        return {
            "consultations": self.consultations,
            "activities": self.activities,
            "round_tables": self.round_tables,
            "person_times": self.person_times,
            "projects": self.projects,
            "spent_yuan": float(self.spent_yuan),
            "fund_yuan": float(self.fund_yuan),
        }


@attrs.frozen(slots=True)
class Timeline:
    """One simulated consultation's log as people read it (``consultflow show``'s timeline), and
    whether its chain verifies; shown as HTML in a notebook."""

    consultation: str
    entries: tuple[LogEntry, ...]
    lang: str = "en"

    def lines(self) -> list[str]:
        from ..timeline import format_timeline

        return format_timeline(self.entries, "zh" if self.lang == "zh" else "en")

    def verified(self) -> bool:
        from ..log import verify

        last = self.entries[-1].hash if self.entries else None
        return verify(self.entries, head=last, version=len(self.entries)).ok

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def _repr_html_(self) -> str:
        mark = "chain verifies" if self.verified() else "CHAIN DOES NOT VERIFY"
        body = html.escape("\n".join(self.lines()))
        return f"<b>{html.escape(self.consultation)}</b> ({len(self.entries)} entries, {mark})<pre>{body}</pre>"


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Results:
    """The outcome of one simulation: the scenario, the seed and a row per consultation.

    ``rows()`` and ``columns()`` give the table in plain Python; ``to_pandas()`` a DataFrame;
    ``by_community()`` and ``by_year()`` the aggregates; ``to_csv``/``to_parquet`` export it;
    ``logs`` (with ``keep_logs=True``) holds every consultation's log entries.
    """

    __slots__ = ("logs", "outcomes", "scenario", "seed")

    def __init__(
        self,
        *,
        scenario: Scenario,
        seed: int,
        outcomes: Sequence[Outcome],
        logs: Mapping[str, tuple[LogEntry, ...]] | None = None,
    ) -> None:
        self.scenario = scenario
        self.seed = seed
        self.outcomes = tuple(outcomes)
        self.logs = logs

    def __len__(self) -> int:
        return len(self.outcomes)

    def __iter__(self) -> Iterator[Outcome]:
        return iter(self.outcomes)

    # ---- the table --------------------------------------------------------------------------------------
    def rows(self) -> list[dict[str, Any]]:
        return [attrs.asdict(o) for o in self.outcomes]

    def column(self, name: str) -> list[Any]:
        if name not in COLUMNS:
            raise InvalidInput(f"unknown column {name!r}; columns: {', '.join(COLUMNS)}", code="unknown_column")
        return [getattr(o, name) for o in self.outcomes]

    def totals(self) -> Totals:
        o = self.outcomes
        communities = len(self.scenario.community_specs())
        years = Decimal(self.scenario.months) / Decimal(12)
        fund = (self.scenario.funds.yearly_fund * communities * years).quantize(Decimal("0.01"))
        return Totals(
            consultations=len(o),
            activities=sum(x.rounds for x in o),
            round_tables=sum(x.round_table for x in o),
            person_times=sum(x.person_times for x in o),
            projects=sum(x.projects for x in o),
            spent_yuan=sum((x.spent for x in o), Decimal(0)),
            fund_yuan=fund,
        )

    def aggregate(self, *keys: str) -> list[dict[str, Any]]:
        """Sums of the countable columns grouped by ``keys`` (e.g. ``"community"``, ``"year"``),
        with the number of consultations and of those closed, in order of the keys."""
        for key in keys:
            if key not in COLUMNS:
                raise InvalidInput(f"unknown column {key!r}; columns: {', '.join(COLUMNS)}", code="unknown_column")
        groups: dict[tuple[Any, ...], dict[str, Any]] = {}
        for o in self.outcomes:
            k = tuple(getattr(o, key) for key in keys)
            g = groups.get(k)
            if g is None:
                g = groups[k] = {key: v for key, v in zip(keys, k, strict=True)}
                g.update({"consultations": 0, "closed": 0})
                g.update({c: 0 for c in _SUMMED})
                g["budget"] = g["spent"] = Decimal(0)
            g["consultations"] += 1
            g["closed"] += o.state == "closed"
            for c in _SUMMED:
                g[c] += getattr(o, c)
        return [groups[k] for k in sorted(groups)]

    def by_community(self) -> list[dict[str, Any]]:
        return self.aggregate("sub_district", "community")

    def by_year(self) -> list[dict[str, Any]]:
        return self.aggregate("year")

    def timeline(self, consultation: str, lang: str = "en") -> Timeline:
        """One consultation's timeline (needs ``simulate(..., keep_logs=True)``)."""
        if self.logs is None:
            raise InvalidInput(
                "these results kept no logs: simulate(..., keep_logs=True) to read timelines", code="no_logs"
            )
        entries = self.logs.get(consultation)
        if entries is None:
            raise InvalidInput(f"no consultation {consultation!r} in these results", code="unknown_consultation")
        return Timeline(consultation, entries, lang)

    # ---- exports ----------------------------------------------------------------------------------------
    def to_csv(self, path: str | Path | None = None) -> str:
        """The table as CSV (one header line, a row per consultation); written to ``path`` if given."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(COLUMNS)
        for o in self.outcomes:
            writer.writerow([_cell(getattr(o, c)) for c in COLUMNS])
        text = buffer.getvalue()
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    def digest(self) -> str:
        """SHA-256 of the CSV: equal digests, equal results."""
        return hashlib.sha256(self.to_csv().encode()).hexdigest()

    def to_pandas(self) -> Any:
        """A pandas DataFrame, a row per consultation (money as float yuan; needs the ``sim`` extra)."""
        pd = need("pandas")
        data = {c: self.column(c) for c in COLUMNS}
        for c in ("budget", "spent"):
            data[c] = [float(v) for v in data[c]]
        frame = pd.DataFrame(data, columns=list(COLUMNS))
        for c in ("days_to_decision", "days_to_close"):
            frame[c] = frame[c].astype("float64")
        return frame

    def to_parquet(self, path: str | Path) -> None:
        """The table as Parquet (needs pyarrow, in the ``sim`` extra)."""
        need("pyarrow")
        self.to_pandas().to_parquet(path, index=False)

    # ---- plots --------------------------------------------------------------------------------------------
    def plot_distributions(self, columns: Sequence[str] = ("rounds", "person_times", "days_to_close")) -> Any:
        """Histograms of ``columns``, one panel each; returns the matplotlib Figure."""
        plt = need("matplotlib.pyplot")
        fig, axes = plt.subplots(1, len(columns), figsize=(4 * len(columns), 3), squeeze=False)
        for ax, name in zip(axes[0], columns, strict=True):
            values = [v for v in self.column(name) if v is not None]
            ax.hist([float(v) for v in values], bins=20)
            ax.set_title(name)
            ax.set_ylabel("consultations")
        fig.tight_layout()
        return fig

    def plot_rounds_to_consensus(self) -> Any:
        """How many rounds the consultations that reached a decision needed (bar chart)."""
        plt = need("matplotlib.pyplot")
        counts: dict[int, int] = {}
        for o in self.outcomes:
            if o.days_to_decision is not None:
                counts[o.rounds] = counts.get(o.rounds, 0) + 1
        fig, ax = plt.subplots(figsize=(5, 3))
        keys = sorted(counts)
        ax.bar([str(k) for k in keys], [counts[k] for k in keys])
        ax.set_xlabel("rounds")
        ax.set_ylabel("consultations decided")
        ax.set_title("rounds to a decision in force")
        fig.tight_layout()
        return fig

    # ---- display ------------------------------------------------------------------------------------------
    def __repr__(self) -> str:
        t = self.totals()
        return (
            f"Results({self.scenario.name!r}, seed={self.seed}, {t.consultations} consultations, "
            f"{t.activities} activities, {t.projects} projects)"
        )

    def _repr_html_(self) -> str:
        t = self.totals().as_dict()
        head = "".join(f"<th>{html.escape(k)}</th>" for k in t)
        cells = "".join(f"<td>{v:,}</td>" for v in t.values())
        sample = self.outcomes[:10]
        cols = ("id", "community", "topic", "form", "carrier", "state", "rounds", "person_times", "projects", "spent")
        rows = "".join(
            "<tr>" + "".join(f"<td>{html.escape(_cell(getattr(o, c)))}</td>" for c in cols) + "</tr>" for o in sample
        )
        return (
            f"<div><b>{html.escape(self.scenario.name)}</b>, seed {self.seed}"
            f"<table><tr>{head}</tr><tr>{cells}</tr></table>"
            f"<table><tr>{''.join(f'<th>{c}</th>' for c in cols)}</tr>{rows}</table>"
            f"<small>first {len(sample)} of {len(self.outcomes)} consultations</small></div>"
        )
