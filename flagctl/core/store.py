"""Reading, locking and writing flag values where they live.

A flag lives either in ``flagctl.flag_state`` (one jsonb value per system/flag/scope) or
in an application table it is bound to (key columns select the row, value columns hold
enabled/percent). The bound table stays the single source of truth: nothing is copied.
Every identifier from the manifest is composed with ``psycopg.sql.Identifier``; every
value is a bound parameter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.core.db import lock_rows
from flagctl.core.errors import UsageError
from flagctl.core.manifest import Manifest, RolloutFlag
from flagctl.core.schema import split_table
from flagctl.core.values import Rollout

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

GLOBAL = "global"


class FlagStore:
    def __init__(self, conn: psycopg.Connection[Any], manifest: Manifest) -> None:
        self.conn = conn
        self.manifest = manifest

    # -- reading

    def read(self, name: str, scope: str = GLOBAL) -> Rollout:
        """The stored value (the flag's default when flagctl's table has no row yet)."""
        return self._get(name, scope, lock=False)

    def read_all(self, names: list[str]) -> dict[str, Rollout]:
        return {name: self.read(name) for name in names}

    def lock(self, names: list[str], scope: str = GLOBAL) -> dict[str, Rollout]:
        """Lock the rows of these flags (sorted, so lockers never deadlock) and read them."""
        return {name: self._get(name, scope, lock=True) for name in sorted(set(names))}

    def _get(self, name: str, scope: str, lock: bool) -> Rollout:
        flag = self.manifest.flag(name)
        if flag.table is not None:
            return self._get_bound(name, flag, lock)
        query = self._own_select(lock)
        params = (self.manifest.system, name, scope)
        if lock:
            # Create the row first so there is a row to lock (ON CONFLICT: no-op if present).
            self._own_insert_default(name, flag, scope)
            rows = lock_rows(self.conn, query, params, "flagctl.flag_state", f"flag {name}")
        else:
            rows = self.conn.execute(query, params).fetchall()
        return Rollout.from_json(rows[0][0]) if rows else flag.default_value()

    def _own_select(self, lock: bool) -> sql.Composed:
        from psycopg import sql

        return sql.SQL(
            "SELECT value FROM flagctl.flag_state WHERE system = %s AND flag = %s AND scope = %s{}"
        ).format(sql.SQL(" FOR UPDATE") if lock else sql.SQL(""))

    def _own_insert_default(self, name: str, flag: RolloutFlag, scope: str) -> None:
        from psycopg.types.json import Jsonb

        self.conn.execute(
            "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES (%s, %s, %s, %s)"
            " ON CONFLICT (system, flag, scope) DO NOTHING",
            (self.manifest.system, name, scope, Jsonb(flag.default_value().to_json())),
        )

    def _get_bound(self, name: str, flag: RolloutFlag, lock: bool) -> Rollout:
        from psycopg import sql

        assert flag.table is not None and flag.key is not None and flag.columns is not None
        query = sql.SQL("SELECT {}, {} FROM {} WHERE {}{}").format(
            sql.Identifier(flag.columns.enabled),
            sql.Identifier(flag.columns.percent),
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
                "the application owns that row; insert it (in its dark state) first",
            )
        if len(rows) > 1:
            raise UsageError(
                f"flag {name}: key matches {len(rows)} rows in {flag.table}",
                "the key columns must identify exactly one row",
            )
        enabled, percent = rows[0]
        return Rollout(enabled=bool(enabled), percent=int(percent))

    # -- writing (caller holds the lock, inside a transaction with an audit context)

    def write(self, name: str, value: Rollout, scope: str = GLOBAL) -> None:
        from psycopg import sql
        from psycopg.types.json import Jsonb

        flag = self.manifest.flag(name)
        if flag.table is None:
            self.conn.execute(
                "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (system, flag, scope)"
                " DO UPDATE SET value = excluded.value, updated_at = now()",
                (self.manifest.system, name, scope, Jsonb(value.to_json())),
            )
            return
        assert flag.key is not None and flag.columns is not None
        self.conn.execute(
            sql.SQL("UPDATE {} SET {} = %s, {} = %s WHERE {}").format(
                _table(flag.table),
                sql.Identifier(flag.columns.enabled),
                sql.Identifier(flag.columns.percent),
                _where(flag.key),
            ),
            [value.enabled, value.percent, *flag.key.values()],
        )


def _table(name: str) -> sql.Identifier:
    from psycopg import sql

    schema, table = split_table(name)
    return sql.Identifier(schema, table) if schema else sql.Identifier(table)


def _where(key: dict[str, Any]) -> sql.Composable:
    from psycopg import sql

    return sql.SQL(" AND ").join(sql.SQL("{} = %s").format(sql.Identifier(column)) for column in key)
