"""Typed actions, their plans, and how every change is carried out.

Every mutating operation is one ``Action``: ``plan`` reads the state and applies the
rules (returning a typed ``Plan`` or raising PolicyRefused), ``apply`` writes the plan.
``execute`` runs every action the same way, from the CLI and from the watchdog alike:

1. with a prompt: plan without locks, show the diff, ask;
2. in one transaction: declare the audit context, lock the rows, plan again against
   the locked state, and apply. If the state moved since the confirmed preview, the
   command stops with a conflict instead of applying something nobody confirmed.
A refusal by policy is itself recorded in the audit trail (in its own transaction).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

import psycopg

from flagctl.errors import (
    ConflictError,
    ConnectionFailed,
    FlagctlError,
    NeedsApproval,
    NotConfirmed,
    PolicyRefused,
    UsageError,
    WriteNotTaken,
)
from flagctl.model.change import Change
from flagctl.rules.constraints import constrained_flags, violations_after
from flagctl.store.audit import applied_request, lock_request, record_event
from flagctl.store.breaker import KillBlocker, LockBreaker, describe
from flagctl.store.db import AuditContext, mark_forced, transaction

if TYPE_CHECKING:
    from flagctl.model.manifest import Manifest
    from flagctl.store.flags import Snapshot


@dataclass
class Plan:
    """What an action will do: the changes, the rules checked (with their evidence), and
    whether it is forced or has nothing to do. Each action extends it with typed fields."""

    action: str  # as recorded in the audit: kill, release, stage.set, set, profile.apply:NAME, …
    summary: str
    changes: list[Change] = field(default_factory=list)
    checks: list[str] = field(default_factory=list)  # rules that were checked, with evidence
    forced: bool = False
    noop: str | None = None  # why there is nothing to do
    snapshot: Snapshot | None = field(default=None, compare=False, repr=False)  # the state it was planned on

    def details(self) -> dict[str, Any]:
        """What this kind of plan adds to the mutation document (``-o json``)."""
        return {}

    def detail_lines(self) -> list[str]:
        """What this kind of plan adds to the plan as printed, below its changes."""
        return []

    def fingerprint(self) -> tuple[Any, ...]:
        """What must not change between the confirmed preview and the locked re-plan."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _PLAN_FIELDS}
        return (self.noop is None, repr(self.changes), repr(sorted(own.items())))


_PLAN_FIELDS = {"action", "summary", "changes", "checks", "forced", "noop", "snapshot"}

P = TypeVar("P", bound=Plan)


class Action(ABC, Generic[P]):
    """One change flagctl makes. ``validate`` runs before any connection; ``plan`` reads
    the state and applies the rules (raising PolicyRefused or UsageError); ``apply`` writes
    the plan inside the audited transaction that planned it with the locks held."""

    manifest: Manifest
    # Whether planning runs slow reads (guardrail queries). Such an action is always planned
    # once without locks first — the slow reads happen there — and the locked plan reuses
    # their results and must come out the same, so no lock is held while they run.
    slow_checks: ClassVar[bool] = False
    # Whether running it again is always right (a kill re-asserts its values): such an
    # action runs again even when its request id was applied before.
    repeatable: ClassVar[bool] = False
    # Whether it acts on the published catalogue when the local manifest differs from it (a
    # kill and a release: the on-call's copy must never stand between them and the fix);
    # any other action is refused then.
    acts_on_published: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str:
        """The audit trail's action name."""

    def honours_freezes(self) -> bool:
        """Whether an active freeze may block its widening changes (kills, releases and
        rollbacks never ask)."""
        return True

    def validate(self) -> None:
        """Check what can be checked without a database (unknown names, bad scopes)."""

    @abstractmethod
    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> P:
        """Read the state (locking it when ``locked``) and decide."""

    @abstractmethod
    def apply(self, conn: psycopg.Connection[Any], plan: P) -> None:
        """Write the plan."""


class Requestable(Action[P]):
    """A change the manifest's ``approvals:`` may hold for a second person: it says why,
    and how to build it again when its request is approved (``flagctl approve``)."""

    @abstractmethod
    def approval(self, plan: P) -> str | None:
        """Why this plan needs a second person (None: it does not)."""

    @abstractmethod
    def request_spec(self, plan: P) -> dict[str, Any]:
        """How to build this change again when its request is approved."""


@dataclass(frozen=True)
class Outcome:
    plan: Plan
    applied: bool
    dry_run: bool
    note: str | None = None  # something the operator should know about how it went
    txid: int | None = None  # the transaction that applied it
    broken: list[KillBlocker] = field(default_factory=list)  # sessions --break-locks acted on


Confirm = Callable[[Plan], bool]


def one_line(text: str, limit: int = 480) -> str:
    """Text fit for an audit reason a program composed: one line, bounded."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def execute(
    conn: psycopg.Connection[Any],
    action: Action[P],
    audit: AuditContext,
    *,
    confirm: Confirm | None,
    dry_run: bool = False,
    lock_timeout: timedelta = timedelta(seconds=5),
    reconnect: Callable[[], psycopg.Connection[Any]] | None = None,
    break_locks: bool = False,
    idempotent: bool = False,
    approving: int | None = None,
) -> Outcome:
    """Plan, optionally confirm, then lock, re-plan and apply in one transaction.

    ``approving``: the id of the pending request this change applies (``flagctl approve``);
    the database marks it approved in the same transaction, refusing its own requester.
    A change that needs approval and has none raises ``NeedsApproval``, after recording
    the request (``create_request``) and the refusal.

    ``idempotent``: the caller chose ``audit.request_id`` (a script's retry key); if a
    change with that id was already applied, nothing is done again (checked again under
    a lock on the id in the applying transaction, so two retries racing apply it once).

    ``confirm=None`` means no prompt (``--yes``). If the connection is lost while the
    change commits, ``reconnect`` gives a new one to ask whether it did (txid_status):
    a committed change is reported as applied, never as "retry". ``break_locks`` (a kill,
    with ``reconnect``): a second connection watches the transaction while it waits, and
    ends what blocks it past ``lock_timeout`` (store.breaker); the database audits each.
    """
    manifest = action.manifest
    request = audit.request_id if idempotent and not action.repeatable else None
    if request:
        done = _applied_before(conn, request, lock=False)
        if done is not None:
            return done
    preview: Plan | None = None
    if dry_run or confirm is not None or action.slow_checks:
        preview = _plan_or_record(conn, action, audit, record=not dry_run)
        with transaction(conn, read_only=True) as tx:
            check_constraints(tx, manifest, preview)
        if dry_run or preview.noop:
            return Outcome(preview, applied=False, dry_run=dry_run)
        if confirm is not None and not confirm(preview):
            raise NotConfirmed("not confirmed; nothing was changed")
    txid: list[int] = []
    planned: list[Plan] = []
    breaker = _breaker(conn, action, audit, lock_timeout, reconnect) if break_locks else None
    try:
        with breaker or nullcontext():
            outcome = _apply_locked(
                conn, action, audit, preview, breaker.lock_timeout if breaker else lock_timeout, txid, planned,
                request, approving,
            )  # fmt: skip
    except ConflictError as conflict:
        raise _unbroken(conflict, breaker) if breaker else conflict from None
    except NeedsApproval as needed:
        assert isinstance(action, Requestable)  # only a Requestable needs approval
        _request(conn, action, audit, needed, planned[0] if planned else None)
        _record_refusal(conn, audit, needed)
        raise
    except PolicyRefused as refusal:
        if isinstance(refusal, WriteNotTaken):  # rolled back: now say what was in the way
            _name_culprits(conn, refusal)
        _record_refusal(conn, audit, refusal)
        raise
    except psycopg.errors.LockNotAvailable:
        # A wait outside flagctl's own lock statements (e.g. a read of a bound table that a
        # migration holds ACCESS EXCLUSIVE): name who holds its tables, as those do.
        named = _table_conflict(conn, action.manifest)
        raise (_unbroken(named, breaker) if breaker else named) from None
    except psycopg.OperationalError:
        if not (conn.closed or conn.broken) or not txid or not planned or reconnect is None:
            raise
        status = _outcome_of(reconnect, txid[0])
        if status == "aborted":
            raise ConnectionFailed(
                f"the connection dropped before the change committed: transaction {txid[0]} was "
                "rolled back, nothing was changed",
                "run the command again",
            ) from None
        if status != "committed":
            raise ConnectionFailed(
                f"the connection dropped while the change was committing, and whether transaction "
                f"{txid[0]} committed is unknown",
                "check `flagctl status` and `flagctl audit log` before acting again "
                "(a kill is always safe to repeat: it re-asserts)",
            ) from None
        return Outcome(planned[0], applied=True, dry_run=False, note=f"the connection dropped while "
                       f"committing; transaction {txid[0]} did commit", txid=txid[0])  # fmt: skip
    broken = breaker.ended() if breaker else []
    if broken and outcome.applied:
        note = f"broke locks to get through: {describe(broken)}"
        outcome = replace(outcome, note=f"{outcome.note}; {note}" if outcome.note else note, broken=broken)
    return outcome


def _breaker(
    conn: psycopg.Connection[Any],
    action: Action[P],
    audit: AuditContext,
    lock_timeout: timedelta,
    reconnect: Callable[[], psycopg.Connection[Any]] | None,
) -> LockBreaker:
    if reconnect is None:
        raise UsageError("--break-locks needs a second connection to watch the kill from")
    if action.name not in ("kill", "release"):
        raise UsageError(f"--break-locks is for a kill or a release, not {action.name}")
    return LockBreaker(reconnect, conn.info.backend_pid, lock_timeout, audit, action.manifest.system)


def _table_conflict(conn: psycopg.Connection[Any], manifest: Manifest) -> ConflictError:
    """A lock wait that timed out: the sessions holding a lock on the system's bound tables
    or on flagctl's, in this database, named."""
    from flagctl.store.db import lock_conflict, table_writers

    tables = sorted({f"{spec.table}" for spec in manifest.model.flags.values() if spec.table})
    found = table_writers(conn, [*tables, "flagctl.flag_state", "flagctl.engaged_switch"])
    return lock_conflict(f"the tables of system {manifest.system}", found)


def _unbroken(conflict: ConflictError, breaker: LockBreaker) -> FlagctlError:
    """The kill still could not get its locks: say who blocked it and why each was not ended."""
    if breaker.error is not None:
        conflict.hint = f"{conflict.hint}; the lock breaker failed: {breaker.error}"
        return conflict
    tried = breaker.ended()
    if not tried:
        return conflict
    left = [b for b in tried if b.ended not in ("cancelled", "terminated")]
    conflict.message = f"{conflict.message}; --break-locks: {describe(tried)}"
    if any(b.superuser for b in left):
        conflict.hint = (
            "a superuser's session blocks the kill and flagctl never ends one: ask a DBA to end it "
            f"(SELECT pg_terminate_backend({next(b.pid for b in left if b.superuser)})), then re-run the kill"
        )
    elif left:
        conflict.hint = f"{left[0].ended}; end pid {left[0].pid} another way, then re-run the kill"
    return conflict


def _apply_locked(
    conn: psycopg.Connection[Any],
    action: Action[P],
    audit: AuditContext,
    preview: Plan | None,
    lock_timeout: timedelta,
    txid: list[int],
    planned: list[Plan],
    request: str | None = None,
    approving: int | None = None,
) -> Outcome:
    """The locked transaction: plan again under the locks, check, apply. ``txid`` and
    ``planned`` receive the transaction's id and its plan (for a commit whose answer is lost)."""
    txid.clear()
    planned.clear()
    manifest = action.manifest
    catalogue = (manifest.system, manifest.source) if manifest.source else None
    published: list[tuple[int | None, bool | None]] = []
    notes: list[str] = []
    with transaction(conn, audit, lock_timeout, txid=txid, catalogue=catalogue, published=published) as tx:
        version, same = published[0] if published else (None, None)
        if version is not None and same is False:
            action = _on_published(tx, action, version)
            notes.append(
                f"the local manifest {manifest.path} differs from the published version {version}: "
                f"the {action.name} acted on the published definition (flagctl manifest diff)"
            )
        if request:
            done = _applied_before(tx, request, lock=True)
            if done is not None:
                return done
        plan = action.plan(tx, True)
        planned.append(plan)
        if plan.noop:  # nothing to do is safe whatever changed since the preview
            return Outcome(plan, applied=False, dry_run=False)
        if preview is not None and plan.fingerprint() != preview.fingerprint():
            raise ConflictError(
                "the state changed while the change was being checked or confirmed; nothing was changed",
                "re-run the command to see the new plan",
            )
        check_constraints(tx, action.manifest, plan)
        if plan.changes and action.honours_freezes():
            check_freezes(tx, action.manifest, plan)
        why = action.approval(plan) if isinstance(action, Requestable) else None
        if why is not None and approving is None:
            raise NeedsApproval(
                f"{plan.summary}: {why}", system=action.manifest.system, target=plan.action, why=why
            )
        if approving is not None:
            from flagctl.store.requests import mark_approved

            mark_approved(tx, action.manifest, approving)
        if plan.forced:
            mark_forced(tx)
        action.apply(tx, plan)
    note = "; ".join(notes) or None
    return Outcome(plan, applied=True, dry_run=False, note=note, txid=txid[0] if txid else None)


def _on_published(conn: psycopg.Connection[Any], action: Action[P], version: int) -> Action[P]:
    """The local manifest is not the published one: a kill or a release acts on the
    published definition instead; any other change is refused (exit 2)."""
    from dataclasses import replace as rebuilt

    manifest = action.manifest
    if not action.acts_on_published:
        raise UsageError(
            f"the local manifest {manifest.path} differs from the one published for {manifest.system} "
            f"(version {version}); nothing was changed",
            "see what differs: flagctl manifest diff; then publish yours (flagctl manifest publish -r …) "
            "or use the published one",
        )
    import os

    from flagctl.model.cache import ManifestCache
    from flagctl.store.catalogue import published_manifest

    current = published_manifest(conn, manifest.system, ManifestCache.from_environ(os.environ))
    return rebuilt(action, manifest=current)  # type: ignore[type-var]


def _applied_before(conn: psycopg.Connection[Any], request: str, lock: bool) -> Outcome | None:
    """The outcome of a request id already applied (None: it was not)."""
    if lock:
        lock_request(conn, request)
    applied = applied_request(conn, request)
    if applied is None:
        return None
    seq, txid = applied
    plan = Plan("request", f"request {request}", noop=f"request {request} was already applied "
                f"(audit row {seq}, transaction {txid}); nothing was done again")  # fmt: skip
    return Outcome(plan, applied=False, dry_run=False)


def _outcome_of(reconnect: Callable[[], psycopg.Connection[Any]], txid: int) -> str | None:
    """committed / aborted / in progress (None: unknown, or no way to ask)."""
    from flagctl.store.db import txid_status

    try:
        with reconnect() as conn:
            return txid_status(conn, txid)
    except (psycopg.Error, FlagctlError):
        return None


def check_freezes(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    """Refuse (exit 1) a plan that widens exposure where a freeze is in force."""
    from flagctl.rules.freeze import blocked
    from flagctl.store.freezes import freezes_in_force

    freezes = freezes_in_force(conn, manifest)
    found = blocked(manifest, freezes, plan.changes) if freezes else []
    if found:
        change, freeze = found[0]
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise PolicyRefused(
            f"frozen: {change.flag} at {change.scope} would widen exposure ({change.describe()}); "
            f"{freeze.describe()}{more}",
            f"wait for the freeze to end, or clear it: flagctl freeze clear --scope {freeze.scope} -r …",
            system=manifest.system,
            target=plan.action,
        )


def check_constraints(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    """Raise UsageError (exit 2) if the state the plan produces breaks a cross-flag
    constraint, globally or at any scope with an override. Uses the plan's own snapshot
    when it covers the constrained flags (it does for every action here)."""
    from flagctl.store.flags import FlagStore

    if not manifest.model.constraints or not plan.changes:
        return
    constrained = constrained_flags(manifest)
    snapshot = plan.snapshot
    if snapshot is None or not constrained <= set(snapshot.globals):
        snapshot = FlagStore(conn, manifest).snapshot(constrained)
    found = violations_after(manifest, snapshot.globals, snapshot.overrides, plan.changes)
    if found:
        first = found[0]
        more = f" (+{len(found) - 1} more)" if len(found) > 1 else ""
        raise UsageError(
            f"constraint {first.rule} would be violated at {first.scope}: {first.why}{more}; nothing was changed",
            "change the values so every constraint in the manifest holds (flagctl status shows the current ones)",
        )


def _plan_or_record(
    conn: psycopg.Connection[Any], action: Action[P], audit: AuditContext, record: bool
) -> Plan:
    try:
        with transaction(conn, read_only=True) as tx:
            return action.plan(tx, False)
    except PolicyRefused as refusal:
        if record:
            _record_refusal(conn, audit, refusal)
        raise


def _request(
    conn: psycopg.Connection[Any],
    action: Requestable[Any],
    audit: AuditContext,
    needed: NeedsApproval,
    plan: Plan | None,
) -> None:
    """Record the change as a pending request (its own transaction), and say how to approve it."""
    from flagctl.store.requests import create_request

    assert plan is not None
    approvals = action.manifest.model.approvals
    needed.request_id = create_request(
        conn, action.manifest, plan.action, action.request_spec(plan), needed.why, audit.reason, audit.actor,
        plan.changes,
    )  # fmt: skip
    needed.message = f"{needed.message}; not applied: it waits as request {needed.request_id}"
    needed.hint = f"another database user approves it: flagctl approve {needed.request_id} --reason … (within {approvals.expire if approvals else '24h'})"
    needed.detail["request"] = needed.request_id


def _name_culprits(conn: psycopg.Connection[Any], refusal: WriteNotTaken) -> None:
    """Name the triggers and rules of the table that kept a write from taking."""
    from flagctl.store.db import interference

    try:
        with transaction(conn, read_only=True) as tx:
            refusal.name(interference(tx, refusal.table))
    except psycopg.Error:
        pass  # the refusal stands without the names


def _record_refusal(conn: psycopg.Connection[Any], audit: AuditContext, refusal: PolicyRefused) -> None:
    """Record a refusal in the audit trail, in its own transaction. A role that may not
    write audit events (EXECUTE on flagctl.audit_event) still gets the refusal itself."""
    from psycopg import errors

    detail = {"refused": refusal.message, "hint": refusal.hint, **refusal.detail}
    refused = replace(audit, action=audit.action + ".refused")
    try:
        with transaction(conn, refused) as tx:
            record_event(tx, refused.action, refusal.system, None, refusal.target or audit.action, detail)
    except errors.InsufficientPrivilege:
        refusal.hint = (
            f"{refusal.hint or ''} (this refusal was not recorded: no EXECUTE on flagctl.audit_event)".strip()
        )
