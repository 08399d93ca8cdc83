"""The calibration report: simulated totals beside the seed's published figures (docs/domain.md),
with the relative error of each and the tolerance it is held to.

The seed's figures: in 2016, 3,997 community service projects completed at a cost of 32,718,400
yuan, against a fund of 119 x 300,000 yuan; since 2015, 5,460 consultation activities of which
3,372 round tables, and 202,105 person-times (an earlier count, from July 2015: 2,400 activities,
350 round tables, 40,000 person-times, shown beside them). A *project* is a measure carried out
with fund money. The activity counts are cumulative, so only their ratios are compared: the
round-table share of activities and the person-times per activity.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import attrs

from .results import Results, Totals
from .runner import simulate
from .scenario import Scenario

__all__ = ["SEED", "Calibration", "Check", "calibrate", "fit"]


@attrs.frozen(slots=True)
class SeedFigures:
    projects: int = 3_997
    spent_yuan: Decimal = Decimal(32_718_400)
    fund_yuan: Decimal = Decimal(119 * 300_000)
    activities: int = 5_460
    round_tables: int = 3_372
    person_times: int = 202_105
    earlier_activities: int = 2_400
    earlier_round_tables: int = 350
    earlier_person_times: int = 40_000


SEED = SeedFigures()


@attrs.frozen(slots=True)
class Check:
    """One quantity: simulated, the seed's figure, the error, and whether it is within tolerance.
    ``relative`` tolerances compare (sim - seed) / seed; absolute ones sim - seed."""

    quantity: str
    simulated: float
    seed: float
    tolerance: float
    relative: bool
    earlier: float | None = None  # the earlier count's figure, shown beside

    @property
    def error(self) -> float:
        diff = self.simulated - self.seed
        return diff / self.seed if self.relative else diff

    @property
    def within(self) -> bool:
        return abs(self.error) <= self.tolerance + 1e-12


@attrs.frozen(slots=True)
class Calibration:
    """The calibration report of one run: the checks, and which parameters were fitted."""

    scenario: str
    seed: int
    totals: Totals
    checks: tuple[Check, ...]
    fitted: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return all(c.within for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seed": self.seed,
            "ok": self.ok,
            "totals": self.totals.as_dict(),
            "checks": [
                {
                    "quantity": c.quantity,
                    "simulated": round(c.simulated, 4),
                    "seed": c.seed,
                    "earlier_count": c.earlier,
                    "error": round(c.error, 4),
                    "error_kind": "relative" if c.relative else "absolute",
                    "tolerance": c.tolerance,
                    "within": c.within,
                }
                for c in self.checks
            ],
            "fitted": list(self.fitted),
        }

    def text(self) -> str:
        lines = [f"calibration of {self.scenario} (seed {self.seed}) against the seed's published figures", ""]
        lines.append(f"  {'quantity':<34} {'simulated':>14} {'seed':>14} {'earlier':>10} {'error':>9} {'tol':>7}  ok")
        for c in self.checks:
            err = f"{c.error:+.1%}" if c.relative else f"{c.error:+.3f}"
            tol = f"{c.tolerance:.0%}" if c.relative else f"{c.tolerance:.2f}"
            earlier = "" if c.earlier is None else f"{c.earlier:,.3g}"
            lines.append(
                f"  {c.quantity:<34} {c.simulated:>14,.3f} {c.seed:>14,.3f} {earlier:>10} {err:>9} {tol:>7}"
                f"  {'yes' if c.within else 'NO'}"
            )
        t = self.totals
        lines += [
            "",
            f"  fund: {t.fund_yuan:,.0f} yuan (spent {t.spent_yuan / t.fund_yuan:.1%} of it);"
            f" {t.consultations:,} consultations, {t.activities:,} activities",
            f"  fitted (calibration.fit): {', '.join(self.fitted)}",
            "  the activity counts are cumulative since 2015, so only their ratios are compared",
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(c.quantity)}</td><td>{c.simulated:,.3f}</td><td>{c.seed:,.3f}</td>"
            f"<td>{c.error:+.3f}</td><td>{'yes' if c.within else 'NO'}</td></tr>"
            for c in self.checks
        )
        return (
            f"<b>calibration of {html.escape(self.scenario)}</b> (seed {self.seed})<table>"
            "<tr><th>quantity</th><th>simulated</th><th>seed</th><th>error</th><th>within</th></tr>"
            f"{rows}</table><small>fitted: {html.escape(', '.join(self.fitted))}</small>"
        )


def calibrate(results: Results, fitted: Sequence[str] | None = None) -> Calibration:
    """The calibration report of ``results``: projects and spend within 10 %, the round-table share
    within 0.1, person-times per activity within 20 %."""
    if fitted is None:
        from .presets import FITTED

        fitted = tuple(FITTED) if results.scenario.name == "gulou-2016" else ()
    t = results.totals()
    activities = max(t.activities, 1)
    checks = (
        Check("projects (2016)", float(t.projects), float(SEED.projects), 0.10, True),
        Check("spent, yuan (2016)", float(t.spent_yuan), float(SEED.spent_yuan), 0.10, True),
        Check(
            "round-table share of activities",
            t.round_tables / activities,
            SEED.round_tables / SEED.activities,
            0.10,
            False,
            SEED.earlier_round_tables / SEED.earlier_activities,
        ),
        Check(
            "person-times per activity",
            t.person_times / activities,
            SEED.person_times / SEED.activities,
            0.20,
            True,
            SEED.earlier_person_times / SEED.earlier_activities,
        ),
    )
    return Calibration(results.scenario.name, results.seed, t, checks, tuple(fitted))


def fit(scenario: Scenario, seed: int = 2016, passes: int = 3) -> tuple[Scenario, dict[str, float]]:
    """Fit four parameters of ``scenario`` to the seed's figures by proportional passes: the
    arrival rates (projects), the mean budget of a measure (spend), the round tables' weight among
    offline meetings (their share) and the crowd at a meeting (person-times per activity).
    Returns the fitted scenario and the fitted values, as dotted field names."""
    current = scenario
    values: dict[str, float] = {}
    for _ in range(passes):
        t = simulate(current, seed).totals()
        activities = max(t.activities, 1)
        projects = max(t.projects, 1)
        spent_per_project = float(t.spent_yuan) / projects
        share = t.round_tables / activities
        per_activity = t.person_times / activities
        arrivals = {k: round(v * SEED.projects / projects, 3) for k, v in current.arrivals.items()}
        budget = float(current.funds.measure_budget) * (float(SEED.spent_yuan) / SEED.projects) / spent_per_project
        formats = dict(current.formats)
        rt = [k for k in formats if k.value == "round_table"]
        target = SEED.round_tables / SEED.activities
        if rt and 0 < share < 1:
            other = sum(w for k, w in formats.items() if k.value != "round_table")
            offline_share = share * (formats[rt[0]] + other) / formats[rt[0]]  # rounds at offline meetings
            want = target / max(offline_share, 1e-9)  # round tables' share among offline meetings
            if 0 < want < 1:
                formats[rt[0]] = round(other * want / (1 - want), 3)
        crowd = max(0.0, current.attendance.crowd + (SEED.person_times / SEED.activities - per_activity))
        current = current.replace(
            arrivals=arrivals,
            formats={k.value: v for k, v in formats.items()},
            **{"funds.measure_budget": str(round(budget)), "attendance.crowd": round(crowd, 2)},
        )
        values = {f"arrivals.{k}": v for k, v in arrivals.items()}
        values.update(
            {
                "funds.measure_budget": float(round(budget)),
                "formats.round_table": formats[rt[0]] if rt else 0.0,
                "attendance.crowd": round(crowd, 2),
            }
        )
    return current, values
