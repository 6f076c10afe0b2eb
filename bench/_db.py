"""A throw-away database on a server, for the benchmarks (dropped afterwards)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


def admin_dsn(dsn: str | None) -> str:
    """The given server, or the embedded PostgreSQL (started if needed)."""
    if dsn:
        return dsn
    from flagctl import local

    return local.ensure_running(local.data_dir()).dsn("postgres")


@contextmanager
def throwaway_database(admin: str) -> Iterator[str]:
    name = f"bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield psycopg.conninfo.make_conninfo(admin, dbname=name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
