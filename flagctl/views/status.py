"""``flagctl status``: every flag's stored value, what it means for subjects, and why.

The effective value is typed — ``true``/``false`` for a bool, a number, a string, a list;
for a rollout, the percent of subjects it is on for — and the reason is its own field:

- ``killed``: an engaged kill switch holds it (``by`` names the switch);
- ``overridden``: a priority flag is on and overrides it (``by`` names that flag);
- ``stage``: a ladder controls it and it stands at a stage (``by`` names ladder/stage);
- ``stored``: the value stored for it; ``default``: nothing stored, the manifest's default;
- ``override``: a scoped override (in ``overrides``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.model.flagtypes import effective_text, effective_value, to_json
from flagctl.model.manifest import Manifest, ResolvedLadder
from flagctl.model.scopes import GLOBAL
from flagctl.model.values import Rollout
from flagctl.rules.constraints import overriding
from flagctl.rules.freeze import Freeze
from flagctl.rules.kills import Engaged, beneath, engaged_by_flag
from flagctl.store import audit as audit_mod
from flagctl.store.flags import FlagStore
from flagctl.store.freezes import active_freezes
from flagctl.store.switches import engaged_json, list_engaged
from flagctl.views.drift import Drift, drift

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Effective:
    """What a value means for subjects, typed, and why."""

    value: Any
    reason: str
    by: str | None = None
    text: str = ""  # the same, for people

    def to_json(self) -> dict[str, Any]:
        return {"effective": self.value, "reason": self.reason, "by": self.by}


def off_value(value: Any) -> Any:
    """The value a kill or a priority override leaves for subjects."""
    if isinstance(value, Rollout):
        return 0
    return False if isinstance(value, bool) else effective_value(value)


@dataclass(frozen=True)
class LadderAt:
    """A ladder a flag is on, and its stage; under a kill, also the stage beneath it."""

    ladder: str
    stage: str  # "(off ladder)" when the values match no stage
    killed_by: list[str]
    beneath: str | None = None  # under a kill: the stage its recorded base is at

    @property
    def text(self) -> str:
        if not self.killed_by:
            return f"{self.ladder}: {self.stage}"
        under = self.beneath or "(off ladder)"
        return f"{self.ladder}: {self.stage} — killed by {', '.join(self.killed_by)}; beneath it: {under}"

    def to_json(self) -> dict[str, Any]:
        return {
            "ladder": self.ladder,
            "stage": self.stage,
            "beneath": self.beneath if not self.killed_by else self.beneath or OFF_LADDER,
            "killed_by": self.killed_by,
        }


OFF_LADDER = "(off ladder)"


@dataclass(frozen=True)
class FlagStatus:
    name: str
    type: str
    storage: str
    value: Any
    effective: Effective
    overrides: dict[str, Any]  # scope → value
    stages: list[LadderAt]
    kill_switches: list[tuple[str, str]]  # (switch, scope)
    last_change: audit_mod.AuditRow | None

    def to_json(self) -> dict[str, Any]:
        last = self.last_change
        return {
            "name": self.name,
            "type": self.type,
            "storage": self.storage,
            "scope": GLOBAL,
            "value": to_json(self.value),
            **self.effective.to_json(),
            "overrides": [
                {"scope": sc, "value": to_json(v), "effective": effective_value(v), "reason": "override"}
                for sc, v in self.overrides.items()
            ],
            "stages": [at.to_json() for at in self.stages],
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
    engaged: list[Engaged]
    manifest: Manifest
    drift: list[Drift]
    freezes: list[Freeze]

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "flags": [f.to_json() for f in self.flags],
            "kill_switches_engaged": [engaged_json(self.manifest, e) for e in self.engaged],
            "freezes": [f.to_json() for f in self.freezes],
            "drift": [d.to_json() for d in self.drift],
        }


def status(conn: psycopg.Connection[Any], manifest: Manifest, names: list[str] | None) -> SystemStatus:
    for name in names or []:
        manifest.flag(name)
    snapshot = FlagStore(conn, manifest).snapshot()  # every flag, every scope: one read
    current = snapshot.globals
    engaged = list_engaged(conn, manifest)
    last = audit_mod.last_changes(conn, manifest.system, list(manifest.flags))
    priority = overriding(manifest, current)
    holding = engaged_by_flag(engaged)
    flags = []
    for name, spec in manifest.flags.items():
        if names and name not in names:
            continue
        value = current[name]
        stages = [_ladder_at(manifest, ladder, current, engaged) for ladder in manifest.ladders_of(name)]
        holders = holding.get(name, [])
        killed = [e.switch for e in holders if e.scope == GLOBAL]
        if killed:
            effective = Effective(off_value(value), "killed", killed[-1], f"off (killed by {killed[-1]})")
        elif priority and name != priority:
            effective = Effective(off_value(value), "overridden", priority, f"off (overridden by {priority})")
        elif stages and stages[0].stage != OFF_LADDER:
            where = f"{stages[0].ladder}/{stages[0].stage}"
            effective = Effective(effective_value(value), "stage", where, effective_text(value))
        else:
            reason = "stored" if name in snapshot.stored else "default"
            effective = Effective(effective_value(value), reason, None, effective_text(value))
        flags.append(
            FlagStatus(
                name=name,
                type=spec.type,
                storage=spec.table or "flagctl.flag_state",
                value=value,
                effective=effective,
                overrides=snapshot.overrides.get(name, {}),
                stages=stages,
                kill_switches=[(e.switch, e.scope) for e in holders],
                last_change=last.get(name),
            )
        )
    found = [d for d in drift(conn, manifest, snapshot) if not names or d.flag in names]
    return SystemStatus(manifest.system, flags, engaged, manifest, found, active_freezes(conn, manifest))


def _ladder_at(
    manifest: Manifest, ladder: ResolvedLadder, current: dict[str, Any], engaged: list[Engaged]
) -> LadderAt:
    values = {f: current[f] for f in ladder.flags}
    stage = ladder.position(values)
    defaults = {f: manifest.flags[f].default_value() for f in ladder.flags}
    under, killed_by = beneath(engaged, values, defaults)
    below = ladder.position(under) if killed_by else None
    return LadderAt(
        ladder.name, stage.name if stage else OFF_LADDER, killed_by, below.name if below else None
    )
