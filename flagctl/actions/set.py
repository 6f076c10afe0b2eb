"""``flagctl set`` and ``flagctl status``: one flag's value, and the whole picture.

``set`` is for direct changes. It never overrides an engaged kill switch, and on a flag
that a ladder controls it only lowers exposure unless ``--force`` (the ladder's bake
and guardrails are what ``stage set`` is for).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.actions import kill as killswitch
from flagctl.actions import stage as ladder
from flagctl.actions.base import Change, Plan
from flagctl.actions.stage import exposure_increases
from flagctl.errors import PolicyRefused
from flagctl.model.constraints import overriding
from flagctl.model.flagtypes import describe, effective_text, to_json
from flagctl.model.manifest import Manifest
from flagctl.store import audit as audit_mod
from flagctl.store.flags import GLOBAL, FlagStore, check_scope

if TYPE_CHECKING:
    import psycopg


def plan_set(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    name: str,
    value: Any,
    *,
    scope: str,
    force: bool,
    locked: bool,
) -> Plan:
    """Set a flag (``value=None`` at a scope: remove that scope's override)."""
    flag = manifest.flag(name)
    check_scope(manifest, name, scope)
    snapshot = FlagStore(conn, manifest).for_change([name], locked=locked)
    current = snapshot.at(name, scope)
    summary = f"set {name} ({scope}): {effective_text(current)} → {effective_text(value)}"
    holders = [e.switch for e in killswitch.holding(killswitch.list_engaged(conn, manifest), name, scope)]
    if holders:
        raise PolicyRefused(
            f"kill switch {', '.join(holders)} holds {name}; the kill beats every other setting",
            f"release it first: flagctl release {holders[0]} --reason …",
            system=manifest.system,
            target=f"flag:{name}",
        )
    if current == value:
        shown = "has no override" if value is None else f"is already {describe(value)}"
        return Plan("set", summary, noop=f"{name} ({scope}) {shown}")
    checks = []
    forced = False
    ladders = manifest.ladders_of(name) if scope == GLOBAL else []
    if ladders and exposure_increases(manifest, {name: current}, {name: value}):
        if not force:
            raise PolicyRefused(
                f"{name} is controlled by ladder {ladders[0].name}; raising its exposure directly "
                "would skip the ladder's bake and guardrails",
                f"use: flagctl stage set {ladders[0].name} STAGE (or --force with --reason)",
                system=manifest.system,
                target=f"flag:{name}",
            )
        forced = True
        checks.append(f"forced: raises exposure outside ladder {ladders[0].name}")
    elif ladders:
        checks.append("lowering exposure is always allowed")
    if value is not None:
        flag.coerce(flag.to_db(value))  # the type's own check, once more, before writing
    return Plan(
        "set", summary, changes=[Change(name, scope, current, value)], checks=checks, forced=forced,
        snapshot=snapshot,
    )  # fmt: skip


def apply_set(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    FlagStore(conn, manifest).write(plan.changes)


@dataclass(frozen=True)
class FlagStatus:
    name: str
    type: str
    storage: str
    value: Any
    overrides: dict[str, Any]  # scope → value
    stages: list[tuple[str, str]]  # (ladder, stage)
    kill_switches: list[tuple[str, str]]  # (switch, scope)
    last_change: audit_mod.AuditRow | None
    overridden_by: str | None = None  # a priority flag that is on

    @property
    def killed_globally(self) -> bool:
        return any(scope == GLOBAL for _, scope in self.kill_switches)

    def to_json(self) -> dict[str, Any]:
        last = self.last_change
        return {
            "name": self.name,
            "type": self.type,
            "storage": self.storage,
            "scope": GLOBAL,
            "value": to_json(self.value),
            "effective": "off (killed)"
            if self.killed_globally
            else f"off (overridden by {self.overridden_by})"
            if self.overridden_by
            else effective_text(self.value),
            "overrides": [
                {"scope": sc, "value": to_json(v), "effective": effective_text(v)}
                for sc, v in self.overrides.items()
            ],
            "stages": [{"ladder": ladder_name, "stage": stage} for ladder_name, stage in self.stages],
            "kill_switches": [{"switch": sw, "scope": sc} for sw, sc in self.kill_switches],
            "last_change": None
            if last is None
            else {
                "at": last.at.isoformat(),
                "who": last.who,
                "actor": last.actor,
                "db_user": last.db_user,
                "action": last.action,
                "reason": last.reason,
            },
        }


@dataclass(frozen=True)
class SystemStatus:
    system: str
    flags: list[FlagStatus]
    engaged: list[killswitch.Engaged]
    manifest: Manifest

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "flags": [f.to_json() for f in self.flags],
            "kill_switches_engaged": [e.to_json(self.manifest) for e in self.engaged],
        }


def status(conn: psycopg.Connection[Any], manifest: Manifest, names: list[str] | None) -> SystemStatus:
    for name in names or []:
        manifest.flag(name)
    snapshot = FlagStore(conn, manifest).snapshot()  # every flag, every scope: one read
    current = snapshot.globals
    engaged = killswitch.list_engaged(conn, manifest)
    last = audit_mod.last_changes(conn, manifest.system)
    priority = overriding(manifest, current)
    flags = []
    for name, spec in manifest.flags.items():
        if names and name not in names:
            continue
        value = current[name]
        stages = []
        for lad in manifest.ladders_of(name):
            position = lad.position({f: current[f] for f in lad.flags})
            stages.append((lad.name, ladder.stage_name(position) or "(off ladder)"))
        flags.append(
            FlagStatus(
                name=name,
                type=spec.type,
                storage=spec.table or "flagctl.flag_state",
                value=value,
                overrides=snapshot.overrides.get(name, {}),
                stages=stages,
                kill_switches=[(e.switch, e.scope) for e in killswitch.engaged_on(engaged, name)],
                last_change=last.get(name),
                overridden_by=priority if priority and name != priority else None,
            )
        )
    return SystemStatus(manifest.system, flags, engaged, manifest)
