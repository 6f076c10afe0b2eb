"""Drill records (``flagctl.drills``): start, finish, read; and the rows a drill compares."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.model.manifest import Manifest

if TYPE_CHECKING:
    import psycopg

    from flagctl.store.db import AuditContext

# A drill's record is the database's to write (routines/96_records.sql): run by the session's
# own user, finished only by that user, once.
INSERT_DRILL = "SELECT id, started_at FROM flagctl.drill_start(%s, %s, %s, %s, %s, %s)"
FINISH_DRILL = "SELECT flagctl.drill_finish(%s, %s, %s, %s, %s)"
DRILLS = """
SELECT id, kind, subject, scope, started_at, finished_at, db_user, actor, reason, verdict, steps, restored
  FROM flagctl.drills WHERE system = %s ORDER BY id DESC LIMIT %s
"""
DRILL = """
SELECT id, kind, subject, scope, started_at, finished_at, db_user, actor, reason, verdict, steps, restored, report
  FROM flagctl.drills WHERE system = %s AND id = %s
"""
OWN_ROWS = "SELECT flag, scope, value::text FROM flagctl.flag_state WHERE system = %s ORDER BY flag, scope"


def start(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    kind: str,
    subject: str,
    scope: str,
    audit: AuditContext,
) -> tuple[int, datetime]:
    """Record a drill as running; its id and start time."""
    with conn.transaction():
        row = conn.execute(
            INSERT_DRILL, (manifest.system, kind, subject, scope, audit.actor, audit.reason)
        ).fetchone()
    assert row is not None
    return int(row[0]), row[1]


def finish(
    conn: psycopg.Connection[Any],
    drill_id: int,
    verdict: str,
    steps: list[dict[str, Any]],
    restored: bool,
    report: str,
) -> None:
    from psycopg.types.json import Jsonb

    with conn.transaction():
        conn.execute(FINISH_DRILL, (drill_id, verdict, Jsonb(steps), restored, report))


def recent(conn: psycopg.Connection[Any], manifest: Manifest, limit: int) -> list[tuple[Any, ...]]:
    return conn.execute(DRILLS, (manifest.system, limit)).fetchall()


def one(conn: psycopg.Connection[Any], manifest: Manifest, drill_id: int) -> tuple[Any, ...] | None:
    return conn.execute(DRILL, (manifest.system, drill_id)).fetchone()


def own_rows(conn: psycopg.Connection[Any], manifest: Manifest) -> list[tuple[Any, ...]]:
    """flagctl's own rows of the system, as text: what "row for row" compares."""
    return conn.execute(OWN_ROWS, (manifest.system,)).fetchall()
