"""The library's errors. Every failure a caller can meet is one of these, with a message that says
what to do; a driver's or a validator's exception never leaks through the engine.

``Refused`` (a command the procedure does not allow) lives in ``consultflow.refusals``.
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "ConsultflowError",
    "FundConflict",
    "IntegrityError",
    "InvalidInput",
    "NoFundLedger",
    "NotFound",
    "ProcedureDefinitionError",
    "StoreUnavailable",
    "UnknownProcedure",
    "ValidationError",
]


class ConsultflowError(Exception):
    """Base of every error the library raises on purpose. ``code`` is stable, for programs;
    ``explain(lang)`` says it to a person (in Chinese where the error has a Chinese text)."""

    code: str = "error"

    def explain(self, lang: str = "en") -> str:
        return str(self)


class InvalidInput(ConsultflowError, ValueError):
    """Input that cannot be a valid command or record (a missing field, a bad date, a huge string).

    ``code`` names the kind (``invalid_input`` unless said); ``zh`` is the Chinese text, if any."""

    code = "invalid_input"

    def __init__(self, message: str, *, code: str | None = None, zh: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
        self.zh = zh

    def explain(self, lang: str = "en") -> str:
        return self.zh if lang == "zh" and self.zh else str(self)


class ValidationError(InvalidInput):
    """A command or record built with fields that do not validate (a missing field, a text too long,
    a naive time). Raised instead of pydantic's error, so ``except ConsultflowError`` catches it.

    ``code`` is ``"invalid_fields"``; ``problems`` lists each field's problem as ``(field, type,
    message)``; ``explain("zh")`` says it in Chinese. ``errors()`` gives pydantic's own details.
    """

    code = "invalid_fields"

    def __init__(self, model: str, problems: list[tuple[str, str, str]], details: list[dict[str, object]]) -> None:
        self.model = model
        self.problems = tuple(problems)
        self._details = details
        super().__init__(self.explain("en"))

    def errors(self) -> list[dict[str, object]]:
        """pydantic's error details (``loc``, ``type``, ``msg``, ``ctx``) for each problem."""
        return list(self._details)

    def error_count(self) -> int:
        return len(self.problems)

    def explain(self, lang: str = "en") -> str:
        """What is wrong, field by field, in ``lang`` (``"en"`` or ``"zh"``)."""
        from .i18n import field_problem

        parts = [field_problem(field, kind, msg, ctx, lang) for (field, kind, msg), ctx in self._with_ctx()]
        if lang == "zh":
            return f"{self.model}的字段有误：" + "；".join(parts)
        return f"{self.model} has invalid fields: " + "; ".join(parts)

    def _with_ctx(self) -> list[tuple[tuple[str, str, str], dict[str, object]]]:
        out = []
        for problem, detail in zip(self.problems, self._details, strict=True):
            ctx = detail.get("ctx")
            out.append((problem, dict(ctx) if isinstance(ctx, dict) else {}))
        return out


class NotFound(ConsultflowError, LookupError):
    """No consultation with that id in the store."""

    def __init__(self, consultation: str, *, what: str = "consultation") -> None:
        super().__init__(f"no {what} {consultation!r} in this store; check the id (ids are case-sensitive)")
        self.consultation = consultation
        self.what = what


class Conflict(ConsultflowError):
    """Someone else wrote this consultation first (optimistic concurrency). Nothing was written:
    load it again and decide whether your command still makes sense."""

    def __init__(self, consultation: str, expected: int, actual: int | None) -> None:
        if actual is None:
            found = "it does not exist"
        elif expected == 0:
            found = f"it exists already (at version {actual}); choose another id"
        else:
            found = f"it is at version {actual}"
        super().__init__(
            f"consultation {consultation!r} changed under you: expected version {expected}, but {found}; "
            "nothing was written - reload and retry"
        )
        self.consultation = consultation
        self.expected = expected
        self.actual = actual


class FundConflict(Conflict):
    """Another step took the same place in a community's fund ledger first (微幸福 fund): two
    allocations from one community's pool for one year raced, and this one lost. Nothing was
    written: reload, and the decision is checked again against what is left of the pool."""

    code = "fund_conflict"

    def __init__(self, consultation: str, expected: int, community: str, year: int, seq: int) -> None:
        ConsultflowError.__init__(
            self,
            f"the fund ledger of community {community!r} for {year} moved on under you: allocation {seq} was "
            f"taken by another step first; nothing was written for consultation {consultation!r} - reload and retry",
        )
        self.consultation = consultation
        self.expected = expected
        self.actual = expected
        self.community = community
        self.year = year
        self.seq = seq


class NoFundLedger(ConsultflowError, TypeError):
    """The procedure gives the community a yearly fund (``Parameters.fund_pool``) but the store
    keeps no fund ledger to check a decision's money against: implement ``fund_position``
    (``consultflow.storage.FundLedger``; see docs/storage.md), or set ``fund_pool=None``."""

    code = "no_fund_ledger"

    def __init__(self, store: str) -> None:
        super().__init__(
            f"{store} keeps no fund ledger, but the procedure gives the community a yearly fund (fund_pool): "
            "implement fund_position(community, year) and write the ledger rows of funds_allocated and "
            "funds_spent entries in append's transaction (consultflow.storage.FundLedger, docs/storage.md), "
            "or run the procedure with fund_pool=None"
        )


class IntegrityError(ConsultflowError):
    """Stored data does not hold together (a broken chain, a record that disagrees with its log).

    ``consultation`` names the consultation when the error is about one (``Engine.execute``
    refusing to act on a record that its log does not bear out); nothing was written."""

    code = "integrity"

    def __init__(self, message: str, *, consultation: str | None = None) -> None:
        super().__init__(message)
        self.consultation = consultation


class StoreUnavailable(ConsultflowError):
    """The store could not be reached or failed mid-operation; the step may be retried."""


class ProcedureDefinitionError(ConsultflowError, ValueError):
    """A procedure definition that would let the procedure be skipped or bent. ``problems`` lists each."""

    def __init__(self, name: str, problems: list[str]) -> None:
        lines = "\n".join(f"  - {p}" for p in problems)
        super().__init__(f"procedure {name!r} cannot be built:\n{lines}")
        self.name = name
        self.problems = tuple(problems)


class UnknownProcedure(ConsultflowError, LookupError):
    """A stored consultation names a procedure (name, version) the engine was not given."""

    def __init__(self, name: str, version: str) -> None:
        super().__init__(
            f"this engine does not know procedure {name!r} version {version!r}; pass it to "
            "Engine(procedures=[...]) so records made under it can still be loaded"
        )
        self.name = name
        self.version = version
