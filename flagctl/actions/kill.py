"""Kill and Release: engage a kill switch in one transaction; restore exactly what it replaced.

Engaging bypasses bakes, freezes and guardrails. How engaged switches combine is in
``flagctl.rules.kills``. A release that finds a flag changed since the kill (someone
edited it in between) stops with a conflict unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan
from flagctl.errors import ConflictError
from flagctl.model.change import Change
from flagctl.model.flagtypes import describe
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.rules.kills import Engaged, engaged_at, overlay
from flagctl.store.flags import FlagStore, Snapshot
from flagctl.store.switches import list_engaged, record_engaged, remove_engaged

if TYPE_CHECKING:
    import psycopg


@dataclass
class KillPlan(Plan):
    switch: str = ""
    scope: str = GLOBAL
    level: int = 5
    prior: dict[str, Any] = field(default_factory=dict)  # flag → base value before any kill
    applied: dict[str, Any] = field(default_factory=dict)  # flag → value with this switch engaged
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

    @property
    def name(self) -> str:
        return "kill"

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
        snapshot = FlagStore(conn, self.manifest).for_change(flags, locked=locked)
        values = {f: snapshot.at(f, scope) for f in flags}
        engaged = list_engaged(conn, self.manifest, lock=locked)
        summary = f"engage kill switch {name} (level {level}, scope {scope})"
        record = next((e for e in engaged if e.switch == name and e.scope == scope), None)
        if record is not None:
            return self._reassert(record, engaged, values, snapshot)
        me = Engaged(name, scope, level, 1 << 62, datetime.max, None, "", "", {}, {}, settings)
        prior: dict[str, Any] = {}
        applied: dict[str, Any] = {}
        changes = []
        for flag in flags:
            holders = engaged_at(engaged, flag, scope)
            prior[flag] = holders[0].prior[flag] if holders else values[flag]
            start = prior[flag] if prior[flag] is not None else snapshot.globals[flag]
            applied[flag] = overlay(start, [*holders, me], flag)
            if applied[flag] != values[flag]:
                changes.append(Change(flag, scope, values[flag], applied[flag]))
        checks = ["kill switches bypass bakes, freezes and guardrails"]
        if not changes:
            checks.append("every flag already has the kill values; the switch is recorded as engaged")
        return KillPlan(
            "kill", summary, changes=changes, checks=checks, snapshot=snapshot,
            switch=name, scope=scope, level=level, prior=prior, applied=applied,
        )  # fmt: skip

    def _reassert(
        self, record: Engaged, engaged: list[Engaged], values: dict[str, Any], snapshot: Snapshot
    ) -> KillPlan:
        """Engaged already: a kill re-asserts the values the engaged kills set wherever a
        flag no longer has them (changed out of band, e.g. by hand in psql)."""
        name, scope = self.switch, self.scope
        since = f"since {record.engaged_at:%Y-%m-%d %H:%M:%S %Z} by {record.actor or record.db_user}"
        changes = []
        for flag in sorted(record.settings):
            expected = kills_left(record, engaged_at(engaged, flag, scope), flag, snapshot)
            if values[flag] != expected:
                changes.append(Change(flag, scope, values[flag], expected))
        if not changes:
            return KillPlan(
                "kill", f"engage kill switch {name} (scope {scope})", switch=name, scope=scope,
                noop=f"kill switch {name} is already engaged (scope {scope}) {since}, and every flag has its values",
            )  # fmt: skip
        return KillPlan(
            "kill", f"re-assert kill switch {name} (scope {scope}), engaged {since}", changes=changes,
            checks=["the flags were changed while the kill was engaged; writing the kill's values back"],
            snapshot=snapshot, switch=name, scope=scope, reassert=True,
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: KillPlan) -> None:
        FlagStore(conn, self.manifest).write(plan.changes)
        if plan.reassert:
            return
        record_engaged(
            conn, self.manifest, (plan.switch, plan.scope, plan.level), plan.prior, plan.applied,
            self.manifest.switches[plan.switch],
        )  # fmt: skip


@dataclass
class Release(Action[ReleasePlan]):
    """Release an engaged kill switch: restore the values it replaced (``force``: even over
    changes made since)."""

    manifest: Manifest
    switch: str
    scope: str = GLOBAL
    force: bool = False

    @property
    def name(self) -> str:
        return "release"

    def validate(self) -> None:
        self.manifest.switch(self.switch)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> ReleasePlan:
        self.validate()
        name, scope = self.switch, self.scope
        summary = f"release kill switch {name} (scope {scope})"
        engaged = list_engaged(conn, self.manifest, lock=locked)
        record = next((e for e in engaged if e.switch == name and e.scope == scope), None)
        if record is None:
            return ReleasePlan(
                "release", summary, switch=name, scope=scope,
                noop=f"kill switch {name} is not engaged (scope {scope})",
            )  # fmt: skip
        flags = sorted(record.settings)
        snapshot = FlagStore(conn, self.manifest).for_change(flags, locked=locked)
        changes: list[Change] = []
        conflicts: list[str] = []
        checks: list[str] = []
        for flag in flags:
            now = snapshot.at(flag, scope)
            holders = engaged_at(engaged, flag, scope)
            others = [e for e in holders if e is not record]
            base = record.prior[flag]
            start = base if base is not None else snapshot.globals[flag]
            expected = kills_left(record, holders, flag, snapshot)
            if now != expected:
                conflicts.append(f"{flag}: the kills set {describe(expected)}, it is now {describe(now)}")
            target = overlay(start, others, flag) if others else base
            if others:
                checks.append(f"{flag} stays held by {', '.join(e.switch for e in others)}")
            if target != now:
                changes.append(Change(flag, scope, now, target))
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
        FlagStore(conn, self.manifest).write(plan.changes)
        remove_engaged(conn, self.manifest, plan.switch, plan.scope)


def kills_left(record: Engaged, holders: list[Engaged], flag: str, snapshot: Snapshot) -> Any:
    """The value the engaged kills left on ``flag`` at the record's scope — what a re-kill
    writes back and what a release expects to find.

    Over a stored value: that value overlaid with every holder's settings. Where the kills
    created the override themselves (no value at that scope before), they built it from
    the global value of their time; a global move since is no change of it, so what they
    left is what the latest of them wrote."""
    base = record.prior[flag]
    if base is None and record.scope != GLOBAL:
        return max(holders, key=lambda e: e.seq).applied[flag]
    start = base if base is not None else snapshot.globals[flag]
    return overlay(start, holders, flag)


def _flags(count: int) -> str:
    return "a flag" if count == 1 else f"{count} flags"
