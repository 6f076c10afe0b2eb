"""What the proofs (``verify.proofs``) read and record: the tables' write counters, the open
transactions that hold a write lock on a phase table, the write privileges of the phase's
role, and the isolation baseline (``flagctl.proof_baseline``)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import psycopg

# Statistics are read once per transaction unless the snapshot is cleared first.
CLEAR_STATS_SNAPSHOT = "SELECT pg_stat_clear_snapshot()"
COUNTERS = (
    "SELECT schemaname || '.' || relname, n_tup_ins + n_tup_upd + n_tup_del FROM pg_stat_user_tables"
    " WHERE schemaname <> 'flagctl'"
)
# Transactions still open that hold a write lock on a phase table: they wrote it (or are
# writing it) and their rows reach the counters only when they commit.
OPEN_WRITERS = """
SELECT DISTINCT a.pid, coalesce(nullif(a.application_name, ''), '?'), a.xact_start,
       n.nspname || '.' || c.relname
  FROM pg_locks l
  JOIN pg_class c ON c.oid = l.relation
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.locktype = 'relation' AND l.granted AND a.pid <> pg_backend_pid()
   AND l.mode IN ('RowExclusiveLock', 'ShareRowExclusiveLock', 'ExclusiveLock', 'AccessExclusiveLock')
   AND c.relkind IN ('r', 'p') AND c.relname LIKE %s
   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
 ORDER BY 1
"""
ROLE_EXISTS = "SELECT 1 FROM pg_roles WHERE rolname = %s"
WRITABLE_OUTSIDE = (
    "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'flagctl')"
    " AND n.nspname NOT LIKE 'pg_toast%%' AND NOT c.relname LIKE %s"
    " AND has_table_privilege(%s, c.oid, 'INSERT, UPDATE, DELETE, TRUNCATE') ORDER BY 1"
)
RECORD_BASELINE = "SELECT flagctl.record_baseline(%s, %s::numeric, %s)"
BASELINE = (
    "SELECT rates, window_seconds, measured_at FROM flagctl.proof_baseline WHERE system = %s"
    " ORDER BY id DESC LIMIT 1"
)


class OpenWriter(NamedTuple):
    pid: int
    application: str
    xact_start: datetime
    table: str  # schema.table


def counters(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Rows inserted + updated + deleted so far, per table outside flagctl's schema."""
    conn.execute(CLEAR_STATS_SNAPSHOT)
    rows = conn.execute(COUNTERS).fetchall()
    return {name: int(total) for name, total in rows}


def open_writers(conn: psycopg.Connection[Any], pattern: str) -> list[OpenWriter]:
    """Other open transactions holding a write lock on a table whose name is LIKE ``pattern``."""
    return [OpenWriter(*row) for row in conn.execute(OPEN_WRITERS, (pattern,)).fetchall()]


def role_exists(conn: psycopg.Connection[Any], role: str) -> bool:
    return conn.execute(ROLE_EXISTS, (role,)).fetchone() is not None


def writable_outside(conn: psycopg.Connection[Any], role: str, pattern: str) -> list[str]:
    """The tables not LIKE ``pattern`` (outside the catalogs and flagctl's schema) that
    ``role`` may insert into, update, delete from or truncate."""
    return [row[0] for row in conn.execute(WRITABLE_OUTSIDE, (pattern, role)).fetchall()]


def record_baseline(
    conn: psycopg.Connection[Any], system: str, seconds: float, rates: dict[str, float]
) -> None:
    from psycopg.types.json import Jsonb

    conn.execute(RECORD_BASELINE, (system, seconds, Jsonb(rates)))


def baseline(conn: psycopg.Connection[Any], system: str) -> tuple[dict[str, float], float, datetime] | None:
    """The newest baseline of a system: rates per table, its window in seconds, when (None: none)."""
    row = conn.execute(BASELINE, (system,)).fetchone()
    return None if row is None else (row[0], float(row[1]), row[2])
