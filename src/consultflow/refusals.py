"""Refusals: a command the procedure does not allow, explained with the rule that failed and its data.

A refusal changes nothing: the core returns it instead of a step, and the engine raises it before
anything is written.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from types import MappingProxyType

import attrs

from .errors import ConsultflowError
from .i18n import Lang, message

__all__ = ["Failure", "Refused"]


@attrs.frozen(slots=True)
class Failure:
    """What a guard returns when its rule does not hold: a stable code and the data behind it."""

    code: str
    data: Mapping[str, object] = attrs.field(factory=dict)


class Refused(ConsultflowError):
    """The procedure refuses this command. ``code`` is stable, ``rule`` names the guard that failed,
    ``data`` holds the figures (quorum 12 of 20, the end of the notice period, ...)."""

    def __init__(
        self,
        code: str,
        *,
        rule: str,
        data: Mapping[str, object] | None = None,
        trigger: str = "",
        state: str | None = None,
        consultation: str | None = None,
    ) -> None:
        self.code = code
        self.rule = rule
        self.data: Mapping[str, object] = MappingProxyType(dict(data or {}))
        self.trigger = trigger
        self.state = state
        self.consultation = consultation
        super().__init__(self.explain("en"))

    def explain(self, lang: Lang = "en", tz: tzinfo | None = None) -> str:
        """The refusal in words a resident can read (``lang`` is ``"en"`` or ``"zh"``)."""
        return message(self.code, self.data, lang, tz)

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form for APIs: code, rule, data and both languages."""
        return {
            "code": self.code,
            "rule": self.rule,
            "trigger": self.trigger,
            "state": self.state,
            "consultation": self.consultation,
            "data": {k: _plain(v) for k, v in self.data.items()},
            "message": {"en": self.explain("en"), "zh": self.explain("zh")},
        }

    def __repr__(self) -> str:
        return f"Refused(code={self.code!r}, rule={self.rule!r}, data={dict(self.data)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # keep refusals picklable (process pools in simulations)
        return (
            _rebuild,
            (self.code, self.rule, dict(self.data), self.trigger, self.state, self.consultation),
        )


def _rebuild(
    code: str,
    rule: str,
    data: dict[str, object],
    trigger: str,
    state: str | None,
    consultation: str | None,
) -> Refused:
    return Refused(code, rule=rule, data=data, trigger=trigger, state=state, consultation=consultation)


def _plain(value: object) -> object:
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
