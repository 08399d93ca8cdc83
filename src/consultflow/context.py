"""What the shell hands the pure core with each command: the time, the actor, ids, the catalogue."""

from __future__ import annotations

from datetime import datetime

import attrs

from .catalogue import Catalogue
from .roles import Actor

__all__ = ["Context"]

_EMPTY_CATALOGUE = Catalogue()


@attrs.frozen(slots=True)
class Context:
    """Inputs the core may not fetch for itself. ``now`` must be aware; ``new_id`` names a new
    consultation (the engine draws it from its id factory)."""

    now: datetime
    actor: Actor
    new_id: str | None = None
    catalogue: Catalogue = _EMPTY_CATALOGUE
