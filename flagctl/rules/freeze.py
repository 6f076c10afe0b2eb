"""Freezes: which changes a freeze blocks. Pure.

A freeze blocks every change that *widens exposure* — a rollout or bool flag on for more
subjects than before — at its scope: a global freeze blocks widening anywhere; a freeze at
``workspace:42`` blocks widening there and globally (a global widening reaches that
workspace too). Lowering exposure, and changes of flags without an exposure order (enums,
numbers, lists), are never blocked; nor are kills, releases and rollbacks, which do not ask.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from flagctl.model.scopes import GLOBAL

if TYPE_CHECKING:
    from flagctl.model.change import Change
    from flagctl.model.manifest import Manifest


@dataclass(frozen=True)
class Freeze:
    id: int
    scope: str
    until: datetime | None
    reason: str
    actor: str | None
    db_user: str
    created_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "scope": self.scope,
            "until": self.until.isoformat() if self.until else None,
            "reason": self.reason,
            "actor": self.actor,
            "db_user": self.db_user,
            "since": self.created_at.isoformat(),
        }

    def describe(self) -> str:
        until = f"until {self.until:%Y-%m-%d %H:%M %Z}" if self.until else "until cleared"
        return f"freeze {self.id} at {self.scope} by {self.actor or self.db_user} ({until}): {self.reason}"


def widens(manifest: Manifest, change: Change) -> bool:
    """Whether a change puts the flag on for more subjects than before."""
    spec = manifest.flag(change.flag)
    # No override before: the scope had the global value, unknown here — count from none.
    was = spec.exposure(change.before) if change.before is not None else 0.0
    if change.after is None:  # an override removed: the scope falls back to the global value,
        return was is not None and was < 100.0  # which may be wider than a partial override
    now = spec.exposure(change.after)
    return was is not None and now is not None and now > was


def blocked(manifest: Manifest, freezes: list[Freeze], changes: list[Change]) -> list[tuple[Change, Freeze]]:
    """Every widening change with a freeze that blocks it."""
    found = []
    for change in changes:
        if not widens(manifest, change):
            continue
        for freeze in freezes:
            if freeze.scope in (GLOBAL, change.scope) or change.scope == GLOBAL:
                found.append((change, freeze))
                break
    return found
