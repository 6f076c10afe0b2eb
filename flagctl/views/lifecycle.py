"""Flag metadata and lifecycle: who owns a flag, and when it should go.

A flag is *stale* (ORCA's cleanup policy) when its ``remove_by`` date has passed, or when
it is a rollout flag that has been at 100% for more than 14 days: its code should be
removed and the flag archived.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.model.flagtypes import RolloutFlag, effective_value, to_json
from flagctl.model.manifest import Manifest
from flagctl.store import audit as audit_mod
from flagctl.store.flags import FlagStore
from flagctl.store.schema import installed_at

if TYPE_CHECKING:
    import psycopg

FULL_ROLLOUT_GRACE = timedelta(days=14)


@dataclass(frozen=True)
class FlagInfo:
    name: str
    type: str
    owner: str | None
    description: str | None
    created: str | None
    remove_by: str | None
    rollout_plan: str | None
    rollback_criteria: str | None
    value: Any
    stale: list[str]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "type": self.type, "owner": self.owner, "description": self.description,
            "created": self.created, "remove_by": self.remove_by, "rollout_plan": self.rollout_plan,
            "rollback_criteria": self.rollback_criteria, "value": to_json(self.value),
            "effective": effective_value(self.value), "stale": self.stale,
        }  # fmt: skip


def flags(conn: psycopg.Connection[Any], manifest: Manifest, now: datetime) -> list[FlagInfo]:
    values = FlagStore(conn, manifest).values()
    last = audit_mod.last_changes(conn, manifest.system, list(manifest.flags))
    installed = installed_at(conn)
    found = []
    for name, spec in manifest.flags.items():
        value = values[name]
        reasons = []
        if spec.remove_by is not None and now.date() > spec.remove_by:
            reasons.append(f"past its removal date {spec.remove_by.isoformat()}")
        if isinstance(spec, RolloutFlag) and value.exposure == 100:
            since = last[name].at if name in last else installed
            if since is not None and now - since > FULL_ROLLOUT_GRACE:
                reasons.append(f"at 100% since {since:%Y-%m-%d} ({(now - since).days} days; remove its code)")
        found.append(FlagInfo(
            name, spec.type, spec.owner, spec.description,
            spec.created.isoformat() if spec.created else None,
            spec.remove_by.isoformat() if spec.remove_by else None,
            spec.rollout_plan, spec.rollback_criteria, value, reasons,
        ))  # fmt: skip
    return found
