"""Versioned, idempotent migrations of the ``flagctl`` schema, and table bindings.

``db init`` applies pending ``flagctl/sql/NNN_*.sql`` files in order, in one
transaction, under an advisory lock (two concurrent inits serialize; the second finds
nothing to do). It then re-applies the current definition of every function
(``flagctl/sql/routines/*.sql``) when one of those files changed or a migration was
applied, recording each file's checksum in ``flagctl.schema_routines``
(flagctl/sql/README.md). Last, it registers the manifest's bound tables and installs
the audit trigger on each; a bound table or column that does not exist is a usage error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError
from flagctl.model.manifest import Manifest
from flagctl.store.roles import GRANT_BOUND

if TYPE_CHECKING:
    import psycopg

MIGRATION_LOCK = 0x666C6167  # "flag"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        import hashlib

        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Routines:
    """One file of current function definitions (flagctl/sql/routines/NN_area.sql)."""

    name: str
    sql: str

    @property
    def checksum(self) -> str:
        import hashlib

        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


@dataclass
class InitResult:
    applied: list[int] = field(default_factory=list)
    version: int = 0
    routines: list[str] = field(default_factory=list)  # the routines files re-applied
    bindings: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # triggers and rules that can keep a write from taking


@dataclass(frozen=True)
class BindingInfo:
    system: str
    flag: str
    table: str
    key: dict[str, Any]
    columns: dict[str, str]
    registered_at: datetime
    trigger: bool
    in_the_way: list[str] = field(default_factory=list)  # the table's own triggers and rules (writes)


@dataclass(frozen=True)
class SchemaStatus:
    installed: bool
    version: int
    latest: int
    migrations: list[tuple[int, str, datetime, bool]]  # version, name, applied_at, checksum ok
    bindings: list[BindingInfo]
    routines: list[tuple[str, str]] = field(
        default_factory=list
    )  # file, "current" | "changed" | "not applied"

    @property
    def routines_current(self) -> bool:
        return all(state == "current" for _name, state in self.routines)


def migrations() -> list[Migration]:
    found = []
    for item in resources.files("flagctl").joinpath("sql").iterdir():
        name = item.name
        if name.endswith(".sql") and name[:3].isdigit():
            found.append(Migration(int(name[:3]), name.removesuffix(".sql"), item.read_text()))
    return sorted(found, key=lambda m: m.version)


def routines() -> list[Routines]:
    """The current definitions of every flagctl function, in the order they are applied."""
    folder = resources.files("flagctl").joinpath("sql", "routines")
    found = [
        Routines(item.name.removesuffix(".sql"), item.read_text())
        for item in folder.iterdir()
        if item.name.endswith(".sql")
    ]
    return sorted(found, key=lambda r: r.name)


_BOOTSTRAP = """
CREATE SCHEMA IF NOT EXISTS flagctl;
CREATE TABLE IF NOT EXISTS flagctl.schema_migrations (
    version    integer PRIMARY KEY,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"""


def init(conn: psycopg.Connection[Any], manifest: Manifest | None, *, upto: int | None = None) -> InitResult:
    """Install or upgrade the schema, then register the manifest's bindings.

    ``upto`` stops at that schema version and leaves the functions as its migrations
    defined them: the schema an install of that version had (for the upgrade tests)."""
    result = InitResult()
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute(_BOOTSTRAP)
        done = {row[0] for row in conn.execute("SELECT version FROM flagctl.schema_migrations")}
        for migration in migrations():
            if migration.version in done or (upto is not None and migration.version > upto):
                continue
            conn.execute(migration.sql.encode())  # a trusted file of this package
            conn.execute(
                "INSERT INTO flagctl.schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (migration.version, migration.name, migration.checksum),
            )
            result.applied.append(migration.version)
        result.version = max([*done, *result.applied], default=0)
        if upto is None:
            result.routines = apply_routines(conn, force=bool(result.applied))
        if manifest is not None:
            result.bindings = register_bindings(conn, manifest)
            result.warnings = foreign_writers(conn, manifest)
    return result


def apply_routines(conn: psycopg.Connection[Any], force: bool = False) -> list[str]:
    """Re-apply every routines file (all ``CREATE OR REPLACE``, so grants, owners and
    comments stay) when one differs from the checksum recorded, or ``force`` (a migration
    was applied: it may have restated a function). Returns the files applied, [] if none."""
    recorded = dict(conn.execute("SELECT name, checksum FROM flagctl.schema_routines").fetchall())
    files = routines()
    if not force and {r.name: r.checksum for r in files} == recorded:
        return []
    for item in files:  # all of them, in order: a later file may use an earlier one's function
        conn.execute(item.sql.encode())  # a trusted file of this package
    conn.execute("DELETE FROM flagctl.schema_routines")
    for item in files:
        conn.execute(
            "INSERT INTO flagctl.schema_routines (name, checksum) VALUES (%s, %s)", (item.name, item.checksum)
        )
    return [r.name for r in files]


def routines_state(conn: psycopg.Connection[Any]) -> list[tuple[str, str]]:
    """Each routines file of this flagctl against the database: current, changed (db init
    re-applies it) or not applied (a schema older than version 25, or never re-applied)."""
    if conn.execute("SELECT to_regclass('flagctl.schema_routines')").fetchone() in (None, (None,)):
        recorded: dict[str, str] = {}
    else:
        recorded = dict(conn.execute("SELECT name, checksum FROM flagctl.schema_routines").fetchall())
    return [
        (
            r.name,
            "not applied"
            if r.name not in recorded
            else "current"
            if recorded[r.name] == r.checksum
            else "changed",
        )
        for r in routines()
    ]


def foreign_writers(conn: psycopg.Connection[Any], manifest: Manifest) -> list[str]:
    """A warning per trigger or rule of a bound table's own that can change or skip
    flagctl's writes (a kill that meets one fails rather than report success)."""
    from flagctl.store.db import interference

    tables = sorted({flag.table for flag in manifest.flags.values() if flag.table is not None})
    return [
        f"bound table {table}: {found} can change or skip flagctl's writes; a kill it stops fails"
        for table in tables
        for found in interference(conn, table)
    ]


def check_bindings(conn: psycopg.Connection[Any], manifest: Manifest) -> dict[str, tuple[str, str]]:
    """Every bound table and column of the manifest exists (a usage error naming the first
    that does not): flag → (schema, table) as the database names them. Reads only."""
    found: dict[str, tuple[str, str]] = {}
    for name, flag in manifest.flags.items():
        if flag.table is None:
            continue
        assert flag.key is not None and flag.columns is not None
        oid_row = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE c.oid = to_regclass(%s)",
            (flag.table,),
        ).fetchone()
        if oid_row is None:
            raise UsageError(
                f"bound table {flag.table} (flag {name}) does not exist in this database",
                "create it first (the application owns it), then re-run flagctl db init",
            )
        schema, table = oid_row
        wanted = [*flag.key, *dict(flag.columns).values()]
        present = {
            row[0]
            for row in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s)"
                " AND attnum > 0 AND NOT attisdropped",
                (f"{quote(schema)}.{quote(table)}",),
            )
        }
        missing = [col for col in wanted if col not in present]
        if missing:
            raise UsageError(
                f"bound table {schema}.{table} (flag {name}) has no column {missing[0]!r}",
                f"columns: {', '.join(sorted(present))}; fix flags.{name} in {manifest.path}",
            )
        found[name] = (schema, table)
    return found


def register_bindings(conn: psycopg.Connection[Any], manifest: Manifest) -> list[str]:
    from psycopg import sql
    from psycopg.types.json import Jsonb

    registered = []
    key_columns: dict[tuple[str, str], list[str]] = {}
    tables = check_bindings(conn, manifest)
    for name, flag in manifest.flags.items():
        if flag.table is None:
            continue
        assert flag.key is not None and flag.columns is not None
        schema, table = tables[name]
        columns = dict(flag.columns)
        conn.execute(
            """
            INSERT INTO flagctl.binding (system, flag, table_schema, table_name, key, columns)
            VALUES (%s, %s, %s, %s, %s, %s)
            ON CONFLICT (system, flag) DO UPDATE
               SET table_schema = excluded.table_schema, table_name = excluded.table_name,
                   key = excluded.key, columns = excluded.columns
             WHERE (binding.table_schema, binding.table_name, binding.key, binding.columns)
                   IS DISTINCT FROM
                   (excluded.table_schema, excluded.table_name, excluded.key, excluded.columns)
            """,
            (manifest.system, name, schema, table, Jsonb(flag.key), Jsonb(columns)),
        )
        key_columns[(schema, table)] = sorted(flag.key)
        registered.append(f"{name} → {schema}.{table}")
    for (schema, table), keys in key_columns.items():
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER flagctl_audit AFTER INSERT OR UPDATE OR DELETE ON {}"
                " FOR EACH ROW EXECUTE FUNCTION flagctl.audit_row({})"
            ).format(sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Literal, keys)))
        )
        conn.execute(  # the database judges every write of a flag value (schema 14; bound tables: 20)
            sql.SQL(
                "CREATE OR REPLACE TRIGGER flagctl_guard BEFORE INSERT OR UPDATE OR DELETE ON {}"
                " FOR EACH ROW EXECUTE FUNCTION flagctl.guard_flag_write()"
            ).format(sql.Identifier(schema, table))
        )
        conn.execute(
            sql.SQL(
                "CREATE OR REPLACE TRIGGER flagctl_audit_truncate AFTER TRUNCATE ON {}"
                " FOR EACH STATEMENT EXECUTE FUNCTION flagctl.audit_truncate()"
            ).format(sql.Identifier(schema, table))
        )
        # The release and security roles change bound rows; viewers read them.
        qualified = sql.Identifier(schema, table).as_string(conn)
        conn.execute(GRANT_BOUND.format(table=sql.Literal(qualified).as_string(conn)).encode())
    return registered


INSTALLED_AT = "SELECT min(applied_at) FROM flagctl.schema_migrations"
# Since when flagctl has watched some flags of a system: their bindings' first registration,
# else the schema's installation.
WATCHED_SINCE = """
SELECT coalesce((SELECT min(registered_at) FROM flagctl.binding WHERE system = %s AND flag = ANY(%s)),
                (SELECT min(applied_at) FROM flagctl.schema_migrations))
"""


def installed_at(conn: psycopg.Connection[Any]) -> datetime | None:
    """When the schema's first migration was applied (None: never)."""
    row = conn.execute(INSTALLED_AT).fetchone()
    return row[0] if row else None


def watched_since(conn: psycopg.Connection[Any], system: str, flags: list[str]) -> datetime | None:
    """Since when flagctl has watched these flags: the earliest registration of their
    bindings, else the schema's installation."""
    row = conn.execute(WATCHED_SINCE, (system, flags)).fetchone()
    return row[0] if row else None


def quote(name: str) -> str:
    """An identifier as SQL writes it (for to_regclass)."""
    return '"' + name.replace('"', '""') + '"'


def status(conn: psycopg.Connection[Any]) -> SchemaStatus:
    latest = max((m.version for m in migrations()), default=0)
    installed = conn.execute("SELECT to_regclass('flagctl.schema_migrations')").fetchone()
    if installed is None or installed[0] is None:
        return SchemaStatus(False, 0, latest, [], [])
    sums = {m.version: m.checksum for m in migrations()}
    rows = conn.execute(
        "SELECT version, name, applied_at, checksum FROM flagctl.schema_migrations ORDER BY version"
    ).fetchall()
    applied = [(v, n, at, sums.get(v) == c) for v, n, at, c in rows]
    from flagctl.store.db import interference

    bindings = [
        BindingInfo(
            system,
            flag,
            f"{schema}.{table}",
            key,
            columns,
            registered_at,
            trigger,
            interference(conn, f"{quote(schema)}.{quote(table)}"),
        )
        for system, flag, schema, table, key, columns, registered_at, trigger in conn.execute(
            """
            SELECT b.system, b.flag, b.table_schema, b.table_name, b.key, b.columns, b.registered_at,
                   EXISTS (SELECT 1 FROM pg_trigger t
                            WHERE t.tgrelid = to_regclass(quote_ident(b.table_schema) || '.'
                                                          || quote_ident(b.table_name))
                              AND t.tgname = 'flagctl_audit' AND t.tgenabled <> 'D')
              FROM flagctl.binding b ORDER BY b.system, b.flag
            """
        )
    ]
    version = max((v for v, *_ in applied), default=0)
    return SchemaStatus(True, version, latest, applied, bindings, routines_state(conn))
