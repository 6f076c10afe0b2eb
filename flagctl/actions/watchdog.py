"""The watchdog's loop: evaluate (``rollback.tick``) every interval, and keep watching through
a lost connection. ``watch`` yields what happened — each evaluation, and each loss, failed
retry and reconnection of the database — for its caller to show; the clock and the sleeper
are the caller's, so nothing here waits for real in a test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.actions.rollback import Tick, tick
from flagctl.errors import ConnectionFailed

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest
    from flagctl.store.db import AuditContext

BACKOFF_FIRST = 1.0  # seconds before the first reconnection attempt, doubling …
BACKOFF_LONGEST = 30.0  # … up to this


@dataclass(frozen=True)
class Lost:
    """The connection to the database was lost; the watchdog reconnects."""

    reason: str


@dataclass(frozen=True)
class StillDown:
    """A reconnection attempt failed; the next one is in ``next_delay`` seconds."""

    message: str
    next_delay: float


@dataclass(frozen=True)
class Reconnected:
    """The database answers again after ``blind``; a recovery window in progress restarts."""

    blind: timedelta


Event = Tick | Lost | StillDown | Reconnected


def watch(
    connect: Callable[[], psycopg.Connection[Any]],
    loaded: Manifest,
    audit: AuditContext,
    *,
    clock: Callable[[], datetime],
    sleep: Callable[[float], None],
    interval: float,
    ticks: int | None = None,
    auto: bool = False,
    lock_timeout: timedelta = timedelta(seconds=5),
    reconnect: bool = True,
) -> Iterator[Event]:
    """Evaluate every ``interval`` seconds, ``ticks`` times (None: until the caller stops).
    A lost connection is retried, backing off (1 s, 2 s, … 30 s), until the database
    answers again — a watchdog keeps watching; the blind time is not counted as green.
    ``reconnect=False`` (a single evaluation): a lost connection is raised instead."""
    import psycopg as pg

    conn = connect()
    done = 0
    watched_since: datetime | None = None
    while True:
        try:
            result = tick(
                conn, loaded, clock, audit, auto=auto, lock_timeout=lock_timeout, watched_since=watched_since
            )
        except (pg.OperationalError, ConnectionFailed) as exc:
            lost = isinstance(exc, ConnectionFailed) or conn.broken
            if not reconnect or not lost:  # other errors are not ours to retry
                raise
            lost_at = clock()
            yield Lost(_first_line(exc))
            with contextlib.suppress(Exception):
                conn.close()
            conn = yield from _reconnect(connect, sleep)
            yield Reconnected(clock() - lost_at)
            watched_since = clock()  # what happened while blind was not seen green
            continue
        yield result
        done += 1
        if ticks is not None and done >= ticks:
            return
        sleep(interval)


def _reconnect(
    connect: Callable[[], psycopg.Connection[Any]], sleep: Callable[[float], None]
) -> Generator[Event, None, psycopg.Connection[Any]]:
    delay = BACKOFF_FIRST
    while True:
        sleep(delay)
        try:
            return connect()
        except ConnectionFailed as exc:
            delay = min(delay * 2, BACKOFF_LONGEST)
            yield StillDown(exc.message, delay)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
