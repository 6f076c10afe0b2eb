"""What the benchmarks share: a throw-away database on a server (dropped afterwards), and
flagctl's bytecode compiled as an installed package has it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql


def compile_flagctl() -> None:
    """Compile flagctl's modules to bytecode, as ``pip install`` does. From a source checkout
    (an editable install) with PYTHONDONTWRITEBYTECODE set, every flagctl process would
    otherwise compile its modules anew — the bare psycopg script's packages never do."""
    import compileall
    from pathlib import Path

    compileall.compile_dir(Path(__file__).resolve().parents[1] / "flagctl", quiet=1)


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
