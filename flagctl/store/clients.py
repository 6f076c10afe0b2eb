"""Gate clients (``flagctl.clients``): who runs a gate, and what it has applied."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.model.manifest import Manifest

if TYPE_CHECKING:
    import psycopg

# The newest change of a system: a gate's change sequence, and what a kill waits for.
NEWEST = "SELECT coalesce(max(seq), 0) FROM flagctl.audit WHERE system = %s"
# A gate registers, acknowledges and leaves only through these functions (schema 18): each
# touches only the row its own backend and database user registered, on the server's clock.
REGISTER = "SELECT flagctl.client_register(%s, %s, %s, %s)"
# Heartbeat and acknowledgement in one: seen now; applied_at moves only with applied_seq.
ACK = "SELECT flagctl.client_ack(%(id)s, %(seq)s)"
UNREGISTER = "SELECT flagctl.client_unregister(%s)"
# A client behind a relay (flagctl serve), registered and acknowledged by the relay's backend (schema 35).
REGISTER_BEHIND = "SELECT flagctl.client_register_behind(%s, %s, %s)"
ACK_MANY = "SELECT flagctl.client_ack_many(%s, %s)"
WAIT = (
    "SELECT id, host, pid, application, applied_seq, acked, after_seconds, relay"
    " FROM flagctl.wait_acks(%s, %s, %s, %s)"
)
# Each relay first, the clients behind it right after it.
CLIENTS = """
SELECT id, host, pid, application, db_user, started_at, seen_at, applied_seq, applied_at,
       (SELECT coalesce(max(seq), 0) FROM flagctl.audit WHERE system = %s) - applied_seq, relay
  FROM flagctl.clients WHERE system = %s ORDER BY coalesce(relay, id), relay IS NOT NULL, id
"""


@dataclass(frozen=True)
class Ack:
    id: int
    host: str
    pid: int
    application: str
    applied_seq: int
    acked: bool
    after_seconds: float
    relay: int | None = None  # the relay it reads through (flagctl serve); None: it reads the database

    @property
    def name(self) -> str:
        """How a person finds it: a gate by host and pid, a client behind a relay by the
        name it gave and its application."""
        if self.relay is not None:
            return f"{self.host} ({self.application}, behind relay {self.relay})"
        return f"{self.host} pid {self.pid} ({self.application})"


@dataclass(frozen=True)
class Client:
    id: int
    host: str
    pid: int
    application: str
    db_user: str
    started_at: datetime
    seen_at: datetime
    applied_seq: int
    applied_at: datetime | None
    behind: int  # audit rows of the system it has not applied
    relay: int | None = None  # the relay it reads through (flagctl serve)

    def to_json(self, now: datetime) -> dict[str, Any]:
        return {
            "id": self.id,
            "host": self.host,
            "pid": self.pid,
            "application": self.application,
            "db_user": self.db_user,
            "started_at": self.started_at.isoformat(),
            "seen_at": self.seen_at.isoformat(),
            "seen_seconds_ago": round((now - self.seen_at).total_seconds(), 3),
            "applied_seq": self.applied_seq,
            "behind": self.behind,
            "relay": self.relay,
        }


def wait_acks(
    conn: psycopg.Connection[Any], manifest: Manifest, timeout: timedelta, live: timedelta
) -> list[Ack]:
    """Wait on the server until every live client applied the system's newest change (or
    the timeout); every live client, acknowledged or not."""
    row = conn.execute(NEWEST, (manifest.system,)).fetchone()
    seq = int(row[0]) if row else 0
    bound = int((timeout + timedelta(seconds=10)).total_seconds() * 1000)  # the session's own bound
    conn.execute("SELECT set_config('statement_timeout', %s, false)", (f"{bound}ms",))
    return [Ack(*r) for r in conn.execute(WAIT, (manifest.system, seq, timeout, live)).fetchall()]


def register(conn: psycopg.Connection[Any], system: str, host: str, pid: int, application: str) -> int:
    """Register this backend as a gate client of the system; its client id."""
    row = conn.execute(REGISTER, (system, host, pid, application)).fetchone()
    assert row is not None
    return int(row[0])


def ack(conn: psycopg.Connection[Any], client: int, seq: int) -> bool:
    """The client applies the system's changes up to audit row ``seq`` (and is alive);
    False: no such client of this backend (a reconnect: it registers again)."""
    row = conn.execute(ACK, {"seq": seq, "id": client}).fetchone()
    assert row is not None
    return bool(row[0])


def register_behind(conn: psycopg.Connection[Any], relay: int, name: str, application: str) -> int | None:
    """Register a client behind this backend's relay row; its row (None: ``relay`` is not
    a relay row of this backend)."""
    row = conn.execute(REGISTER_BEHIND, (relay, name, application)).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def ack_many(conn: psycopg.Connection[Any], applied: dict[int, int]) -> set[int]:
    """Acknowledge (and heartbeat) many of this backend's clients in one statement: row →
    sequence applied. The rows that were this backend's."""
    if not applied:
        return set()
    ids = list(applied)
    rows = conn.execute(ACK_MANY, (ids, [applied[i] for i in ids])).fetchall()
    return {int(r[0]) for r in rows}


def unregister(conn: psycopg.Connection[Any], client: int) -> None:
    conn.execute(UNREGISTER, (client,))


def clients(conn: psycopg.Connection[Any], manifest: Manifest) -> list[Client]:
    return [Client(*r) for r in conn.execute(CLIENTS, (manifest.system, manifest.system)).fetchall()]
