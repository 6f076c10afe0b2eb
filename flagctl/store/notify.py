"""Notifications' state (``flagctl.notify_cursor``, ``flagctl.notify_delivery``, schema 32):
where each sink's delivery stands, every attempt, and the audit rows still to deliver.

The outbox is the audit trail itself, read in seal order (``flagctl.audit_seal.pos``): the
sealer seals committed rows only, each once, one sealer at a time, so a position is never
seen before the positions below it, and a row that committed after a higher ``seq`` is not
skipped. Both tables are written only through ``flagctl.notify_start`` and
``flagctl.notify_record`` (routines/97_notify.sql), inside a change declared as ``notify.*``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.store.audit import COLUMNS, AuditRow

if TYPE_CHECKING:
    import psycopg

# Seal what committed (never waiting for a sealer at work: what it seals is read next pass).
SEAL = "SELECT flagctl.audit_seal(false)"
# Where a sink first seen starts: just before the publication of the manifest in force (the
# first one that can have declared it), or the trail's start.
START_AT = """
SELECT s.pos - 1 FROM flagctl.audit a JOIN flagctl.audit_seal s ON s.seq = a.seq
 WHERE a.system = %s AND a.action = 'manifest.publish'
 ORDER BY a.seq DESC LIMIT 1
"""
START = "SELECT flagctl.notify_start(%s, %s, %s)"
PENDING = f"""
SELECT s.pos, {", ".join("a." + c.strip() for c in COLUMNS.split(","))}
  FROM flagctl.audit_seal s JOIN flagctl.audit a ON a.seq = s.seq
 WHERE s.pos > %s AND a.system = %s
 ORDER BY s.pos LIMIT %s
"""  # noqa: S608
LAST_ATTEMPT = """
SELECT attempt, outcome, next_attempt_at FROM flagctl.notify_delivery
 WHERE system = %s AND sink = %s AND audit_seq = %s ORDER BY id DESC LIMIT 1
"""
RECORD = "SELECT flagctl.notify_record(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
# One deliverer per sink at a time (a session lock: held across the pass's HTTP calls,
# while each outcome commits in its own short transaction).
TRY_LOCK = "SELECT pg_try_advisory_lock(hashtextextended('flagctl.notify:' || %s || ':' || %s, 0))"
UNLOCK = "SELECT pg_advisory_unlock(hashtextextended('flagctl.notify:' || %s || ':' || %s, 0))"
LOG = """
SELECT d.id, d.sink, d.audit_seq, d.pos, d.event_id, d.attempt, d.outcome, d.http_status, d.error, d.at,
       d.next_attempt_at, d.db_user, d.actor, a.action, a.flag, a.target
  FROM flagctl.notify_delivery d LEFT JOIN flagctl.audit a ON a.seq = d.audit_seq
 WHERE d.system = %s AND (%s::text IS NULL OR d.sink = %s) AND (NOT %s OR d.outcome = 'failed')
 ORDER BY d.id DESC LIMIT %s
"""
CURSORS = """
SELECT c.sink, c.pos, c.updated_at,
       (SELECT count(*) FROM flagctl.audit_seal s JOIN flagctl.audit a ON a.seq = s.seq
         WHERE s.pos > c.pos AND a.system = c.system)
  FROM flagctl.notify_cursor c WHERE c.system = %s ORDER BY c.sink
"""


@dataclass(frozen=True)
class Attempt:
    """The last attempt at one audit row for one sink."""

    attempt: int
    outcome: str  # delivered, failed
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class Delivery:
    """One attempt, as ``notify log`` shows it."""

    id: int
    sink: str
    audit_seq: int
    pos: int
    event_id: str
    attempt: int
    outcome: str
    http_status: int | None
    error: str | None
    at: datetime
    next_attempt_at: datetime | None
    db_user: str
    actor: str | None
    action: str | None
    flag: str | None
    target: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "sink": self.sink,
            "audit_seq": self.audit_seq,
            "pos": self.pos,
            "event_id": self.event_id,
            "attempt": self.attempt,
            "outcome": self.outcome,
            "http_status": self.http_status,
            "error": self.error,
            "at": self.at.isoformat(),
            "next_attempt_at": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "db_user": self.db_user,
            "actor": self.actor,
            "action": self.action,
            "flag": self.flag,
            "target": self.target,
        }


@dataclass(frozen=True)
class Cursor:
    sink: str
    pos: int
    updated_at: datetime
    behind: int  # the system's sealed rows after it (delivered or not the sink's, still to pass)


def seal(conn: psycopg.Connection[Any]) -> int | None:
    """Seal the committed rows not sealed yet (None: another session is sealing)."""
    with conn.transaction():
        row = conn.execute(SEAL).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def start_position(conn: psycopg.Connection[Any], system: str) -> int:
    """Where a sink first seen starts: before the manifest in force was published."""
    row = conn.execute(START_AT, (system,)).fetchone()
    return int(row[0]) if row else 0


def start(conn: psycopg.Connection[Any], system: str, sink: str, pos: int) -> int:
    """The sink's cursor, made at ``pos`` if it has none (inside a declared notify.* change)."""
    row = conn.execute(START, (system, sink, pos)).fetchone()
    assert row is not None
    return int(row[0])


def pending(conn: psycopg.Connection[Any], system: str, after: int, limit: int) -> list[tuple[int, AuditRow]]:
    """The system's sealed audit rows after seal position ``after``, in seal order."""
    rows = conn.execute(PENDING, (after, system, limit)).fetchall()
    return [(int(r[0]), AuditRow(*r[1:])) for r in rows]


def last_attempt(conn: psycopg.Connection[Any], system: str, sink: str, seq: int) -> Attempt | None:
    row = conn.execute(LAST_ATTEMPT, (system, sink, seq)).fetchone()
    return None if row is None else Attempt(*row)


def record(
    conn: psycopg.Connection[Any],
    system: str,
    sink: str,
    moved: tuple[int, int],
    seq: int | None = None,
    event_id: str | None = None,
    attempt: int | None = None,
    outcome: str | None = None,
    http_status: int | None = None,
    error: str | None = None,
    next_attempt_at: datetime | None = None,
) -> None:
    """One attempt at row ``seq`` (delivered: the cursor moves from ``moved[0]`` to
    ``moved[1]``), or (``seq`` None) the rows up to ``moved[1]`` passed over as not the sink's."""
    conn.execute(
        RECORD,
        (
            system,
            sink,
            moved[0],
            moved[1],
            seq,
            event_id,
            attempt,
            outcome,
            http_status,
            error,
            next_attempt_at,
        ),
    )


def try_lock(conn: psycopg.Connection[Any], system: str, sink: str) -> bool:
    """Hold the sink for this session (False: another deliverer holds it)."""
    row = conn.execute(TRY_LOCK, (system, sink)).fetchone()
    return bool(row and row[0])


def unlock(conn: psycopg.Connection[Any], system: str, sink: str) -> None:
    conn.execute(UNLOCK, (system, sink))


def log(
    conn: psycopg.Connection[Any], system: str, sink: str | None = None, failed: bool = False, limit: int = 50
) -> list[Delivery]:
    """Attempts, newest first."""
    rows = conn.execute(LOG, (system, sink, sink, failed, limit)).fetchall()
    return [Delivery(*row) for row in rows]


def cursors(conn: psycopg.Connection[Any], system: str) -> list[Cursor]:
    """Where each sink's delivery stands, and how many of the system's rows lie beyond."""
    return [Cursor(*row) for row in conn.execute(CURSORS, (system,)).fetchall()]
