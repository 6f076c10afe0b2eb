"""flagctl.bucket in SQL agrees with Python on every input we can think of, and on 100k more."""

from __future__ import annotations

import random

import psycopg

from flagctl.rules.bucketing import bucket
from flagctl.store import schema

EDGES = [
    "",
    " ",
    ":",
    "::",
    "'",
    "''",
    '"',
    "\\",
    "%",
    "%s",
    "a:b",
    "Ω",
    "名前",
    "🚀",
    "e\u0301",
    "\t\n",
    "x" * 1000,
]


def random_ids(count: int, rng: random.Random) -> list[str]:
    alphabets = [
        "abcdefghijklmnopqrstuvwxyz0123456789",
        ":;'\"\\%_-./ ,|",
        "äöüßéèñçøå",
        "ΩЖ中文日本語한국어",
        "🚀🙂👍🏽",
    ]
    ids = []
    for _ in range(count):
        alphabet = "".join(rng.sample(alphabets, rng.randint(1, len(alphabets))))
        ids.append("".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40))))
    return ids


def sql_buckets(conn: psycopg.Connection, salts: list[str], ids: list[str]) -> list[int]:
    rows = conn.execute(
        "SELECT flagctl.bucket(s, i) FROM unnest(%s::text[], %s::text[]) WITH ORDINALITY AS u(s, i, n) ORDER BY n",
        (salts, ids),
    ).fetchall()
    return [r[0] for r in rows]


def test_sql_and_python_agree_on_edge_cases_and_100k_random_ids(db: str) -> None:
    rng = random.Random(20261121)
    ids = EDGES + [str(n) for n in range(1000)] + random_ids(100_000, rng)
    salts_pool = ["p3_advisory", "", "AB12A", "salt:with:colons", "Ω-salt", "'quoted'"]
    salts = [rng.choice(salts_pool) for _ in ids]
    with psycopg.connect(db, autocommit=True) as conn:
        schema.init(conn, None)
        got = sql_buckets(conn, salts, ids)
    expected = [bucket(s, i) for s, i in zip(salts, ids, strict=True)]
    mismatches = [(s, i, g, e) for s, i, g, e in zip(salts, ids, got, expected, strict=True) if g != e]
    assert len(got) == len(ids) > 101_000
    assert not mismatches, mismatches[:5]


def test_unleash_vectors_in_sql(db: str) -> None:
    with psycopg.connect(db, autocommit=True) as conn:
        schema.init(conn, None)
        assert sql_buckets(conn, ["AB12A", "AB12A"], ["122", "155"]) == [22, 99]
        assert conn.execute("SELECT flagctl.hash_version()").fetchone() == (1,)
