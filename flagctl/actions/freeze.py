"""FreezeSet and FreezeClear: stop exposure from widening at a scope, for a while.

What a freeze blocks is in ``flagctl.rules.freeze``; every widening change checks the
freezes in force inside its own locked transaction (``actions.base.check_freezes``), so a
freeze set a moment ago is never raced past. Setting and clearing are audited like every
change (``flagctl.freeze`` has the audit trigger).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan
from flagctl.errors import UsageError
from flagctl.model.flagtypes import SCOPE
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL
from flagctl.store.freezes import active_freezes, add_freeze, clear_freezes, lock_freezes

if TYPE_CHECKING:
    import psycopg

    from flagctl.rules.freeze import Freeze


@dataclass
class FreezePlan(Plan):
    scope: str = GLOBAL
    until: datetime | None = None
    clearing: list[int] | None = None  # ids to clear


def check_freeze_scope(scope: str) -> None:
    if scope != GLOBAL and not SCOPE.match(scope):
        raise UsageError(f"invalid scope {scope!r}", "use global, or KIND:VALUE such as workspace:42")


@dataclass
class FreezeSet(Action[FreezePlan]):
    """Freeze ``scope`` until ``until`` (None: until cleared)."""

    manifest: Manifest
    scope: str = GLOBAL
    until: datetime | None = None
    now: datetime | None = None  # to refuse an end already past

    @property
    def name(self) -> str:
        return "freeze.set"

    def honours_freezes(self) -> bool:
        return False

    def validate(self) -> None:
        check_freeze_scope(self.scope)
        if self.until is not None and self.now is not None and self.until <= self.now:
            raise UsageError(f"--until {self.until:%Y-%m-%d %H:%M %Z} is already past", "give a time to come")

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> FreezePlan:
        self.validate()
        if locked:
            lock_freezes(conn, self.manifest)
        until = f"until {self.until:%Y-%m-%d %H:%M %Z}" if self.until else "until cleared"
        summary = f"freeze {self.manifest.system} at {self.scope} {until}"
        same = [
            f for f in active_freezes(conn, self.manifest) if f.scope == self.scope and f.until == self.until
        ]
        if same:
            return FreezePlan(
                "freeze.set", summary, noop=f"already frozen: {same[0].describe()}", scope=self.scope
            )
        checks = ["blocks forward stage moves, and sets and profile applies that widen exposure",
                  "never blocks kills, releases or rollbacks"]  # fmt: skip
        return FreezePlan("freeze.set", summary, checks=checks, scope=self.scope, until=self.until)

    def apply(self, conn: psycopg.Connection[Any], plan: FreezePlan) -> None:
        add_freeze(conn, self.manifest, plan.scope, plan.until)


@dataclass
class FreezeClear(Action[FreezePlan]):
    """Clear the freezes in force at ``scope`` (or the one with ``freeze_id``)."""

    manifest: Manifest
    scope: str = GLOBAL
    freeze_id: int | None = None

    @property
    def name(self) -> str:
        return "freeze.clear"

    def honours_freezes(self) -> bool:
        return False

    def validate(self) -> None:
        check_freeze_scope(self.scope)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> FreezePlan:
        self.validate()
        if locked:
            lock_freezes(conn, self.manifest)
        found: list[Freeze] = [
            f for f in active_freezes(conn, self.manifest)
            if (f.id == self.freeze_id if self.freeze_id is not None else f.scope == self.scope)
        ]  # fmt: skip
        which = f"freeze {self.freeze_id}" if self.freeze_id is not None else f"the freezes at {self.scope}"
        if not found:
            return FreezePlan("freeze.clear", f"clear {which}", noop=f"no freeze in force matches ({which})")
        return FreezePlan(
            "freeze.clear", f"clear {which}", checks=[f.describe() for f in found],
            scope=self.scope, clearing=[f.id for f in found],
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: FreezePlan) -> None:
        clear_freezes(conn, plan.clearing or [])
