"""What an application's gate (``flagctl.gate``) sends: LISTEN on the audit trigger's channel,
its reads in one repeatable-read transaction, the published catalogue's version and text,
and the check.

The check is one statement that reads the newest change of the system and a digest of
every row the gate's state is built from.

- The **change sequence** (the newest audit ``seq``) moves with every audited change: a
  gate that has not seen it missed a notification.
- The **digest** moves with every change of what the gate reads, audited or not: a bound
  table or ``flagctl.flag_state`` updated by its owner with the user triggers disabled
  (``ALTER TABLE … DISABLE TRIGGER USER``, ``session_replication_role = replica``) writes
  no audit row and sends no notification, but changes the digest.

The digest is the md5 of the rows of the very statements a reload sends — the flags'
reads (``FlagStore.reading``: flagctl's table by system and flag, each bound table by its
key columns), the engaged switches and the exemptions of the system, and the published
catalogue version when the gate reads the catalogue — each statement's rows as text, in
sorted order. It is computed by the database, in the same statement as the change
sequence, so a check is one round trip whose cost grows with the rows of one system's
state (a few dozen, read through their keys), never with the audit trail or with traffic.
A reload computes it in its repeatable-read transaction, so it describes exactly the state
the gate holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.store.clients import NEWEST
from flagctl.store.exemptions import OF_SYSTEM
from flagctl.store.flags import FlagStore
from flagctl.store.switches import SELECT_ENGAGED

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest

# The audit trigger NOTIFYs on this channel in the transaction that changed a flag.
CHANNEL = "flagctl"
LISTEN = f"LISTEN {CHANNEL}"
# A reload reads everything in one snapshot (the connection is in autocommit).
BEGIN_SNAPSHOT = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
END_SNAPSHOT = "COMMIT"
PUBLISHED_VERSION = (
    "SELECT max(version) FROM flagctl.catalogue WHERE system = %s HAVING max(version) IS NOT NULL"
)
PUBLISHED_SOURCE = "SELECT source FROM flagctl.catalogue WHERE system = %s AND version = %s"
# The published version of the system (NULL before the first publish), as the check reads it.
PUBLISHED = "SELECT max(version) FROM flagctl.catalogue WHERE system = %s"
# What changed since a gate's last read (an incremental reload): the system's audit rows
# after its change sequence, and those of the transactions that were still in progress
# when it read (they may commit with a lower seq) — each through its own index, at most
# ``limit`` of the first (more: the gate reads everything instead).
CHANGES = """
(SELECT target, flag, scope FROM flagctl.audit WHERE system = %(system)s AND seq > %(seq)s
  ORDER BY seq LIMIT %(limit)s)
UNION ALL
SELECT target, flag, scope FROM flagctl.audit
 WHERE txid = ANY(%(pending)s::bigint[]) AND system = %(system)s AND seq <= %(seq)s
"""
# The transactions in progress in this snapshot: their rows are not in it yet.
IN_PROGRESS = (
    "SELECT coalesce(array_agg(x::text::bigint), '{}') FROM pg_snapshot_xip(pg_current_snapshot()) AS x"
)
# One read's rows, as one sorted text array (NULL: no rows).
ROWS = "(SELECT array_agg(r::text ORDER BY r::text) FROM ({}) AS r)"
# The change sequence, and the digest of every read (ROW(...)::text quotes each part, so
# rows cannot slide from one read into the next).
CHECK = "SELECT ({}), md5(ROW({})::text)"


@dataclass(frozen=True)
class Check:
    """The check statement for one manifest, rendered once: ``(seq, digest)``."""

    query: str
    params: tuple[Any, ...]

    def run(self, conn: psycopg.Connection[Any]) -> tuple[int, str]:
        row = conn.execute(self.query, self.params).fetchone()
        assert row is not None
        return int(row[0]), str(row[1])


def check_for(conn: psycopg.Connection[Any], manifest: Manifest, *, catalogue: bool) -> Check:
    """The check of the state a gate reads for this manifest (``catalogue``: and the
    published version, for a gate that reads its definitions from the database)."""
    from psycopg import sql

    system = manifest.system
    reads = [
        *FlagStore(conn, manifest).reading(),
        (sql.SQL(SELECT_ENGAGED), [system]),
        (sql.SQL(OF_SYSTEM), [system]),
    ]
    if catalogue:
        reads.append((sql.SQL(PUBLISHED), [system]))
    query = sql.SQL(CHECK).format(
        sql.SQL(NEWEST), sql.SQL(", ").join(sql.SQL(ROWS).format(read) for read, _ in reads)
    )
    params = (system, *(param for _, read_params in reads for param in read_params))
    return Check(query.as_string(conn), params)


def in_progress(conn: psycopg.Connection[Any]) -> tuple[int, ...]:
    """The ids of the transactions in progress in this transaction's snapshot."""
    row = conn.execute(IN_PROGRESS).fetchone()
    return tuple(row[0]) if row is not None else ()


def changes(
    conn: psycopg.Connection[Any], system: str, seq: int, pending: tuple[int, ...], limit: int
) -> list[tuple[str, str | None, str | None]]:
    """(target, flag, scope) of each audit row of the system a gate at ``seq`` has not
    applied: those after it (at most ``limit``), and those of the transactions ``pending``
    when it read."""
    params = {"system": system, "seq": seq, "pending": list(pending), "limit": limit}
    return [(str(t), f, s) for t, f, s in conn.execute(CHANGES, params).fetchall()]


def listen(conn: psycopg.Connection[Any]) -> None:
    """Receive the audit trigger's notifications on this connection (``conn.notifies``)."""
    conn.execute(LISTEN)


@contextmanager
def snapshot(conn: psycopg.Connection[Any]) -> Iterator[psycopg.Connection[Any]]:
    """One read-only repeatable-read transaction on an autocommit connection: every read
    inside sees the same committed state. It ends (COMMIT) however the block ends."""
    conn.execute(BEGIN_SNAPSHOT)
    try:
        yield conn
    finally:
        conn.execute(END_SNAPSHOT)


def published_version(conn: psycopg.Connection[Any], system: str) -> int | None:
    """The newest published catalogue version of the system (None: none published)."""
    row = conn.execute(PUBLISHED_VERSION, (system,)).fetchone()
    return None if row is None else row[0]


def published_source(conn: psycopg.Connection[Any], system: str, version: int) -> str:
    """The manifest text published as that version."""
    row = conn.execute(PUBLISHED_SOURCE, (system, version)).fetchone()
    assert row is not None
    return str(row[0])
