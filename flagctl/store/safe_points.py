"""Safe points (``flagctl.safe_point``): a known-good state of a system, recorded with a
profile or a snapshot, and read back by a rollback to the last one."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import psycopg

# Who and why come from the declared change (routines/96_records.sql).
RECORD = "SELECT flagctl.record_safe_point(%s, %s, %s, %s)"
LAST = (
    "SELECT name, kind, state, at, coalesce(actor, db_user) FROM flagctl.safe_point"
    " WHERE system = %s ORDER BY id DESC LIMIT 1"
)


@dataclass(frozen=True)
class SafePoint:
    name: str
    kind: str  # profile, snapshot
    state: dict[str, Any]  # {scope: {flag: stored value}}, as recorded
    at: datetime
    who: str  # the declared actor, else the database user


def record(conn: psycopg.Connection[Any], system: str, name: str, kind: str, state: dict[str, Any]) -> None:
    """Record a safe point (inside the caller's declared change)."""
    from psycopg.types.json import Jsonb

    conn.execute(RECORD, (system, name, kind, Jsonb(state)))


def last(conn: psycopg.Connection[Any], system: str) -> SafePoint | None:
    """The newest safe point of a system (None: none recorded)."""
    row = conn.execute(LAST, (system,)).fetchone()
    return None if row is None else SafePoint(*row)
