"""Rollouts that run themselves (``flagctl.rollout``, ``flagctl.rollout_analysis``,
``flagctl.runners``; schema 31): read here, written only through flagctl's functions
(``routines/98_rollouts.sql``) inside a declared ``rollout.*`` change, and held by one runner
at a time through a session advisory lock per ladder."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.store.rows import row_json

if TYPE_CHECKING:
    import psycopg

IN_FLIGHT = ("running", "paused")
FINAL = ("done", "aborted", "rolled_back")

COLUMNS = (
    "id, system, ladder, target, origin, state, stage, stage_since, passes, failures, analysed_at, verdict, "
    "next_at, note, request, started_by, started_at, updated_at"
)
SELECT = f"SELECT {COLUMNS} FROM flagctl.rollout"  # noqa: S608 - constant columns
# The newest rollout of each ladder of a system (in flight or not).
LATEST = SELECT + " WHERE system = %s AND (%s::text IS NULL OR ladder = %s) ORDER BY ladder, id DESC"
IN_FLIGHT_OF = SELECT + " WHERE system = %s AND state IN ('running', 'paused') ORDER BY ladder"
LOCK = SELECT + " WHERE id = %s FOR UPDATE"
START = "SELECT flagctl.rollout_start(%s, %s, %s, %s)"
UPDATE = "SELECT flagctl.rollout_update(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
ANALYSED = "SELECT flagctl.rollout_analysed(%s, %s, %s, %s, %s)"
ANALYSES = "SELECT stage, at, verdict, results FROM flagctl.rollout_analysis WHERE rollout = %s ORDER BY id DESC LIMIT %s"
# One runner per ladder: a session advisory lock on the runner's connection, released when
# it stops (or its connection dies).
KEY = "hashtextextended('flagctl.rollout:' || %s || ':' || %s, 0)"
TRY_HOLD = f"SELECT pg_try_advisory_lock({KEY})"
LET_GO = f"SELECT pg_advisory_unlock({KEY})"
HOLDER = (
    "SELECT a.pid FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory'"  # noqa: S608 - constant
    " AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"
    " AND (l.classid::bigint << 32 | l.objid::bigint) = " + KEY + " LIMIT 1"
)
BEAT = "SELECT flagctl.runner_beat(%s, %s, %s, %s)"
GONE = "SELECT flagctl.runner_gone(%s)"
RUNNERS = (
    "SELECT id, host, pid, db_user, every, started_at, seen_at, clock_timestamp() FROM flagctl.runners"
    " WHERE system = %s ORDER BY seen_at DESC"
)


@dataclass(frozen=True)
class RolloutRow:
    id: int
    system: str
    ladder: str
    target: str
    origin: str | None
    state: str
    stage: str | None
    stage_since: datetime | None
    passes: int
    failures: int
    analysed_at: datetime | None
    verdict: str | None
    next_at: datetime | None
    note: str | None
    request: int | None
    started_by: str
    started_at: datetime
    updated_at: datetime

    @property
    def in_flight(self) -> bool:
        return self.state in IN_FLIGHT

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


@dataclass(frozen=True)
class AnalysisRow:
    stage: str
    at: datetime
    verdict: str
    results: list[dict[str, Any]]


@dataclass(frozen=True)
class Runner:
    id: int
    host: str
    pid: int
    db_user: str
    every: timedelta
    started_at: datetime
    seen_at: datetime
    now: datetime  # the server's clock when read

    @property
    def alive(self) -> bool:
        """Seen within three of its intervals (and at least 30 s): else it is gone."""
        return self.now - self.seen_at <= max(3 * self.every, timedelta(seconds=30))

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "host": self.host, "pid": self.pid, "db_user": self.db_user,
            "every_seconds": self.every.total_seconds(), "started_at": self.started_at.isoformat(),
            "seen_at": self.seen_at.isoformat(), "alive": self.alive,
        }  # fmt: skip


def latest(conn: psycopg.Connection[Any], system: str, ladder: str | None = None) -> list[RolloutRow]:
    """The newest rollout of each ladder (of one ladder, if named)."""
    seen: dict[str, RolloutRow] = {}
    for row in conn.execute(LATEST, (system, ladder, ladder)).fetchall():
        seen.setdefault(row[2], RolloutRow(*row))
    return list(seen.values())


def in_flight(conn: psycopg.Connection[Any], system: str) -> list[RolloutRow]:
    return [RolloutRow(*row) for row in conn.execute(IN_FLIGHT_OF, (system,)).fetchall()]


def lock(conn: psycopg.Connection[Any], rollout: int) -> RolloutRow | None:
    """The rollout's row, locked until the caller's transaction ends."""
    row = conn.execute(LOCK, (rollout,)).fetchone()
    return None if row is None else RolloutRow(*row)


def start(conn: psycopg.Connection[Any], system: str, ladder: str, target: str, origin: str | None) -> int:
    row = conn.execute(START, (system, ladder, target, origin)).fetchone()
    assert row is not None
    return int(row[0])


def update(conn: psycopg.Connection[Any], row: RolloutRow) -> None:
    """Write the rollout's state as ``row`` has it (inside the caller's declared change)."""
    conn.execute(
        UPDATE,
        (row.id, row.state, row.stage, row.stage_since, row.passes, row.failures, row.analysed_at, row.verdict,
         row.next_at, row.note, row.request),
    )  # fmt: skip


def record_analysis(
    conn: psycopg.Connection[Any],
    rollout: int,
    stage: str,
    verdict: str,
    results: list[dict[str, Any]],
    at: datetime | None = None,
) -> None:
    from psycopg.types.json import Jsonb

    conn.execute(ANALYSED, (rollout, stage, verdict, Jsonb(results), at))


def analyses(conn: psycopg.Connection[Any], rollout: int, limit: int = 5) -> list[AnalysisRow]:
    return [AnalysisRow(*row) for row in conn.execute(ANALYSES, (rollout, limit)).fetchall()]


def try_hold(conn: psycopg.Connection[Any], system: str, ladder: str) -> bool:
    """Hold the ladder for this runner's session (False: another runner holds it)."""
    row = conn.execute(TRY_HOLD, (system, ladder)).fetchone()
    return bool(row and row[0])


def let_go(conn: psycopg.Connection[Any], system: str, ladder: str) -> None:
    conn.execute(LET_GO, (system, ladder))


def holder(conn: psycopg.Connection[Any], system: str, ladder: str) -> int | None:
    """The backend pid of the runner that holds the ladder (None: none does)."""
    row = conn.execute(HOLDER, (system, ladder)).fetchone()
    return None if row is None else int(row[0])


def beat(conn: psycopg.Connection[Any], system: str, host: str, pid: int, every: timedelta) -> int:
    row = conn.execute(BEAT, (system, host, pid, every)).fetchone()
    assert row is not None
    return int(row[0])


def gone(conn: psycopg.Connection[Any], runner: int) -> None:
    conn.execute(GONE, (runner,))


def runners(conn: psycopg.Connection[Any], system: str) -> list[Runner]:
    return [Runner(*row) for row in conn.execute(RUNNERS, (system,)).fetchall()]
