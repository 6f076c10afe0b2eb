"""The engaged kill switches (``flagctl.engaged_switch``): read them; engage and release a
switch through the database's own functions, which record and remove the engagement."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.errors import Blocker
from flagctl.model.change import Change
from flagctl.model.flagtypes import kill_setting
from flagctl.model.manifest import Manifest
from flagctl.rules.kills import Below, Engaged
from flagctl.store.db import TABLE_WRITERS, _blockers, lock_conflict, lock_rows, row_lockers

if TYPE_CHECKING:
    import psycopg

SELECT_ENGAGED = (
    "SELECT switch, scope, level, seq, engaged_at, actor, db_user, reason, prior, applied, settings, below"
    " FROM flagctl.engaged_switch WHERE system = %s ORDER BY seq"
)

ENGAGED_LOCKERS = "SELECT xmax FROM flagctl.engaged_switch WHERE system = %s"
HOLD_ENGAGED = "SELECT flagctl.hold_engaged(%s)"

# The base beneath a global kill, moved by a backward stage move (routines/96_records.sql).
UPDATE_BASE = "SELECT flagctl.move_base(%s, %s, %s, %s)"


def list_engaged(conn: psycopg.Connection[Any], manifest: Manifest, lock: bool = False) -> list[Engaged]:
    """Every engaged switch of the system; ``lock``: and lock those rows."""
    from psycopg import sql

    if lock:  # the database locks them for the declared change (no role holds UPDATE to)
        lock_rows(
            conn, sql.SQL(HOLD_ENGAGED), (manifest.system,), "flagctl.engaged_switch", "the engaged kill switches",
            (ENGAGED_LOCKERS, (manifest.system,)),
        )  # fmt: skip
    return [engaged_from_row(manifest, r) for r in engaged_rows(conn, manifest.system)]


def engaged_rows(conn: psycopg.Connection[Any], system: str) -> list[tuple[Any, ...]]:
    """The engaged switches of the system as stored (what ``engaged_from_row`` reads): a
    relay ships them to the gates behind it as they are."""
    return conn.execute(SELECT_ENGAGED, (system,)).fetchall()


def engaged_from_row(manifest: Manifest, row: tuple[Any, ...]) -> Engaged:
    """One engaged switch from its stored row (``SELECT_ENGAGED``'s columns)."""
    switch, scope, level, seq, at, actor, db_user, reason, prior, applied, settings, below = row
    flags = {f: manifest.flags[f] for f in {*prior, *applied, *below} if f in manifest.flags}

    def load(flag: str, data: Any) -> Any:
        return None if data is None else flags[flag].from_db(data)

    covered = {
        f: {s: Below(load(f, v["prior"]), load(f, v["applied"])) for s, v in by_scope.items()}
        for f, by_scope in below.items()
        if f in flags
    }

    return Engaged(
        switch, scope, level, seq, at, actor, db_user, reason,
        {f: load(f, v) for f, v in prior.items() if f in flags},
        {f: load(f, v) for f, v in applied.items() if f in flags},
        {f: kill_setting(flags[f], v) for f, v in settings.items() if f in flags},
        covered,
    )  # fmt: skip


def move_base(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    switch: str,
    prior: dict[str, Any],
    applied: dict[str, Any],
) -> None:
    """Record a new base beneath a switch engaged globally (a backward stage move under it),
    and what the switch leaves over it; the database allows only a narrower one."""
    from psycopg.types.json import Jsonb

    def as_json(values: dict[str, Any]) -> Jsonb:
        return Jsonb({f: _to_db(manifest, f, v) for f, v in values.items()})

    conn.execute(UPDATE_BASE, (manifest.system, switch, as_json(prior), as_json(applied)))


def _to_db(manifest: Manifest, flag: str, value: Any) -> Any:
    return None if value is None else manifest.flags[flag].to_db(value)


# The kill's locks, taken by the database for flagctl's plan (routines/90_kill.sql): the
# security role holds no UPDATE to lock rows with SELECT … FOR UPDATE itself.
HOLD = "SELECT flagctl.kill_hold(%s, %s, %s)"


def hold(
    conn: psycopg.Connection[Any], manifest: Manifest, switch: str, scope: str, flags: list[str]
) -> None:
    """Take the locks a kill or a release of ``switch`` at ``scope`` takes, waiting at most
    lock_timeout; on timeout raise ConflictError naming who holds one."""
    from psycopg import errors as e

    try:
        with conn.transaction():
            conn.execute(HOLD, (manifest.system, switch, scope))
    except e.LockNotAvailable:
        raise lock_conflict(f"kill switch {switch}'s flags", _holders(conn, manifest, flags)) from None


def _holders(conn: psycopg.Connection[Any], manifest: Manifest, flags: list[str]) -> list[Blocker]:
    """Who holds a lock the kill of these flags waits for: the flags' rows and flagctl's
    keys for them, and the engaged switches' rows; failing those, whoever holds a write lock
    on one of the tables."""
    from flagctl.store.flags import FlagStore

    store = FlagStore(conn, manifest)
    found = store.holders(flags) + row_lockers(conn, ENGAGED_LOCKERS, (manifest.system,))
    if not found:
        engaged = _blockers(conn.execute(TABLE_WRITERS, ("flagctl.engaged_switch",)).fetchall())
        found = store.blockers(flags) + engaged
    once: dict[int, Blocker] = {}
    for blocker in found:
        once.setdefault(blocker.pid, blocker)
    return list(once.values())


# The database's own kill and release (routines/90_kill.sql): they write the switch's own
# published settings and record the engagement, in the transaction already declared as the
# kill (or the release), and refuse with FL001 a write the table did not take.
ENGAGE = "SELECT flag, scope, before, after FROM flagctl.kill(%s, %s, NULL, %s)"
DISENGAGE = "SELECT flag, scope, before, after FROM flagctl.release(%s, %s, NULL, %s, %s)"


def engage(conn: psycopg.Connection[Any], manifest: Manifest, switch: str, scope: str) -> list[Change]:
    """Engage a kill switch with ``flagctl.kill``: what it changed, flag by flag."""
    return _switched(conn, manifest, ENGAGE, (manifest.system, switch, scope))


def disengage(
    conn: psycopg.Connection[Any], manifest: Manifest, switch: str, scope: str, force: bool
) -> list[Change]:
    """Release a kill switch with ``flagctl.release``: what it changed, flag by flag."""
    return _switched(conn, manifest, DISENGAGE, (manifest.system, switch, scope, force))


def _switched(
    conn: psycopg.Connection[Any], manifest: Manifest, statement: str, args: tuple[Any, ...]
) -> list[Change]:
    import psycopg

    from flagctl.store.flags import not_taken

    def value(flag: str, data: Any) -> Any:
        return None if data is None else manifest.flags[flag].from_db(data)

    try:
        rows = conn.execute(statement, args).fetchall()
    except psycopg.Error as error:
        raise not_taken(error, manifest.system) from None
    return [
        Change(flag, scope, value(flag, before), value(flag, after)) for flag, scope, before, after in rows
    ]


def engaged_json(manifest: Manifest, record: Engaged) -> dict[str, Any]:
    """An engagement as ``kill --list`` and ``status`` print it (values as stored)."""

    def value(flag: str, v: Any) -> Any:
        return _to_db(manifest, flag, v)

    return {
        "switch": record.switch,
        "scope": record.scope,
        "level": record.level,
        "engaged_at": record.engaged_at.isoformat(),
        "actor": record.actor,
        "db_user": record.db_user,
        "reason": record.reason,
        "prior": {f: value(f, v) for f, v in record.prior.items()},
        "applied": {f: value(f, v) for f, v in record.applied.items()},
        "overrides": {
            f: {s: {"prior": value(f, b.prior), "applied": value(f, b.applied)} for s, b in by_scope.items()}
            for f, by_scope in record.below.items()
        },
    }
