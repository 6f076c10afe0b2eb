"""``flagctl.bucket`` in the database (the SQL side of ``rules.bucketing``): the installed
hash version, the buckets of given ids, and an operator's subjects query — its ids, or how
many of them a percent makes eligible — run read-only with a timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.store.db import read_only, subjects_from

if TYPE_CHECKING:
    import psycopg

HASH_VERSION = "SELECT flagctl.hash_version()"
BUCKETS = "SELECT flagctl.bucket(%s, i) FROM unnest(%s::text[]) WITH ORDINALITY AS u(i, n) ORDER BY n"
# Around an operator's subjects query, as the FROM item s(id) (``store.db.subjects_from``).
SUBJECT_IDS = "SELECT s.id::text FROM {} LIMIT %s"
ELIGIBLE = (
    "SELECT count(*), count(*) FILTER (WHERE flagctl.bucket(%(salt)s, s.id::text) < %(now)s),"
    " count(*) FILTER (WHERE flagctl.bucket(%(salt)s, s.id::text) < %(at)s) FROM {}"
)


def hash_version(conn: psycopg.Connection[Any]) -> int | None:
    """The bucketing hash version the database's ``flagctl.bucket`` implements."""
    row = conn.execute(HASH_VERSION).fetchone()
    return row[0] if row else None


def buckets(conn: psycopg.Connection[Any], salt: str, ids: list[str]) -> list[int]:
    """``flagctl.bucket(salt, id)`` of each id, in the order given."""
    return [row[0] for row in conn.execute(BUCKETS, (salt, ids)).fetchall()]


def subject_ids(conn: psycopg.Connection[Any], sql_text: str, sample: int, timeout: str = "30s") -> list[str]:
    """The first ``sample`` ids of an operator's subjects query (its first column), run
    read-only with a timeout; a failing query raises its ``psycopg.Error``."""
    query = SUBJECT_IDS.format(subjects_from(sql_text))
    with read_only(conn, timeout):
        return [row[0] for row in conn.execute(query.encode(), (sample,))]


def eligible_counts(
    conn: psycopg.Connection[Any], subjects_sql: str, salt: str, now: int, at: int, timeout: str
) -> tuple[int, int, int]:
    """Of an operator's subjects: how many, how many below ``now`` percent, how many below
    ``at`` percent (read-only, with a timeout; a failing query raises its ``psycopg.Error``)."""
    query = ELIGIBLE.format(subjects_from(subjects_sql))
    with read_only(conn, timeout):
        row = conn.execute(query.encode(), {"salt": salt, "now": now, "at": at}).fetchone()
    assert row is not None
    return row[0], row[1], row[2]
