"""Kill and Release: engage a kill switch in one transaction; restore exactly what it replaced.

Engaging bypasses bakes, freezes and guardrails. How engaged switches combine is in
``flagctl.rules.kills``. A release that finds a flag changed since the kill (someone
edited it in between) stops with a conflict unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, ClassVar

from flagctl.actions.base import Action, Plan
from flagctl.errors import ConflictError
from flagctl.model.change import Change
from flagctl.model.flagtypes import describe
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.rules.kills import Below, Engaged, base_at, engaged_at, left_at, with_kill, without
from flagctl.store.flags import FlagStore, Snapshot
from flagctl.store.switches import disengage, engage, hold, list_engaged

if TYPE_CHECKING:
    import psycopg


@dataclass
class KillPlan(Plan):
    switch: str = ""
    scope: str = GLOBAL
    level: int = 5
    prior: dict[str, Any] = field(default_factory=dict)  # flag → base value before any kill
    applied: dict[str, Any] = field(default_factory=dict)  # flag → value with this switch engaged
    below: dict[str, dict[str, Below]] = field(default_factory=dict)  # global: the overrides it covers
    reassert: bool = False  # already engaged: only write the values back (someone changed them)


@dataclass
class ReleasePlan(Plan):
    switch: str = ""
    scope: str = GLOBAL


@dataclass
class Kill(Action[KillPlan]):
    """Engage a kill switch, globally or at one scope."""

    manifest: Manifest
    switch: str
    scope: str = GLOBAL
    repeatable: ClassVar[bool] = True  # a repeated kill re-asserts: always run it
    acts_on_published: ClassVar[bool] = True  # the published switch, whatever the local file says

    @property
    def name(self) -> str:
        return "kill"

    def honours_freezes(self) -> bool:
        return False  # a kill is never frozen

    def validate(self) -> None:
        self.manifest.switch(self.switch)  # unknown switch: usage error
        for flag in self.manifest.switches[self.switch]:
            check_scope(self.manifest, flag, self.scope)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> KillPlan:
        self.validate()
        name, scope = self.switch, self.scope
        level = self.manifest.switch(name).level
        settings = self.manifest.switches[name]
        flags = sorted(settings)
        if locked:  # the database takes the kill's locks (the security role cannot lock rows)
            hold(conn, self.manifest, name, scope, flags)
        snapshot = FlagStore(conn, self.manifest).for_change(flags, locked=False)
        engaged = list_engaged(conn, self.manifest)
        summary = f"engage kill switch {name} (level {level}, scope {scope})"
        record = next((e for e in engaged if e.switch == name and e.scope == scope), None)
        if record is not None:
            return self._reassert(record, engaged, snapshot)
        me = Engaged(name, scope, level, 1 << 62, datetime.max, None, "", "", {}, {}, settings)
        prior: dict[str, Any] = {}
        applied: dict[str, Any] = {}
        below: dict[str, dict[str, Below]] = {}
        changes = []
        for flag in flags:
            default = self.manifest.flags[flag].default_value()
            for at in _covered(snapshot, flag, scope):
                holders = engaged_at(engaged, flag, at)
                now = snapshot.at(flag, at)
                base = base_at(holders, flag, at) if holders else _stored(snapshot, flag, at)
                value = with_kill(holders, me, flag, at, now, snapshot.globals[flag], default)
                if at == scope:
                    prior[flag], applied[flag] = base, value
                else:
                    below.setdefault(flag, {})[at] = Below(base, value)
                if value != now:
                    changes.append(Change(flag, at, now, value))
        checks = ["kill switches bypass bakes, freezes and guardrails"]
        if below:
            count = sum(len(by_scope) for by_scope in below.values())
            checks.append(f"a global kill holds the narrower overrides too: {_overrides(count)} covered")
        if not changes:
            checks.append("every flag already has the kill values; the switch is recorded as engaged")
        return KillPlan(
            "kill", summary, changes=changes, checks=checks, snapshot=snapshot,
            switch=name, scope=scope, level=level, prior=prior, applied=applied, below=below,
        )  # fmt: skip

    def _reassert(self, record: Engaged, engaged: list[Engaged], snapshot: Snapshot) -> KillPlan:
        """Engaged already: a kill re-asserts the values the engaged kills set wherever a
        flag no longer has them (changed out of band, e.g. by hand in psql), and a global
        kill takes in any override created since."""
        name, scope = self.switch, self.scope
        since = f"since {record.engaged_at:%Y-%m-%d %H:%M:%S %Z} by {record.actor or record.db_user}"
        changes = []
        below = {flag: dict(by_scope) for flag, by_scope in record.below.items()}
        for flag in sorted(record.settings):
            global_now = snapshot.globals[flag]
            default = self.manifest.flags[flag].default_value()
            for at in _covered(snapshot, flag, scope, record):
                holders = engaged_at(engaged, flag, at)
                now = snapshot.at(flag, at)
                if record in holders:
                    expected = left_at(holders, flag, at, global_now, default)
                else:  # an override that appeared under the kill: it covers that one too
                    expected = with_kill(holders, record, flag, at, now, global_now, default)
                    base = base_at(holders, flag, at) if holders else now
                    below.setdefault(flag, {})[at] = Below(base, expected)
                if now != expected:
                    changes.append(Change(flag, at, now, expected))
        if not changes:
            return KillPlan(
                "kill", f"engage kill switch {name} (scope {scope})", switch=name, scope=scope,
                noop=f"kill switch {name} is already engaged (scope {scope}) {since}, and every flag has its values",
            )  # fmt: skip
        return KillPlan(
            "kill", f"re-assert kill switch {name} (scope {scope}), engaged {since}", changes=changes,
            checks=["the flags were changed while the kill was engaged; writing the kill's values back"],
            snapshot=snapshot, switch=name, scope=scope, reassert=True,
            below=below if below != record.below else {},
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: KillPlan) -> None:
        # The database's kill writes and records it (the security role holds no DML of its
        # own): planned here under the same locks, so it changes exactly what was shown.
        _as_planned(plan, engage(conn, self.manifest, plan.switch, plan.scope))


@dataclass
class Release(Action[ReleasePlan]):
    """Release an engaged kill switch: restore the values it replaced (``force``: even over
    changes made since)."""

    manifest: Manifest
    switch: str
    scope: str = GLOBAL
    force: bool = False
    acts_on_published: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return "release"

    def honours_freezes(self) -> bool:
        return False  # a release restores what a kill replaced

    def validate(self) -> None:
        self.manifest.switch(self.switch)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> ReleasePlan:
        self.validate()
        name, scope = self.switch, self.scope
        summary = f"release kill switch {name} (scope {scope})"
        if locked:  # the database takes the release's locks, as flagctl.release does
            hold(conn, self.manifest, name, scope, sorted(self.manifest.switches[name]))
        engaged = list_engaged(conn, self.manifest)
        record = next((e for e in engaged if e.switch == name and e.scope == scope), None)
        if record is None:
            return ReleasePlan(
                "release", summary, switch=name, scope=scope,
                noop=f"kill switch {name} is not engaged (scope {scope})",
            )  # fmt: skip
        flags = sorted(record.settings)
        snapshot = FlagStore(conn, self.manifest).for_change(flags, locked=False)
        changes: list[Change] = []
        conflicts: list[str] = []
        checks: list[str] = []
        for flag in flags:
            global_now = snapshot.globals[flag]
            default = self.manifest.flags[flag].default_value()
            for at in _covered(snapshot, flag, scope, record):
                now = snapshot.at(flag, at)
                holders = engaged_at(engaged, flag, at)
                others = [e for e in holders if e is not record]
                if record not in holders:
                    continue  # an override the kill never covered
                expected = left_at(holders, flag, at, global_now, default)
                where = flag if at == scope else f"{flag} at {at}"
                if now != expected:
                    conflicts.append(
                        f"{where}: the kills set {describe(expected)}, it is now {describe(now)}"
                    )
                target = without(holders, record, flag, at, global_now, default)
                if others and at == scope:
                    checks.append(f"{flag} stays held by {', '.join(e.switch for e in others)}")
                if target != now:
                    changes.append(Change(flag, at, now, target))
        if conflicts and not self.force:
            raise ConflictError(
                f"{_flags(len(conflicts))} changed since {name} was engaged: " + "; ".join(conflicts),
                "someone changed it in between; check `flagctl audit log`, then release with --force "
                "to restore the values from before the kill anyway",
            )
        if conflicts:
            checks.append("forced: restoring the values from before the kill over later changes")
        return ReleasePlan(
            "release", summary, changes=changes, checks=checks, forced=bool(conflicts),
            snapshot=snapshot, switch=name, scope=scope,
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: ReleasePlan) -> None:
        _as_planned(plan, disengage(conn, self.manifest, plan.switch, plan.scope, plan.forced))


def _as_planned(plan: Plan, done: list[Change]) -> None:
    """What the database's kill or release changed is what took; should it ever differ from
    flagctl's plan (a bug in one of them), the report says so and shows what took."""
    if {(c.flag, c.scope): c.after for c in done} == {(c.flag, c.scope): c.after for c in plan.changes}:
        return
    planned = "; ".join(f"{c.flag} at {c.scope}: {c.describe()}" for c in plan.changes) or "no change"
    plan.checks.append(
        f"flagctl planned {planned}, the database's {plan.action} did otherwise; shown is what took "
        "(a bug: please report it)"
    )
    plan.changes = done


def _covered(snapshot: Snapshot, flag: str, scope: str, record: Engaged | None = None) -> list[str]:
    """The scopes a kill at ``scope`` writes: its own, and for a global kill every scoped
    override of the flag (those it recorded, and those stored now)."""
    if scope != GLOBAL:
        return [scope]
    recorded = record.below.get(flag, {}) if record is not None else {}
    return [GLOBAL, *sorted({*snapshot.overrides.get(flag, {}), *recorded})]


def _stored(snapshot: Snapshot, flag: str, scope: str) -> Any:
    """What is stored at a scope (None: no row — at the global scope, a flag of flagctl's
    own table never set, whose default applies; the release removes the row again)."""
    if scope == GLOBAL and flag not in snapshot.stored:
        return None
    return snapshot.at(flag, scope)


def _overrides(count: int) -> str:
    return "1 scoped override" if count == 1 else f"{count} scoped overrides"


def _flags(count: int) -> str:
    return "a flag" if count == 1 else f"{count} flags"
