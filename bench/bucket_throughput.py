"""Bucketing throughput: flagctl.bucket in SQL next to PostgreSQL's built-in md5() over the
same ids (same run, same server), and the Python function per id.

    python bench/bucket_throughput.py [--ids 1000000] [--dsn ADMIN_DSN]

Without --dsn a throw-away database is created on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import time

import psycopg
from _db import admin_dsn, throwaway_database

from flagctl.rules.bucketing import bucket
from flagctl.store import schema

BUCKET_SQL = "SELECT sum(flagctl.bucket('p3_advisory', g::text)) FROM generate_series(1, %s) g"
MD5_SQL = "SELECT sum(length(md5('p3_advisory:' || g::text))) FROM generate_series(1, %s) g"
BASELINE_SQL = "SELECT sum(length('p3_advisory:' || g::text)) FROM generate_series(1, %s) g"


def timed_query(conn: psycopg.Connection, query: str, ids: int) -> float:
    started = time.perf_counter()
    conn.execute(query, (ids,)).fetchone()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--dsn", help="an existing server's admin DSN (default: the embedded one)")
    args = parser.parse_args()
    with throwaway_database(admin_dsn(args.dsn)) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        schema.init(conn, None)
        conn.execute("SET max_parallel_workers_per_gather = 0")  # one core each, comparable
        timed_query(conn, BUCKET_SQL, 10_000)  # warm up (plan and function cache)
        baseline = timed_query(conn, BASELINE_SQL, args.ids)
        md5 = timed_query(conn, MD5_SQL, args.ids)
        ours = timed_query(conn, BUCKET_SQL, args.ids)
    started = time.perf_counter()
    for i in range(args.ids):
        bucket("p3_advisory", str(i))
    python = time.perf_counter() - started

    n = args.ids
    print(f"{n:,} ids, same server, same run (one core, no parallel workers):")
    print(f"  SQL generate_series + concat only  {baseline:7.2f} s  {n / baseline:12,.0f} ids/s")
    print(f"  SQL md5()                          {md5:7.2f} s  {n / md5:12,.0f} ids/s")
    print(
        f"  SQL flagctl.bucket() (PL/pgSQL)    {ours:7.2f} s  {n / ours:12,.0f} ids/s"
        f"  ×{ours / md5:.1f} the time of md5()"
    )
    print(
        f"  Python bucket() per id             {python:7.2f} s  {n / python:12,.0f} ids/s"
        f"  ({python / n * 1e6:.2f} µs per id)"
    )


if __name__ == "__main__":
    main()
