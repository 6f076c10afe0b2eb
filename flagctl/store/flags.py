"""Reading, locking and writing flag values where they live — many flags per statement.

A flag lives in one of two places, each behind the same small interface (``Storage``):
- ``OwnTable``: ``flagctl.flag_state``, one jsonb value per system/flag/scope; a scoped
  row overrides the global one for that scope, and a flag with no global row has its
  manifest default;
- ``BoundTable``: an application table the flag is bound to (key columns select the
  row, value columns hold the value). It stays the single source of truth: nothing is
  copied, and flagctl never creates or deletes its rows.

``FlagStore`` groups the flags a command touches by storage and sends one statement per
group, so the statements a command sends do not grow with the number of flags: one to lock
them all, one per storage to read, one per storage to write. No module outside this one
asks which kind a flag is.

flagctl's roles hold no write on these tables: the locks and the writes are the database's
own functions (routines/95_writes.sql), which run as flagctl's owner inside the change the
transaction declared, the guard trigger judging every row as before.

Locking: every writer of a flag, whatever the scope, locks the flag first, always in
the same order (flagctl's own flags by name, then each bound table's rows by key), so
lockers never deadlock. An own-table flag is locked by a transaction-level advisory lock
on ``system/flag``, which needs no row to exist: locking never creates one.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol

from flagctl.errors import Blocker, UsageError, WriteNotTaken
from flagctl.model.flagtypes import AnyFlag, describe
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL
from flagctl.store.db import (
    ADVISORY_HOLDERS,
    TABLE_WRITERS,
    _blockers,
    lock_conflict,
    row_lockers,
    split_table,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

    from flagctl.model.change import Change


READ_OWN = """
SELECT flag, scope, value FROM flagctl.flag_state
 WHERE system = %s AND flag = ANY(%s) ORDER BY flag, scope
"""
# Who holds those rows (a row locked or changed by an open transaction carries its id).
OWN_LOCKERS = "SELECT xmax FROM flagctl.flag_state WHERE system = %s AND flag = ANY(%s)"

# The locks every change of these flags takes, in flagctl's one order.
HOLD_FLAGS = "SELECT flagctl.hold_flags(%s, %s)"

# Upserts and removals of overrides, for many flags and scopes, in one statement — which
# returns what each row holds once the table's own triggers and rules have had their say
# (and which overrides to remove existed), so a write that did not take is seen in the same
# transaction.
WRITE_OWN = "SELECT flag, scope, what, value FROM flagctl.write_own(%s, %s, %s, %s, %s, %s::jsonb[])"
# The bound flags of one table: each row's key and assigned columns after the UPDATE.
WRITE_BOUND = "SELECT flag, held FROM flagctl.write_bound(%s, %s)"
NOT_TAKEN = "FL001"


@dataclass
class Snapshot:
    """The stored values of some flags: each one's global value (its default when it was
    never set) and its scoped overrides."""

    globals: dict[str, Any] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)  # flag → scope → value
    stored: set[str] = field(default_factory=set)  # flags with a stored global value (not the default)

    def at(self, flag: str, scope: str) -> Any | None:
        """The value stored at a scope (None at a scope: no override there)."""
        if scope == GLOBAL:
            return self.globals[flag]
        return self.overrides.get(flag, {}).get(scope)

    def scopes(self) -> list[str]:
        """Every scope that has an override, in order."""
        return sorted({scope for by_scope in self.overrides.values() for scope in by_scope})


class Storage(Protocol):
    """Where a group of flags lives. Each method is one statement for the whole group."""

    def read(self, conn: psycopg.Connection[Any], names: list[str], into: Snapshot) -> None:
        """Read the global values and overrides of these flags into a snapshot."""

    def write(self, conn: psycopg.Connection[Any], changes: list[Change]) -> None:
        """Store these changes (``after=None`` at a scope removes the override)."""

    def reading(self, names: list[str]) -> tuple[sql.Composed | sql.SQL, list[Any]]:
        """The statement (and its parameters) that ``read`` sends for these flags, unlocked:
        the rows their values are built from, for a digest of them (the gate's check)."""

    def holders(self, conn: psycopg.Connection[Any], names: list[str]) -> list[Blocker]:
        """The sessions holding a lock on these flags (their rows, or flagctl's keys for them)."""


@dataclass(frozen=True)
class OwnTable:
    """``flagctl.flag_state``: jsonb values, scoped rows allowed."""

    manifest: Manifest

    def holders(self, conn: psycopg.Connection[Any], names: list[str]) -> list[Blocker]:
        system = self.manifest.system
        keys = [f"{system}/*", *(f"{system}/{name}" for name in names)]
        advisory = _blockers(conn.execute(ADVISORY_HOLDERS, (keys,)).fetchall())
        return advisory + row_lockers(conn, OWN_LOCKERS, (system, names))

    def read(self, conn: psycopg.Connection[Any], names: list[str], into: Snapshot) -> None:
        flags = self.manifest.flags
        for name in names:
            into.globals[name] = flags[name].default_value()
        rows = conn.execute(READ_OWN, (self.manifest.system, names)).fetchall()
        for name, scope, data in rows:
            value = flags[name].from_db(data)
            if scope == GLOBAL:
                into.globals[name] = value
                into.stored.add(name)
            else:
                into.overrides.setdefault(name, {})[scope] = value

    def write(self, conn: psycopg.Connection[Any], changes: list[Change]) -> None:
        from psycopg.types.json import Jsonb

        removed = [c for c in changes if c.after is None]
        stored = [c for c in changes if c.after is not None]
        flags = self.manifest.flags
        system = self.manifest.system
        rows = conn.execute(
            WRITE_OWN,
            (
                system,
                [c.flag for c in removed],
                [c.scope for c in removed],
                [c.flag for c in stored],
                [c.scope for c in stored],
                [Jsonb(flags[c.flag].to_db(c.after)) for c in stored],
            ),
        ).fetchall()
        held = {
            (flag, scope): flags[flag].from_db(data) for flag, scope, what, data in rows if what == "written"
        }
        missed = [f"{c.flag} at {c.scope}: {describe(held.get((c.flag, c.scope)))} instead of "
                  f"{describe(c.after)}" for c in stored if held.get((c.flag, c.scope), _NONE) != c.after]  # fmt: skip
        existed = {(flag, scope) for flag, scope, what, _ in rows if what == "existed"}
        gone = {(flag, scope) for flag, scope, what, _ in rows if what == "removed"}
        missed += [
            f"{flag} at {scope}: still stored, it was to be removed" for flag, scope in sorted(existed - gone)
        ]
        if missed:
            raise WriteNotTaken("flagctl.flag_state", missed, system=self.manifest.system)

    def reading(self, names: list[str]) -> tuple[sql.Composed | sql.SQL, list[Any]]:
        from psycopg import sql

        return sql.SQL(READ_OWN), [self.manifest.system, names]


@dataclass(frozen=True)
class BoundTable:
    """An application table: every flag bound to it shares its key columns (the manifest
    checks that); each flag names its own value columns."""

    manifest: Manifest
    table: str

    def read(self, conn: psycopg.Connection[Any], names: list[str], into: Snapshot) -> None:
        into.globals.update(self._select(conn, names))
        into.stored.update(names)

    def reading(self, names: list[str]) -> tuple[sql.Composed | sql.SQL, list[Any]]:
        return self._query(names)

    def holders(self, conn: psycopg.Connection[Any], names: list[str]) -> list[Blocker]:
        return row_lockers(conn, *self._lockers(names))

    def _lockers(self, names: list[str]) -> tuple[sql.Composed, list[Any]]:
        """The query of these flags' rows' ``xmax`` (who holds them), and its parameters."""
        from psycopg import sql

        key_columns, _ = self._column_names(names)
        keys = [tuple(_key(self.manifest.flag(name))[c] for c in key_columns) for name in names]
        query = sql.SQL("SELECT xmax FROM {} WHERE ({}) IN ({})").format(
            _table(self.table),
            sql.SQL(", ").join(map(sql.Identifier, key_columns)),
            sql.SQL(", ").join(
                sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(key_columns))) for _ in keys
            ),
        )
        return query, [value for key in keys for value in key]

    def _column_names(self, names: list[str]) -> tuple[list[str], list[str]]:
        """The key columns the flags share, and every value column they read."""
        specs = [self.manifest.flag(name) for name in names]
        return list(_key(specs[0])), sorted({c for spec in specs for c in _columns(spec).values()})

    def _query(self, names: list[str]) -> tuple[sql.Composed, list[Any]]:
        from psycopg import sql

        key_columns, value_columns = self._column_names(names)
        keys = [tuple(_key(self.manifest.flag(name))[c] for c in key_columns) for name in names]
        query = sql.SQL("SELECT {} FROM {} WHERE ({}) IN ({}) ORDER BY {}").format(
            sql.SQL(", ").join(map(sql.Identifier, [*key_columns, *value_columns])),
            _table(self.table),
            sql.SQL(", ").join(map(sql.Identifier, key_columns)),
            sql.SQL(", ").join(
                sql.SQL("({})").format(sql.SQL(", ").join(sql.Placeholder() * len(key_columns))) for _ in keys
            ),
            sql.SQL(", ").join(map(sql.Identifier, key_columns)),
        )
        return query, [value for key in keys for value in key]

    def _select(self, conn: psycopg.Connection[Any], names: list[str]) -> dict[str, Any]:
        specs = {name: self.manifest.flag(name) for name in names}
        key_columns, value_columns = self._column_names(names)
        query, params = self._query(names)
        rows = conn.execute(query, params).fetchall()
        found: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        width = len(key_columns)
        for row in rows:
            found[tuple(row[:width])].append(dict(zip(value_columns, row[width:], strict=True)))
        return {name: self._value(name, spec, found) for name, spec in specs.items()}

    def _value(self, name: str, spec: AnyFlag, found: dict[tuple[Any, ...], list[dict[str, Any]]]) -> Any:
        key = _key(spec)
        matches = found.get(tuple(key.values()), [])
        if not matches:
            where = ", ".join(f"{k}={v}" for k, v in key.items())
            raise UsageError(
                f"flag {name}: no row {where} in bound table {self.table}",
                "the application owns that row; insert it (in its safe state) first",
            )
        if len(matches) > 1:
            raise UsageError(
                f"flag {name}: key matches {len(matches)} rows in {self.table}",
                "the key columns must identify exactly one row",
            )
        logical = {logical: matches[0][column] for logical, column in _columns(spec).items()}
        try:
            return spec.from_columns(logical)
        except ValueError as exc:
            raise UsageError(f"flag {name}: the value in {self.table} does not fit its type: {exc}") from None

    def write(self, conn: psycopg.Connection[Any], changes: list[Change]) -> None:
        """One call of ``flagctl.write_bound`` for the table: each flag's row found by its
        key, its value columns assigned (typed by the table itself), each row read back."""
        import psycopg
        from psycopg.types.json import Jsonb

        wanted: dict[str, dict[str, Any]] = {}
        for change in changes:
            assert change.scope == GLOBAL, "a bound flag has only the global scope"
            wanted[change.flag] = self.manifest.flag(change.flag).to_columns(change.after)
        rows = [{"flag": flag, "set": assigned} for flag, assigned in wanted.items()]
        try:
            returned = conn.execute(WRITE_BOUND, (self.manifest.system, Jsonb(rows))).fetchall()
        except psycopg.Error as error:
            raise not_taken(error, self.manifest.system) from None
        held = dict(returned)
        missed: list[str] = []
        for flag, assigned in wanted.items():
            got = held.get(flag)
            if got is None or not all(_same(got.get(column), value) for column, value in assigned.items()):
                where = ", ".join(f"{k}={v}" for k, v in _key(self.manifest.flag(flag)).items())
                kept = (
                    "no row was updated"
                    if got is None
                    else _columns_text(assigned, [got.get(c) for c in assigned])
                )
                missed.append(f"row {where}: {kept} instead of {_columns_text(assigned, assigned.values())}")
        if missed:
            raise WriteNotTaken(self.table, missed, system=self.manifest.system)


def not_taken(error: Exception, system: str) -> Exception:
    """A database write that did not take (SQLSTATE FL001: a trigger or rule of the table's
    own kept, changed or skipped it) as flagctl reports it; any other error as it is."""
    import psycopg

    if not isinstance(error, psycopg.Error) or error.sqlstate != NOT_TAKEN:
        return error
    diag = error.diag
    table = ".".join(n for n in (diag.schema_name, diag.table_name) if n)
    return WriteNotTaken(table or "a bound table", [diag.message_detail or ""], system=system)


_NONE = object()


def _same(stored: Any, wanted: Any) -> bool:
    """The value a row holds is the one written (a numeric column returns Decimal)."""
    if stored == wanted:
        return True
    numbers = (int, float, Decimal)
    both = isinstance(stored, numbers) and isinstance(wanted, numbers)
    return both and not isinstance(stored, bool) and float(stored) == float(wanted)


def _columns_text(columns: Iterable[str], values: Iterable[Any]) -> str:
    return ", ".join(f"{column}={describe(value)}" for column, value in zip(columns, values, strict=True))


class FlagStore:
    """The stored values of a manifest's flags, read and written set-wise."""

    def __init__(self, conn: psycopg.Connection[Any], manifest: Manifest) -> None:
        self.conn = conn
        self.manifest = manifest

    def _groups(self, names: Iterable[str]) -> list[tuple[Storage, list[str]]]:
        """The flags by where they live, in lock order: own table first, then by table name."""
        own: list[str] = []
        bound: dict[str, list[str]] = defaultdict(list)
        for name in sorted(set(names)):
            table = self.manifest.flag(name).table
            (own if table is None else bound[table]).append(name)
        groups: list[tuple[Storage, list[str]]] = [(OwnTable(self.manifest), own)] if own else []
        groups += [(BoundTable(self.manifest, table), bound[table]) for table in sorted(bound)]
        return groups

    def snapshot(self, names: Iterable[str] | None = None, *, lock: Iterable[str] = ()) -> Snapshot:
        """Read these flags (default: all), after locking those in ``lock``."""
        wanted = set(self.manifest.flags if names is None else names)
        locked = set(lock)
        snapshot = Snapshot()
        if locked:
            self.lock(locked)
        for storage, group in self._groups(wanted | locked):
            storage.read(self.conn, group, snapshot)
        return snapshot

    def for_change(self, names: Iterable[str], *, locked: bool) -> Snapshot:
        """What a planner reads: these flags (locked, when planning for real) and every flag a
        cross-flag constraint reads, so the constraint check needs no second read."""
        from flagctl.rules.constraints import constrained_flags

        wanted = set(names)
        return self.snapshot(wanted | constrained_flags(self.manifest), lock=wanted if locked else ())

    def holders(self, names: Iterable[str]) -> list[Blocker]:
        """The sessions holding a lock on these flags, each once, in lock order."""
        found: dict[int, Blocker] = {}
        for storage, group in self._groups(names):
            for blocker in storage.holders(self.conn, group):
                found.setdefault(blocker.pid, blocker)
        return list(found.values())

    def lock(self, names: Iterable[str]) -> None:
        """Lock these flags (one statement: ``flagctl.hold_flags``, as the change this
        transaction declared), waiting at most lock_timeout; on timeout raise ConflictError
        naming who holds them."""
        from psycopg import errors as e

        flags = sorted(set(names))
        try:
            with self.conn.transaction():
                self.conn.execute(HOLD_FLAGS, (self.manifest.system, flags))
        except e.LockNotAvailable:
            raise lock_conflict(_flags_text(flags), self.blockers(flags)) from None

    def blockers(self, names: Iterable[str]) -> list[Blocker]:
        """Who holds a lock a change of these flags waits for: the holders of their rows and
        of flagctl's keys for them; failing those (finished since, or a table lock), whoever
        holds a write lock on one of their tables."""
        flags = sorted(set(names))
        found = self.holders(flags)
        if not found:
            tables = [storage.table for storage, _ in self._groups(flags) if isinstance(storage, BoundTable)]
            for table in [*tables, "flagctl.flag_state"]:
                found += _blockers(self.conn.execute(TABLE_WRITERS, (table,)).fetchall())
        once: dict[int, Blocker] = {}
        for blocker in found:
            once.setdefault(blocker.pid, blocker)
        return list(once.values())

    def reading(self) -> list[tuple[sql.Composed | sql.SQL, list[Any]]]:
        """The statements (with their parameters) that ``snapshot()`` sends to read every
        flag, unlocked: one per storage, in order."""
        return [storage.reading(group) for storage, group in self._groups(self.manifest.flags)]

    def values(self, names: Iterable[str] | None = None) -> dict[str, Any]:
        """The global values of these flags (default: all)."""
        return self.snapshot(names).globals

    def write(self, changes: Iterable[Change]) -> None:
        """Store changes; the caller holds the locks, inside a transaction with an audit context."""
        by_flag: dict[str, list[Change]] = defaultdict(list)
        for change in changes:
            by_flag[change.flag].append(change)
        for storage, group in self._groups(by_flag):
            storage.write(self.conn, [c for name in group for c in by_flag[name]])


def _key(spec: AnyFlag) -> dict[str, Any]:
    assert spec.key is not None
    return spec.key


def _columns(spec: AnyFlag) -> dict[str, str]:
    assert spec.columns is not None
    return spec.columns


def _flags_text(names: list[str]) -> str:
    return f"flag {names[0]}" if len(names) == 1 else f"flags {', '.join(names)}"


def _table(name: str) -> sql.Identifier:
    from psycopg import sql

    schema, table = split_table(name)
    return sql.Identifier(schema, table) if schema else sql.Identifier(table)
