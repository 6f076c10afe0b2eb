"""Plans and how every mutation is carried out.

A mutation is a *planner* (reads state, applies the rules, returns a Plan or raises
PolicyRefused) and an *applier* (writes the plan). ``execute`` runs them the same way
for every command:

1. with a prompt: plan without locks, show the diff, ask;
2. in one transaction: declare the audit context, lock the rows, plan again against
   the locked state, and apply. If the state moved since the confirmed preview, the
   command stops with a conflict instead of applying something nobody confirmed.
A refusal by policy is itself recorded in the audit trail (in its own transaction).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flagctl.errors import ConflictError, FlagctlError, PolicyRefused
from flagctl.model.constraints import check_plan
from flagctl.model.flagtypes import change_text, effective_text, to_json
from flagctl.store.db import AuditContext, transaction

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest
    from flagctl.store.flags import Snapshot


@dataclass(frozen=True)
class Change:
    """One flag at one scope, from ``before`` to ``after`` (None: no override there)."""

    flag: str
    scope: str
    before: Any
    after: Any

    def describe(self) -> str:
        return change_text(self.before, self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "scope": self.scope,
            "before": to_json(self.before),
            "after": to_json(self.after),
            "effective_before": effective_text(self.before),
            "effective_after": effective_text(self.after),
        }


@dataclass
class Plan:
    action: str  # stage.set, kill, release, set
    summary: str
    changes: list[Change] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # rules that were checked, with evidence
    forced: bool = False
    noop: str | None = None  # why there is nothing to do
    data: dict[str, Any] = field(default_factory=dict)  # what the applier needs beyond changes
    snapshot: Snapshot | None = field(default=None, compare=False)  # the state it was planned on

    def fingerprint(self) -> tuple[Any, ...]:
        return (self.noop is None, repr(self.changes), repr(sorted(self.data.items())))


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    applied: bool
    dry_run: bool


Planner = Callable[["psycopg.Connection[Any]", bool], Plan]
Applier = Callable[["psycopg.Connection[Any]", Plan], None]
Confirm = Callable[[Plan], bool]


class NotConfirmed(FlagctlError):
    """The operator answered no at the prompt; nothing was changed."""


def execute(
    conn: psycopg.Connection[Any],
    planner: Planner,
    applier: Applier,
    audit: AuditContext,
    *,
    manifest: Manifest,
    confirm: Confirm | None,
    dry_run: bool = False,
    lock_timeout: timedelta = timedelta(seconds=5),
) -> Outcome:
    """Plan, optionally confirm, then lock, re-plan and apply in one transaction.

    ``confirm=None`` means no prompt (``--yes``).
    """
    preview: Plan | None = None
    if dry_run or confirm is not None:
        preview = _plan_or_record(conn, planner, audit, locked=False, record=not dry_run)
        with transaction(conn, read_only=True) as tx:
            check_plan(tx, manifest, preview)
        if dry_run or preview.noop:
            return Outcome(preview, applied=False, dry_run=dry_run)
        assert confirm is not None
        if not confirm(preview):
            raise NotConfirmed("not confirmed; nothing was changed")
    try:
        with transaction(conn, audit, lock_timeout) as tx:
            plan = planner(tx, True)
            if preview is not None and plan.fingerprint() != preview.fingerprint():
                raise ConflictError(
                    "the state changed while you were confirming; nothing was changed",
                    "re-run the command to see the new plan",
                )
            if plan.noop:
                return Outcome(plan, applied=False, dry_run=False)
            check_plan(tx, manifest, plan)
            if plan.forced:
                tx.execute("SELECT set_config('flagctl.forced', 'true', true)")
            applier(tx, plan)
    except PolicyRefused as refusal:
        _record_refusal(conn, audit, refusal)
        raise
    return Outcome(plan, applied=True, dry_run=False)


def _plan_or_record(
    conn: psycopg.Connection[Any], planner: Planner, audit: AuditContext, locked: bool, record: bool
) -> Plan:
    try:
        with transaction(conn, read_only=True) as tx:
            return planner(tx, locked)
    except PolicyRefused as refusal:
        if record:
            _record_refusal(conn, audit, refusal)
        raise


def _record_refusal(conn: psycopg.Connection[Any], audit: AuditContext, refusal: PolicyRefused) -> None:
    from psycopg.types.json import Jsonb

    detail = {"refused": refusal.message, "hint": refusal.hint, **refusal.detail}
    refused = AuditContext(audit.actor, audit.reason, audit.action + ".refused", audit.command)
    with transaction(conn, refused) as tx:
        tx.execute(
            "SELECT flagctl.audit_event(%s, %s, %s, %s, %s)",
            (
                refused.action,
                refusal.system,
                None,
                refusal.target or audit.action,
                Jsonb(detail),
            ),
        )
