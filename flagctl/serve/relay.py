"""One system's state in ``flagctl serve``: a gate (one LISTEN connection, one snapshot)
that also holds the system's tokens, pushes each change to its subscribers, and registers
and acknowledges the clients behind it — all on that one connection.

Threads: the gate's thread owns the connection (reads, registrations, acknowledgements);
the server's event loop answers requests from the snapshot (no I/O) and records what to
acknowledge in memory, which the gate's thread writes within ``wake`` (one statement for
every client). A change reaches the event loop through ``call_soon_threadsafe``: every
subscriber awaits one shared future, so a change costs one wake-up per subscriber and no
queue grows while a subscriber is slow.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from flagctl.gate.client import Gate, State
from flagctl.model.manifest import Manifest
from flagctl.store import clients as client_store
from flagctl.store import tokens as token_store

log = logging.getLogger("flagctl.serve")


def _change(row: Any) -> dict[str, Any]:
    """An audit row as the status page lists it."""
    names = ("seq", "who", "action", "flag", "scope", "target", "reason")
    return {"at": row.at.isoformat(), **{name: getattr(row, name) for name in names}}


Who = tuple[str, str]  # (application, client name)


def version_of(state: State) -> str:
    """A state's version: its change sequence and a digest of its rows (the same on every
    relay at that state)."""
    return f"{state.seq}.{state.digest[:16]}"


@dataclass
class Counters:
    evaluations: int = 0  # flags resolved (a bulk request counts each flag)
    requests: int = 0
    not_modified: int = 0
    unauthorized: int = 0
    pushed: int = 0  # change events written to subscribers
    acks_written: int = 0
    registered: int = 0


@dataclass
class Behind:
    """What the gate's thread owes the database about the clients behind this relay."""

    rows: dict[Who, int] = field(default_factory=dict)  # registered: their row in flagctl.clients
    acks: dict[Who, int] = field(default_factory=dict)  # to write: the sequence each has fetched
    fetched: dict[Who, int] = field(default_factory=dict)  # the newest sequence each has fetched
    streams: dict[Who, int] = field(default_factory=dict)  # open push streams per client
    gone: list[int] = field(default_factory=list)  # rows to unregister


class Relay(Gate):
    """A gate for ``flagctl serve`` (see the module)."""

    wake = 0.05  # acknowledgements reach the database within this

    def __init__(
        self,
        dsn: str,
        *,
        system: str | None = None,
        manifest: str | Path | Manifest | None = None,
        staleness: timedelta = timedelta(seconds=30),
        check: timedelta = timedelta(seconds=5),
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[..., Any] | None = None,
        start: bool = False,
    ) -> None:
        super().__init__(
            dsn, manifest=manifest, system=system, staleness=staleness, check=check, clock=clock,
            connect=connect, application="flagctl serve", start=start,
        )  # fmt: skip
        self.tokens: dict[str, str] = {}  # hash → application
        self.counters = Counters()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._next_change: asyncio.Future[int] | None = None
        self.subscribers = 0
        self._behind = Behind()
        self._lock = threading.Lock()
        self._heartbeat_at = 0.0
        self._status: tuple[int, dict[str, Any]] | None = None
        self._status_wanted = threading.Event()
        self._status_ready = threading.Condition()
        self._written = threading.Condition()  # notified after each flush that wrote something
        self.on_change(self._announce)

    # ------------------------------------------------------------------ the gate's thread

    def reload(self, conn: Any, *, changes_only: bool = False) -> None:
        self.tokens = token_store.live(conn, self.system)  # a revoked token: refused from now on
        super().reload(conn, changes_only=changes_only)

    def step(self, conn: Any) -> None:
        super().step(conn)
        self.flush(conn)

    def flush(self, conn: Any) -> None:
        """Write what is owed: register new clients, acknowledge fetches (every open
        stream's again each ``check``, as its heartbeat), unregister closed streams, and
        build the status document if one was asked for."""
        now = self.clock()
        with self._lock:
            behind = self._behind
            if now - self._heartbeat_at >= self.check:
                self._heartbeat_at = now
                for who in behind.streams:
                    behind.acks.setdefault(who, behind.fetched.get(who, 0))
            acks, behind.acks = behind.acks, {}
            gone, behind.gone = behind.gone, []
            rows = dict(behind.rows)
        relay = self._client
        for row in gone:
            client_store.unregister(conn, row)
        if acks and relay is not None:
            registered = {}
            for who in [w for w in acks if w not in rows]:
                new = client_store.register_behind(conn, relay, who[1], who[0])
                if new is not None:
                    registered[who] = new
                    self.counters.registered += 1
            known = {**rows, **registered}
            alive = client_store.ack_many(conn, {known[w]: seq for w, seq in acks.items() if w in known})
            self.counters.acks_written += len(alive)
            with self._lock:  # the event loop may have closed streams meanwhile
                for who, row in registered.items():
                    if who in behind.streams or who in behind.fetched:
                        behind.rows[who] = row
                    else:  # closed while it was being registered
                        behind.gone.append(row)
                for who in acks:  # not acknowledged: gone (the relay reconnected); registered again
                    mine = known.get(who)
                    if mine is not None and mine not in alive and behind.rows.get(who) == mine:
                        del behind.rows[who]
        if gone or acks:
            with self._written:
                self._written.notify_all()
        if self._status_wanted.is_set():
            self._status_wanted.clear()
            self._build_status(conn)

    def _build_status(self, conn: Any) -> None:
        from datetime import UTC, datetime

        from flagctl.store.audit import read_log
        from flagctl.store.clients import clients
        from flagctl.views.status import status

        state = self._state
        if state is None:
            return
        manifest = state.manifest
        now = datetime.now(UTC)
        document = {
            **status(conn, manifest, None).to_json(),
            "seq": state.seq,
            "version": self.version(),
            "ladders": {name: [s.name for s in ladder.stages] for name, ladder in manifest.ladders.items()},
            "clients": [c.to_json(now) for c in clients(conn, manifest)],
            "changes": [_change(r) for r in read_log(conn, system=manifest.system, limit=20)],
        }
        with self._status_ready:
            self._status = (state.seq, document)
            self._status_ready.notify_all()

    # ------------------------------------------------------------------ the event loop

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Push changes to subscribers on this event loop."""
        self.loop = loop
        self._next_change = loop.create_future()

    def _announce(self, seq: int) -> None:  # on the gate's thread, after a reload with changes
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self._wake_subscribers, seq)

    def _wake_subscribers(self, seq: int) -> None:
        changed, self._next_change = self._next_change, asyncio.get_running_loop().create_future()
        if changed is not None and not changed.done():
            changed.set_result(seq)

    def changed(self) -> asyncio.Future[int]:
        """The future the next change resolves (take it before reading the sequence)."""
        assert self._next_change is not None, "attach() the relay to the event loop first"
        return self._next_change

    @staticmethod
    async def wait(changed: asyncio.Future[int], timeout: float) -> int | None:
        """The sequence of the change that resolves ``changed``, or None after ``timeout``."""
        try:
            return await asyncio.wait_for(asyncio.shield(changed), timeout)
        except TimeoutError:
            return None

    def readiness(self) -> dict[str, Any]:
        """Whether it can answer: a snapshot within the staleness bound."""
        state = self._state
        age = None if state is None else round(self.clock() - state.read_at, 3)
        return {"ready": self.fresh(), "seq": None if state is None else state.seq, "age_seconds": age}

    def current_state(self) -> State | None:
        """The state served (None before the first read, or when it is stale: a gate behind
        the relay must not take a stale state for a current one)."""
        return self._state if self.fresh() else None

    def version(self) -> str | None:
        """The state's version: its change sequence and a digest of its rows. Every OFREP
        bulk ETag starts with it; a push event carries it."""
        state = self._state
        return None if state is None else version_of(state)

    def fetched(self, who: Who | None, seq: int) -> None:
        """A client behind the relay was answered from the state at ``seq``: its acknowledgement."""
        if who is None:
            return
        with self._lock:
            self._behind.fetched[who] = max(seq, self._behind.fetched.get(who, 0))
            self._behind.acks[who] = self._behind.fetched[who]

    def opened(self, who: Who | None) -> None:
        """A push stream opened (``who``: its named client; None: anonymous, only counted)."""
        if who is None:
            self.subscribers += 1
            return
        with self._lock:
            self._behind.streams[who] = self._behind.streams.get(who, 0) + 1
            self._behind.acks.setdefault(who, self._behind.fetched.get(who, 0))
        self.subscribers += 1

    def closed(self, who: Who | None) -> None:
        self.subscribers -= 1
        if who is None:
            return
        with self._lock:
            left = self._behind.streams.get(who, 1) - 1
            if left > 0:
                self._behind.streams[who] = left
                return
            self._behind.streams.pop(who, None)
            self._behind.fetched.pop(who, None)
            row = self._behind.rows.pop(who, None)
            if row is not None:
                self._behind.gone.append(row)

    def status_document(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """The status page's document for the current state (built on the gate's thread,
        once per change however many pages ask); None if it could not be built in time."""
        seq = self.seq
        with self._status_ready:
            current = self._status
            if current is not None and current[0] == seq:
                return current[1]
            self._status_wanted.set()
            self._status_ready.wait_for(
                lambda: self._status is not None and self._status[0] == self.seq, timeout
            )
            return self._status[1] if self._status is not None else None

    def wait_written(self, condition: Callable[[Relay], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition(relay)`` holds, looking again after every flush that wrote
        registrations, acknowledgements or departures (True), or the timeout (False)."""
        with self._written:
            return self._written.wait_for(lambda: condition(self), timeout)

    def behind_count(self) -> int:
        """Named clients with an open push stream whose last fetch is older than the state."""
        seq = self.seq or 0
        with self._lock:
            return sum(1 for who in self._behind.streams if self._behind.fetched.get(who, 0) < seq)
