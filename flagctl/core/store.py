"""Reading, locking and writing flag values where they live.

A flag lives either in ``flagctl.flag_state`` (one jsonb value per system/flag/scope;
a scoped row overrides the global one for that scope) or in an application table it is
bound to (key columns select the row, value columns hold the value). The bound table
stays the single source of truth: nothing is copied. Every identifier from the manifest
is composed with ``psycopg.sql.Identifier``; every value is a bound parameter.

Locking: every writer of a flag, whatever the scope, first locks the flag (in name order,
so lockers never deadlock): a bound flag by its row (``SELECT … FOR UPDATE``), a flag in
flagctl's own table by a transaction-level advisory lock on ``system/flag`` — which needs
no row to exist, so locking never creates one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.core.db import lock_key, lock_rows
from flagctl.core.errors import UsageError
from flagctl.core.flagtypes import SCOPE, AnyFlag
from flagctl.core.manifest import Manifest
from flagctl.core.schema import split_table

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

GLOBAL = "global"


def check_scope(manifest: Manifest, name: str, scope: str) -> None:
    """A scope is global, or KIND:VALUE with a kind the flag accepts."""
    if scope == GLOBAL:
        return
    match = SCOPE.match(scope)
    if not match:
        raise UsageError(f"invalid scope {scope!r}", "use global, or KIND:VALUE such as workspace:42")
    flag = manifest.flag(name)
    if match["kind"] not in flag.scopes:
        accepted = ", ".join(flag.scopes) or "none (global only)"
        raise UsageError(
            f"flag {name} has no {match['kind']} scope",
            f"scope kinds it accepts: {accepted} (the manifest's flags.{name}.scopes)",
        )


class FlagStore:
    def __init__(self, conn: psycopg.Connection[Any], manifest: Manifest) -> None:
        self.conn = conn
        self.manifest = manifest

    # -- reading

    def read(self, name: str) -> Any:
        """The global value (the flag's default when flagctl's table has no row yet)."""
        return self._global(name, lock=False)

    def read_all(self, names: list[str]) -> dict[str, Any]:
        return {name: self.read(name) for name in names}

    def read_scoped(self, name: str, scope: str) -> Any | None:
        """The override stored for this scope (None: no override, the global value holds)."""
        if scope == GLOBAL:
            return self.read(name)
        flag = self.manifest.flag(name)
        row = self.conn.execute(
            "SELECT value FROM flagctl.flag_state WHERE system = %s AND flag = %s AND scope = %s",
            (self.manifest.system, name, scope),
        ).fetchone()
        return None if row is None else flag.from_db(row[0])

    def overrides(self, name: str) -> dict[str, Any]:
        """Every scoped override of a flag, by scope."""
        flag = self.manifest.flag(name)
        rows = self.conn.execute(
            "SELECT scope, value FROM flagctl.flag_state WHERE system = %s AND flag = %s"
            " AND scope <> 'global' ORDER BY scope",
            (self.manifest.system, name),
        ).fetchall()
        return {scope: flag.from_db(value) for scope, value in rows}

    def lock(self, names: list[str], scope: str = GLOBAL) -> dict[str, Any]:
        """Lock these flags (global rows, in name order) and read them at this scope."""
        values = {}
        for name in sorted(set(names)):
            current = self._global(name, lock=True)
            values[name] = current if scope == GLOBAL else self.read_scoped(name, scope)
        return values

    def _global(self, name: str, lock: bool) -> Any:
        flag = self.manifest.flag(name)
        if flag.table is not None:
            return self._get_bound(name, flag, lock)
        if lock:
            lock_key(self.conn, f"{self.manifest.system}/{name}", f"flag {name}")
        row = self.conn.execute(
            "SELECT value FROM flagctl.flag_state WHERE system = %s AND flag = %s AND scope = %s",
            (self.manifest.system, name, GLOBAL),
        ).fetchone()
        return flag.from_db(row[0]) if row else flag.default_value()

    def _get_bound(self, name: str, flag: AnyFlag, lock: bool) -> Any:
        from psycopg import sql

        assert flag.table is not None and flag.key is not None and flag.columns is not None
        logical = list(flag.columns)
        query = sql.SQL("SELECT {} FROM {} WHERE {}{}").format(
            sql.SQL(", ").join(sql.Identifier(flag.columns[c]) for c in logical),
            _table(flag.table),
            _where(flag.key),
            sql.SQL(" FOR UPDATE") if lock else sql.SQL(""),
        )
        params = list(flag.key.values())
        if lock:
            rows = lock_rows(self.conn, query, params, flag.table, f"flag {name} in {flag.table}")
        else:
            rows = self.conn.execute(query, params).fetchall()
        if not rows:
            key = ", ".join(f"{k}={v}" for k, v in flag.key.items())
            raise UsageError(
                f"flag {name}: no row {key} in bound table {flag.table}",
                "the application owns that row; insert it (in its safe state) first",
            )
        if len(rows) > 1:
            raise UsageError(
                f"flag {name}: key matches {len(rows)} rows in {flag.table}",
                "the key columns must identify exactly one row",
            )
        try:
            return flag.from_columns(dict(zip(logical, rows[0], strict=True)))
        except ValueError as exc:
            raise UsageError(f"flag {name}: the value in {flag.table} does not fit its type: {exc}") from None

    # -- writing (caller holds the lock, inside a transaction with an audit context)

    def write(self, name: str, value: Any, scope: str = GLOBAL) -> None:
        """Store a value; ``None`` at a scope removes the override."""
        from psycopg import sql
        from psycopg.types.json import Jsonb

        flag = self.manifest.flag(name)
        if value is None:
            assert scope != GLOBAL
            self.conn.execute(
                "DELETE FROM flagctl.flag_state WHERE system = %s AND flag = %s AND scope = %s",
                (self.manifest.system, name, scope),
            )
            return
        if flag.table is None:
            self.conn.execute(
                "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (system, flag, scope)"
                " DO UPDATE SET value = excluded.value, updated_at = now()",
                (self.manifest.system, name, scope, Jsonb(flag.to_db(value))),
            )
            return
        assert flag.key is not None and scope == GLOBAL
        assignments = flag.to_columns(value)
        self.conn.execute(
            sql.SQL("UPDATE {} SET {} WHERE {}").format(
                _table(flag.table),
                sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(c)) for c in assignments),
                _where(flag.key),
            ),
            [*assignments.values(), *flag.key.values()],
        )


def _table(name: str) -> sql.Identifier:
    from psycopg import sql

    schema, table = split_table(name)
    return sql.Identifier(schema, table) if schema else sql.Identifier(table)


def _where(key: dict[str, Any]) -> sql.Composable:
    from psycopg import sql

    return sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in key)
