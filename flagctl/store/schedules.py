"""Scheduled changes (``flagctl.schedule``; schema 33): read here, written only through
``flagctl.schedule_add`` / ``flagctl.schedule_settle`` inside a declared ``schedule.*`` change."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.store.rows import row_json

if TYPE_CHECKING:
    import psycopg

COLUMNS = (
    "id, system, kind, spec, summary, planned_on, at, state, scheduled_by, db_user, reason, created_at, "
    "settled_at, settled_by, outcome"
)
LIST = (
    f"SELECT {COLUMNS} FROM flagctl.schedule WHERE system = %s"  # noqa: S608 - constant columns
    " AND (%s OR state = 'pending') ORDER BY at, id"
)
DUE = (
    f"SELECT {COLUMNS} FROM flagctl.schedule WHERE system = %s"  # noqa: S608 - constant columns
    " AND state = 'pending' AND at <= %s ORDER BY at, id"
)
ONE = f"SELECT {COLUMNS} FROM flagctl.schedule WHERE system = %s AND id = %s"  # noqa: S608 - constant columns
ADD = "SELECT flagctl.schedule_add(%s, %s, %s, %s, %s, %s)"
SETTLE = "SELECT flagctl.schedule_settle(%s, %s, %s)"


@dataclass(frozen=True)
class Scheduled:
    id: int
    system: str
    kind: str
    spec: dict[str, Any]
    summary: str
    planned_on: dict[str, dict[str, Any]]
    at: datetime
    state: str
    scheduled_by: str
    db_user: str
    reason: str | None
    created_at: datetime
    settled_at: datetime | None
    settled_by: str | None
    outcome: str | None

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


def listed(conn: psycopg.Connection[Any], system: str, everything: bool = False) -> list[Scheduled]:
    return [Scheduled(*row) for row in conn.execute(LIST, (system, everything)).fetchall()]


def due(conn: psycopg.Connection[Any], system: str, now: datetime) -> list[Scheduled]:
    """Pending schedules whose time has come, oldest first."""
    return [Scheduled(*row) for row in conn.execute(DUE, (system, now)).fetchall()]


def one(conn: psycopg.Connection[Any], system: str, schedule: int) -> Scheduled | None:
    row = conn.execute(ONE, (system, schedule)).fetchone()
    return None if row is None else Scheduled(*row)


def add(
    conn: psycopg.Connection[Any],
    system: str,
    kind: str,
    spec: dict[str, Any],
    summary: str,
    planned_on: dict[str, dict[str, Any]],
    at: datetime,
) -> int:
    from psycopg.types.json import Jsonb

    row = conn.execute(ADD, (system, kind, Jsonb(spec), summary, Jsonb(planned_on), at)).fetchone()
    assert row is not None
    return int(row[0])


def settle(conn: psycopg.Connection[Any], schedule: int, state: str, outcome: str) -> None:
    conn.execute(SETTLE, (schedule, state, outcome))
