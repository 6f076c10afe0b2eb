"""ApplyState: make the live values match a desired state — a profile, the last safe point,
or the values of a past moment rebuilt from the audit trail (``restore --as-of``).

All three compute a *desired state* ``{scope: {flag: value}}`` (``None`` at a scope: no
override) and plan it the same way: the diff against the live state, refused while a kill
switch holds a flag it changes, checked against the constraints, applied in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan
from flagctl.errors import PolicyRefused, UsageError
from flagctl.model.change import Change
from flagctl.model.manifest import Manifest
from flagctl.model.profile import State, load_profile
from flagctl.model.scopes import GLOBAL
from flagctl.rules.kills import holding
from flagctl.rules.ladder import outside_ladder
from flagctl.store import audit as audit_mod
from flagctl.store import safe_points
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged

if TYPE_CHECKING:
    import psycopg


@dataclass
class DesiredState:
    """A desired state and how to describe it."""

    action: str
    summary: str
    state: State
    skipped: list[str] = field(default_factory=list)
    mark_safe: str | None = None  # record as a safe point of this kind ("profile", "snapshot")
    name: str = ""


@dataclass
class StatePlan(Plan):
    safe_point: str | None = None  # the kind of safe point recorded with it
    name: str = ""
    state: dict[str, Any] = field(default_factory=dict)  # the desired state, as stored


@dataclass
class ApplyState(Action[StatePlan]):
    """Apply a desired state (a profile, a safe point, a past moment)."""

    manifest: Manifest
    desired: DesiredState
    force: bool = False

    @property
    def name(self) -> str:
        return self.desired.action

    def honours_freezes(self) -> bool:
        # A rollback to the last safe point and a drill putting back what it moved restore
        # a known state: never frozen. A profile or a restore of a past moment is.
        return not self.desired.action.startswith(("rollback", "drill.restore"))

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> StatePlan:
        return plan_state(conn, self.manifest, self.desired, force=self.force, locked=locked)

    def apply(self, conn: psycopg.Connection[Any], plan: StatePlan) -> None:
        FlagStore(conn, self.manifest).write(plan.changes)
        if plan.safe_point:
            safe_points.record(conn, self.manifest.system, plan.name, plan.safe_point, plan.state)


def profile_state(manifest: Manifest, name: str, action: str = "", mark_safe: bool = False) -> DesiredState:
    """A profile file as a desired state (validated against the manifest)."""
    profile = load_profile(manifest, name)
    return DesiredState(
        action or f"profile.apply:{profile.name}", f"apply profile {profile.name}", profile.state,
        mark_safe="profile" if mark_safe else None, name=profile.name,
    )  # fmt: skip


def plan_state(
    conn: psycopg.Connection[Any], manifest: Manifest, target: DesiredState, *, force: bool, locked: bool
) -> StatePlan:
    flags = {f for values in target.state.values() for f in values}
    snapshot = FlagStore(conn, manifest).for_change(flags, locked=locked)
    changes = []
    for scope, values in sorted(target.state.items()):
        for flag, wanted in sorted(values.items()):
            live = snapshot.at(flag, scope)
            if scope == GLOBAL and wanted is None and flag not in snapshot.stored:
                live = None  # no global row, and none wanted (the default applies)
            if live != wanted:
                changes.append(Change(flag, scope, live, wanted))
    checks = [f"skipped {s}" for s in target.skipped]
    if not changes and not target.mark_safe:
        return StatePlan(target.action, target.summary, noop="the live state already matches", checks=checks)
    engaged = list_engaged(conn, manifest)
    held = sorted({f"{c.flag} ({e.switch})" for c in changes for e in holding(engaged, c.flag, c.scope)})
    if held:
        raise PolicyRefused(
            f"kill switches hold flags this would change: {', '.join(held)}; the kill beats every profile",
            "release the kill switch first, or leave those flags out (--flag)",
            system=manifest.system,
            target=target.action,
        )
    forced, ladder_checks = outside_ladder(manifest, changes, force, target.action)
    checks += [c for c in ladder_checks if c.startswith("forced")]
    if target.mark_safe:
        checks.append(f"recorded as a safe point ({target.mark_safe} {target.name})")
    return StatePlan(
        target.action, target.summary, changes=changes, checks=checks, forced=forced, snapshot=snapshot,
        safe_point=target.mark_safe, name=target.name, state=_state_json(manifest, target.state),
    )  # fmt: skip


def _state_json(manifest: Manifest, state: State) -> dict[str, Any]:
    return {
        s: {f: None if v is None else manifest.flags[f].to_db(v) for f, v in vals.items()}
        for s, vals in state.items()
    }


def _state_from_json(manifest: Manifest, data: dict[str, Any]) -> tuple[State, list[str]]:
    state: State = {}
    skipped = []
    for scope, values in data.items():
        for flag, raw in values.items():
            if flag not in manifest.flags:
                skipped.append(f"{flag} (no longer in the manifest)")
                continue
            state.setdefault(scope, {})[flag] = None if raw is None else manifest.flags[flag].from_db(raw)
    return state, skipped


def last_safe(conn: psycopg.Connection[Any], manifest: Manifest) -> DesiredState:
    point = safe_points.last(conn, manifest.system)
    if point is None:
        raise UsageError(
            f"no safe point recorded for system {manifest.system}",
            "mark one: flagctl profile apply NAME --mark-safe, or flagctl profile snapshot NAME --mark-safe",
        )
    state, skipped = _state_from_json(manifest, point.state)
    summary = (
        f"roll back to the last safe point: {point.kind} {point.name} "
        f"(marked {point.at:%Y-%m-%d %H:%M:%S %Z} by {point.who})"
    )
    return DesiredState("rollback", summary, state, skipped)


def state_as_of(
    conn: psycopg.Connection[Any], manifest: Manifest, when: datetime, flags: list[str] | None
) -> DesiredState:
    """The values at ``when``, rebuilt from the audit trail.

    For each flag and scope: the last recorded change at or before ``when`` gives the
    value; if there is none, the first change after it tells the value before it; with no
    change at all the value is unchanged. A scoped override that did not exist then is
    removed. A flag with no stored value at that time (it did not exist yet) is left
    unchanged and listed as skipped.
    """
    names = flags or list(manifest.flags)
    for name in names:
        manifest.flag(name)
    # One row per flag and scope, chosen by the database (never the history itself).
    found: dict[str, dict[str, Any]] = {}
    for side, row in audit_mod.as_of(conn, manifest.system, names, when):
        value = audit_mod.value_from_row(manifest, row, side)
        found.setdefault(row.flag or "", {})[row.scope or GLOBAL] = value
    snapshot = FlagStore(conn, manifest).snapshot(names)
    state: State = {}
    skipped = []
    for name in names:
        mine = found.get(name, {})
        for scope in sorted({GLOBAL} | set(mine) | set(snapshot.overrides.get(name, {}))):
            value = mine[scope] if scope in mine else snapshot.at(name, scope)
            if value is None and scope == GLOBAL:
                spec = manifest.flag(name)
                if spec.bound:
                    skipped.append(
                        f"{name} (its row in {spec.table} did not exist at {when:%Y-%m-%d %H:%M:%S %Z})"
                    )
                    continue
                value = spec.default_value()  # no row then: it read as its default
            state.setdefault(scope, {})[name] = value
    summary = f"restore {', '.join(flags) if flags else 'all flags'} as of {when:%Y-%m-%d %H:%M:%S %Z}"
    return DesiredState("restore", summary, state, skipped)
