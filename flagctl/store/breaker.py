"""``kill --break-locks``: end exactly what blocks the kill, while it waits.

A second connection watches the kill's own backend: ``flagctl.blockers_of(pid)`` is
``pg_blocking_pids()`` of it, as flagctl's owner sees them — whatever the lock (the flag's
rows held FOR SHARE by two sessions, a migration's ACCESS EXCLUSIVE, an advisory lock). A
blocker that has held the kill up for the lock timeout has its statement cancelled; one that
still blocks after the grace period (idle in its transaction) is terminated. The database
checks each step (``flagctl.end_blocker``): the waiter must be a kill of the caller's own, in
this database, still waiting on that blocker; a superuser's session and another database's
are never ended. Each blocker is audited there as ``kill.break_lock``, with what was seen
and what was done.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from types import TracebackType
from typing import Any

import psycopg

from flagctl.store.db import AuditContext

BLOCKERS_OF = """
SELECT pid, db_user, application, state, query, xact_start, xact_seconds, superuser, same_database
  FROM flagctl.blockers_of(%s)
"""
END_BLOCKER = "SELECT flagctl.end_blocker(%s, %s, %s, %s, %s, %s, %s)"

POLL = 0.05  # seconds between looks at who blocks the kill
GRACE = 1.0  # seconds between cancelling a blocker's statement and terminating its session
SLACK = timedelta(seconds=2)  # beyond patience and grace, before the kill itself gives up


@dataclass
class KillBlocker:
    """A session that blocked the kill, as the database saw it, and what was done to it."""

    pid: int
    user: str | None
    application: str | None
    state: str | None
    query: str | None
    xact_start: datetime | None
    xact_seconds: Decimal | None
    superuser: bool
    same_database: bool
    ended: str | None = None  # what was done: cancelled, terminated, "not ended: why"

    def describe(self) -> str:
        age = (
            f"{self.xact_seconds}s in its transaction" if self.xact_seconds is not None else "age not visible"
        )
        query = self.query if self.query is not None else "query not visible"
        return (
            f"pid {self.pid} (user {self.user or '?'}, application {self.application or '?'}, {age}) "
            f"{self.ended}: {query}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "user": self.user,
            "application": self.application,
            "state": self.state,
            "query": self.query,
            "xact_start": self.xact_start.isoformat() if self.xact_start else None,
            "xact_seconds": float(self.xact_seconds) if self.xact_seconds is not None else None,
            "superuser": self.superuser,
            "ended": self.ended,
        }


@dataclass
class LockBreaker:
    """Watch ``waiter`` (the kill's backend pid) from a connection of its own while the kill
    runs; end what blocks it past ``patience``. Use as a context manager around the kill's
    transaction; ``seen`` then lists every blocker and what was done to it.

    ``clock`` and ``poll`` are injectable; the watch itself waits on a real lock, so it
    waits in real time (an Event, stopped the moment the kill is through)."""

    connect: Callable[[], psycopg.Connection[Any]]
    waiter: int
    patience: timedelta
    audit: AuditContext
    system: str
    grace: float = GRACE
    poll: float = POLL
    clock: Callable[[], float] = time.monotonic
    seen: dict[int, KillBlocker] = field(default_factory=dict)
    error: BaseException | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    @property
    def lock_timeout(self) -> timedelta:
        """How long the kill itself waits for a lock: long enough for the breaker to act."""
        return self.patience + timedelta(seconds=self.grace + 2 * self.poll) + SLACK

    def __enter__(self) -> LockBreaker:
        self._thread = threading.Thread(target=self._watch, name="flagctl-break-locks", daemon=True)
        self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        try:
            with self.connect() as conn:
                conn.autocommit = True
                self._loop(conn)
        except Exception as exc:  # reported by the kill, which is what it failed to help
            self.error = exc

    def _loop(self, conn: psycopg.Connection[Any]) -> None:
        first: dict[int, float] = {}
        cancelled: dict[int, float] = {}
        finished: set[int] = set()
        while not self._stop.wait(self.poll):
            now = self.clock()
            for row in conn.execute(BLOCKERS_OF, (self.waiter,)).fetchall():
                blocker = KillBlocker(*row)
                pid = blocker.pid
                known = self.seen.setdefault(pid, blocker)
                since = first.setdefault(pid, now)
                if pid in finished:
                    continue
                if pid not in cancelled and now - since >= self.patience.total_seconds():
                    # an idle transaction has no statement to cancel: only ending it frees its locks
                    idle = (blocker.state or "").startswith("idle in transaction")
                    known.ended = self._end(conn, pid, terminate=idle)
                    if known.ended == "cancelled":
                        cancelled[pid] = now
                    else:
                        finished.add(pid)
                elif pid in cancelled and now - cancelled[pid] >= self.grace:
                    known.ended = self._end(conn, pid, terminate=True)
                    finished.add(pid)

    def _end(self, conn: psycopg.Connection[Any], pid: int, terminate: bool) -> str:
        audit = self.audit
        row = conn.execute(
            END_BLOCKER, (self.waiter, pid, terminate, self.system, audit.actor, audit.reason, audit.command)
        ).fetchone()
        return str(row[0]) if row else "not ended"

    def ended(self) -> list[KillBlocker]:
        """The blockers flagctl acted on (ended, or found it could not), in pid order."""
        return [b for _, b in sorted(self.seen.items()) if b.ended is not None]


def describe(blockers: list[KillBlocker]) -> str:
    return "; ".join(b.describe() for b in blockers)
