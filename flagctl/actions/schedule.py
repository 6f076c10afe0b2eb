"""Scheduled changes: recorded now, applied by the runner at their time.

``ScheduleAdd`` records a change — a stage move, a set, a kill, a release, a freeze or a
profile apply — with the time it applies and the values of every flag it touches as they
are now (the state it was planned on). ``apply_due`` (the runner, ``flagctl run``) builds
each due change again and runs it through ``execute`` like a person's, so freezes,
approvals, kills, bakes, guardrails and roles hold it; just before, under the same preview
the apply is checked against, it compares the flags with the planned-on state, and a
schedule whose state changed is refused and reported, never applied blind. Each is applied
with the request id ``schedule-ID``, so a runner that dies after applying one does not
apply it twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg

from flagctl.actions.base import Action, Plan, execute, one_line
from flagctl.errors import (
    ConflictError,
    ConnectionFailed,
    FlagctlError,
    NeedsApproval,
    PolicyRefused,
    UsageError,
)
from flagctl.model.scopes import GLOBAL
from flagctl.store import schedules as store
from flagctl.store.audit import applied_request
from flagctl.store.db import AuditContext, transaction, translate
from flagctl.store.flags import FlagStore
from flagctl.store.schedules import Scheduled

if TYPE_CHECKING:
    from flagctl.model.manifest import Manifest

Clock = Callable[[], datetime]
KINDS = ("stage.set", "set", "kill", "release", "freeze.set", "profile.apply")


def build(manifest: Manifest, spec: dict[str, Any], clock: Clock) -> Action[Any]:
    """The change a schedule's spec stands for."""
    kind = spec.get("kind")
    if kind == "stage.set":
        from flagctl.actions.stage import StageSet

        return StageSet(
            manifest, spec["ladder"], stage=spec["stage"], percent=spec.get("percent"), clock=clock
        )
    if kind == "set":
        from flagctl.actions.set import SetFlag

        flag = manifest.flag(spec["flag"])
        value = None if spec.get("value") is None else flag.from_db(spec["value"])
        return SetFlag(manifest, spec["flag"], value, scope=spec.get("scope", GLOBAL))
    if kind in ("kill", "release"):
        from flagctl.actions.kill import Kill, Release

        cls = Kill if kind == "kill" else Release
        return cls(manifest, spec["switch"], spec.get("scope", GLOBAL))
    if kind == "freeze.set":
        from flagctl.actions.freeze import FreezeSet

        until = datetime.fromisoformat(spec["until"]) if spec.get("until") else None
        return FreezeSet(manifest, spec.get("scope", GLOBAL), until, clock())
    if kind == "profile.apply":
        from flagctl.actions.profile import ApplyState, profile_state

        return ApplyState(manifest, profile_state(manifest, spec["profile"]))
    raise UsageError(f"a scheduled change of kind {kind!r} cannot be built", f"kinds: {', '.join(KINDS)}")


def describe(spec: dict[str, Any]) -> str:
    kind = spec.get("kind")
    scope = spec.get("scope", GLOBAL)
    at_scope = "" if scope == GLOBAL else f" at {scope}"
    if kind == "stage.set":
        percent = f" at {spec['percent']}%" if spec.get("percent") is not None else ""
        return f"stage set {spec['ladder']} {spec['stage']}{percent}"
    if kind == "set":
        return f"set {spec['flag']}{at_scope} to {spec.get('value')}"
    if kind in ("kill", "release"):
        return f"{kind} {spec['switch']}{at_scope}"
    if kind == "freeze.set":
        return f"freeze {scope}" + (f" until {spec['until']}" if spec.get("until") else "")
    return f"apply profile {spec.get('profile')}"


def touched(manifest: Manifest, spec: dict[str, Any]) -> list[str]:
    """The flags a scheduled change touches: the state it was planned on is theirs."""
    kind = spec.get("kind")
    if kind == "stage.set":
        return list(manifest.ladder(spec["ladder"]).flags)
    if kind == "set":
        return [spec["flag"]]
    if kind in ("kill", "release"):
        return sorted(manifest.switches[spec["switch"]]) if spec["switch"] in manifest.switches else []
    if kind == "profile.apply":
        from flagctl.actions.profile import profile_state

        desired = profile_state(manifest, spec["profile"])
        return sorted({flag for values in desired.state.values() for flag in values})
    return []  # a freeze touches no flag


def state_of(
    conn: psycopg.Connection[Any], manifest: Manifest, flags: list[str]
) -> dict[str, dict[str, Any]]:
    """Each flag's stored value at every scope it has one, as stored (JSON)."""
    if not flags:
        return {}
    snapshot = FlagStore(conn, manifest).snapshot(flags)
    found: dict[str, dict[str, Any]] = {}
    for flag in flags:
        spec = manifest.flag(flag)
        scopes = {GLOBAL: snapshot.globals[flag], **snapshot.overrides.get(flag, {})}
        found[flag] = {
            scope: None if value is None else spec.to_db(value) for scope, value in sorted(scopes.items())
        }
    return found


def changed(planned: dict[str, dict[str, Any]], now: dict[str, dict[str, Any]]) -> list[str]:
    """What differs between the planned-on state and the state now, in words."""
    out = []
    for flag in sorted(set(planned) | set(now)):
        before, after = planned.get(flag, {}), now.get(flag, {})
        for scope in sorted(set(before) | set(after)):
            if before.get(scope) != after.get(scope):
                out.append(f"{flag} at {scope} was {before.get(scope)!r}, now {after.get(scope)!r}")
    return out


@dataclass
class SchedulePlan(Plan):
    kind: str = ""
    at: datetime | None = None
    schedule: int | None = None
    planned_on: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass
class ScheduleAdd(Action[SchedulePlan]):
    """Schedule the change ``spec`` describes for ``at``."""

    manifest: Manifest
    spec: dict[str, Any]
    at: datetime
    now: datetime

    @property
    def name(self) -> str:
        return "schedule.add"

    def honours_freezes(self) -> bool:
        return False  # it changes no flag now; the change meets the freezes when it applies

    def validate(self) -> None:
        if self.at <= self.now:
            raise UsageError(
                f"--at {self.at:%Y-%m-%d %H:%M:%S %Z} is not in the future",
                "give a later time (2026-12-02T09:00Z) or a duration from now (2h); to act now, run the command",
            )
        build(self.manifest, self.spec, lambda: self.at).validate()

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> SchedulePlan:
        self.validate()
        planned_on = state_of(conn, self.manifest, touched(self.manifest, self.spec))
        summary = f"at {self.at:%Y-%m-%d %H:%M:%S %Z}: {describe(self.spec)}"
        checks = [
            f"planned on {flag} at {scope} = {value!r}: if it differs then, the change is refused"
            for flag, scopes in planned_on.items()
            for scope, value in scopes.items()
        ]
        checks.append(
            "applied by flagctl run at its time, through the same checks as now (freezes, approvals, roles)"
        )
        return SchedulePlan(self.name, summary, checks=checks, kind=str(self.spec["kind"]), at=self.at,
                            planned_on=planned_on)  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: SchedulePlan) -> None:
        assert plan.at is not None
        store.add(
            conn, self.manifest.system, plan.kind, self.spec, describe(self.spec), plan.planned_on, plan.at
        )


@dataclass
class ScheduleCancel(Action[SchedulePlan]):
    manifest: Manifest
    schedule: int

    @property
    def name(self) -> str:
        return "schedule.cancel"

    def honours_freezes(self) -> bool:
        return False

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> SchedulePlan:
        found = store.one(conn, self.manifest.system, self.schedule)
        if found is None:
            raise UsageError(
                f"no schedule {self.schedule} in {self.manifest.system}", "see flagctl schedule list"
            )
        summary = f"cancel schedule {found.id}: at {found.at:%Y-%m-%d %H:%M:%S %Z}: {found.summary}"
        if found.state != "pending":
            return SchedulePlan(self.name, summary, noop=f"schedule {found.id} is already {found.state}")
        return SchedulePlan(self.name, summary, kind=found.kind, at=found.at, schedule=found.id)

    def apply(self, conn: psycopg.Connection[Any], plan: SchedulePlan) -> None:
        assert plan.schedule is not None
        store.settle(conn, plan.schedule, "cancelled", "cancelled")


@dataclass(frozen=True)
class Settled:
    """What the runner did with one due schedule."""

    schedule: Scheduled
    state: str  # applied, refused; pending: left for the next pass (a lock conflict)
    outcome: str


def apply_due(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    audit: AuditContext,
    clock: Clock,
    lock_timeout: timedelta = timedelta(seconds=5),
) -> list[Settled]:
    """Apply every pending schedule whose time has come, oldest first."""
    return [
        apply_one(conn, manifest, found, audit, clock, lock_timeout)
        for found in store.due(conn, manifest.system, clock())
    ]


def apply_one(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    found: Scheduled,
    audit: AuditContext,
    clock: Clock,
    lock_timeout: timedelta,
) -> Settled:
    request = f"schedule-{found.id}"
    why = (
        f"schedule {found.id} by {found.scheduled_by} for {found.at:%Y-%m-%d %H:%M %Z}: {found.reason or ''}"
    )
    try:
        action = build(manifest, found.spec, clock)
        context = replace(audit, action=action.name, reason=one_line(why), request_id=request)
        if applied_request(conn, request) is not None:
            return _settle(conn, audit, found, "applied", "applied by an earlier pass", lock_timeout)

        def planned_on_holds(plan: Plan) -> bool:
            differs = changed(found.planned_on, state_of(conn, manifest, touched(manifest, found.spec)))
            if differs:
                raise PolicyRefused(
                    "the state it was planned on has changed: " + "; ".join(differs[:3])
                    + (f" (+{len(differs) - 3} more)" if len(differs) > 3 else ""),
                    "schedule it again from the state as it is now",
                    system=manifest.system, target=f"schedule:{found.id}",
                )  # fmt: skip
            return True

        outcome = execute(conn, action, context, confirm=planned_on_holds, lock_timeout=lock_timeout,
                          idempotent=True)  # fmt: skip
    except (ConflictError, ConnectionFailed) as busy:  # locks held, or the database away: next pass
        return Settled(found, "pending", f"not yet: {busy.message}")
    except NeedsApproval as needed:
        return _settle(conn, audit, found, "refused", f"needs approval: {needed.message}", lock_timeout)
    except FlagctlError as refused:
        return _settle(conn, audit, found, "refused", refused.message, lock_timeout)
    except psycopg.Error as failed:  # the database refused it (a role it needs, a constraint)
        if conn.broken:
            raise
        error = translate(failed)
        if isinstance(error, ConflictError | ConnectionFailed):
            return Settled(found, "pending", f"not yet: {error.message}")
        return _settle(conn, audit, found, "refused", error.message, lock_timeout)
    text = outcome.plan.summary if outcome.applied else f"nothing to do: {outcome.plan.noop}"
    return _settle(conn, audit, found, "applied", text, lock_timeout)


def _settle(
    conn: psycopg.Connection[Any],
    audit: AuditContext,
    found: Scheduled,
    state: str,
    outcome: str,
    lock_timeout: timedelta,
) -> Settled:
    context = replace(
        audit, action="schedule.settle", reason=one_line(f"schedule {found.id} {state}: {outcome}")
    )
    with transaction(conn, context, lock_timeout) as tx:
        store.settle(tx, found.id, state, one_line(outcome))
    return Settled(found, state, outcome)
