"""The kill as a whole, for any caller: engage the switch, then what a kill reports after its
COMMIT — the values it wrote over that had been changed around the audit trigger (drift), and,
when asked, the live gate clients' acknowledgement — as data. The CLI renders these; a
library caller gets the same kill (``engage``) or runs its steps itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Confirm, Outcome, execute
from flagctl.actions.kill import Kill
from flagctl.errors import CheckFailed, UsageError
from flagctl.model.durations import format_duration, parse_duration

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

    from flagctl.model.manifest import Manifest
    from flagctl.store.clients import Ack
    from flagctl.store.db import AuditContext
    from flagctl.views.drift import Drift


@dataclass(frozen=True)
class AckWait:
    """How long a kill waits for the gate clients (``--timeout``), and which count as live
    (seen within ``live``)."""

    timeout: timedelta
    live: timedelta

    @classmethod
    def parse(cls, timeout: str, live: str) -> AckWait:
        try:
            return cls(parse_duration(timeout), parse_duration(live))
        except ValueError as exc:
            raise UsageError(f"--timeout/--live: {exc}") from None


@dataclass(frozen=True)
class Acknowledgement:
    """Which live gate clients applied the newest change within the wait, and which did not."""

    clients: tuple[Ack, ...]
    timeout: timedelta

    @property
    def late(self) -> list[Ack]:
        return [c for c in self.clients if not c.acked]

    @property
    def slowest(self) -> Ack | None:
        return max(self.clients, key=lambda c: c.after_seconds) if self.clients else None

    def failure(self) -> CheckFailed | None:
        """The kill is engaged, but these processes still decide on the old state (exit 1)."""
        late = self.late
        if not late:
            return None
        names = "; ".join(f"{c.name} at change {c.applied_seq}" for c in late)
        count = len(self.clients)
        who = f"{len(late)} of {count} live gate clients" if count > 1 else "the live gate client"
        return CheckFailed(
            f"{who} did not apply the kill within {format_duration(self.timeout)}: {names}",
            "the kill is engaged in the database; those processes still decide on the old state — "
            "check them (flagctl clients)",
        )

    def summary(self) -> str:
        """What a confirmed wait says (or that no client was there to confirm)."""
        slowest = self.slowest
        if slowest is None:
            return "no live gate client to confirm the kill (flagctl clients lists them)"
        after = f"{slowest.name}, {slowest.after_seconds * 1000:.0f} ms after the wait began"
        if len(self.clients) > 1:
            return (
                f"confirmed: all {len(self.clients)} live gate clients applied the kill; the slowest, {after}"
            )
        return f"confirmed: the live gate client applied the kill: {after}"

    def to_json(self) -> dict[str, Any]:
        return {
            "timeout_seconds": self.timeout.total_seconds(),
            "clients": [
                {"host": c.host, "pid": c.pid, "application": c.application, "applied_seq": c.applied_seq,
                 "acked": c.acked, "after_seconds": c.after_seconds, "relay": c.relay}
                for c in self.clients
            ],
        }  # fmt: skip


@dataclass
class KillReport:
    """A kill and what followed its COMMIT."""

    outcome: Outcome
    drift: list[Drift] = field(default_factory=list)
    acks: Acknowledgement | None = None


def overwritten_drift(conn: psycopg.Connection[Any], loaded: Manifest, outcome: Outcome) -> list[Drift]:
    """After the kill committed (so it never waits for this): the values it replaced that
    had been changed around the audit trigger — someone bypassed the trail, and the kill
    wrote over what they did. Empty for a kill that applied nothing."""
    from flagctl.views.drift import drift

    plan = outcome.plan
    if not outcome.applied or plan.snapshot is None or outcome.txid is None:
        return []
    return list(drift(conn, loaded, plan.snapshot, sorted(plan.snapshot.globals), before_txid=outcome.txid))


def await_acks(conn: psycopg.Connection[Any], loaded: Manifest, wait: AckWait) -> Acknowledgement:
    """Wait (on the server) until every live gate client applied the system's newest change."""
    from flagctl.store.clients import wait_acks

    return Acknowledgement(tuple(wait_acks(conn, loaded, wait.timeout, wait.live)), wait.timeout)


def engage(
    conn: psycopg.Connection[Any],
    loaded: Manifest,
    switch: str,
    scope: str,
    audit: AuditContext,
    *,
    confirm: Confirm | None = None,
    dry_run: bool = False,
    lock_timeout: timedelta = timedelta(seconds=5),
    reconnect: Callable[[], psycopg.Connection[Any]] | None = None,
    break_locks: bool = False,
    idempotent: bool = False,
    wait: AckWait | None = None,
) -> KillReport:
    """The kill as ``flagctl kill`` runs it: engage in one transaction, then the drift it
    wrote over, then (``wait``) the gate clients' acknowledgement. A late client is in
    ``acks.failure()``; raising it is the caller's choice (the kill is engaged either way)."""
    action = Kill(loaded, switch, scope)
    action.validate()
    outcome = execute(
        conn, action, audit, confirm=confirm, dry_run=dry_run, lock_timeout=lock_timeout,
        reconnect=reconnect, break_locks=break_locks, idempotent=idempotent,
    )  # fmt: skip
    report = KillReport(outcome, overwritten_drift(conn, loaded, outcome))
    if wait is not None and not outcome.dry_run:
        report.acks = await_acks(conn, loaded, wait)
    return report
