"""Refusals: a command the procedure does not allow, explained with the guard that failed and its data.

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
    """What a guard returns when it does not hold: a stable code and the data behind it."""

    code: str
    data: Mapping[str, object] = attrs.field(factory=dict)


class Refused(ConsultflowError):
    """The procedure refuses this command. ``code`` is stable, ``guard`` names the guard that failed
    (a step's guard, or one of the core's own: ``state``, ``role``, ``route``), ``data`` holds the
    figures (quorum 12 of 20, the date of the meeting, ...)."""

    def __init__(
        self,
        code: str,
        *,
        guard: str,
        data: Mapping[str, object] | None = None,
        trigger: str = "",
        state: str | None = None,
        consultation: str | None = None,
    ) -> None:
        self.code = code
        self.guard = guard
        self.data: Mapping[str, object] = MappingProxyType(dict(data or {}))
        self.trigger = trigger
        self.state = state
        self.consultation = consultation
        super().__init__(self.explain("en"))

    def explain(self, lang: Lang | str = "en", tz: tzinfo | None = None) -> str:
        """The refusal in words a resident can read (``lang`` is ``"en"`` or ``"zh"``)."""
        return message(self.code, self.data, lang, tz)

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly form for APIs: code, guard, data and both languages."""
        return {
            "code": self.code,
            "guard": self.guard,
            "trigger": self.trigger,
            "state": self.state,
            "consultation": self.consultation,
            "data": {k: _plain(v) for k, v in self.data.items()},
            "message": {"en": self.explain("en"), "zh": self.explain("zh")},
        }

    def __repr__(self) -> str:
        return f"Refused(code={self.code!r}, guard={self.guard!r}, data={dict(self.data)!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # keep refusals picklable (process pools in simulations)
        return (
            _rebuild,
            (self.code, self.guard, dict(self.data), self.trigger, self.state, self.consultation),
        )


def _rebuild(
    code: str,
    guard: str,
    data: dict[str, object],
    trigger: str,
    state: str | None,
    consultation: str | None,
) -> Refused:
    return Refused(code, guard=guard, data=data, trigger=trigger, state=state, consultation=consultation)


def _plain(value: object) -> object:
    if isinstance(value, list | tuple | frozenset | set):
        return [_plain(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)
