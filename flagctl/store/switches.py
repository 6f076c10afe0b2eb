"""The engaged kill switches (``flagctl.engaged_switch``): read, record, remove."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.model.flagtypes import KillSetting, kill_setting
from flagctl.model.manifest import Manifest
from flagctl.rules.kills import Below, Engaged
from flagctl.store.db import lock_rows

if TYPE_CHECKING:
    import psycopg

SELECT_ENGAGED = (
    "SELECT switch, scope, level, seq, engaged_at, actor, db_user, reason, prior, applied, settings, below"
    " FROM flagctl.engaged_switch WHERE system = %s ORDER BY seq"
)

INSERT_ENGAGED = """
INSERT INTO flagctl.engaged_switch (system, switch, scope, level, actor, reason, prior, applied, settings, below)
VALUES (%s, %s, %s, %s, current_setting('flagctl.actor', true), current_setting('flagctl.reason', true),
        %s, %s, %s, %s)
"""

UPDATE_BELOW = "UPDATE flagctl.engaged_switch SET below = %s WHERE system = %s AND switch = %s AND scope = %s"

UPDATE_BASE = (
    "UPDATE flagctl.engaged_switch SET prior = %s, applied = %s"
    " WHERE system = %s AND switch = %s AND scope = 'global'"
)

DELETE_ENGAGED = "DELETE FROM flagctl.engaged_switch WHERE system = %s AND switch = %s AND scope = %s"


def list_engaged(conn: psycopg.Connection[Any], manifest: Manifest, lock: bool = False) -> list[Engaged]:
    """Every engaged switch of the system; ``lock``: and lock those rows."""
    from psycopg import sql

    if lock:
        query = sql.SQL(SELECT_ENGAGED + " FOR UPDATE")
        rows = lock_rows(
            conn, query, (manifest.system,), "flagctl.engaged_switch", "the engaged kill switches",
            ("SELECT xmax FROM flagctl.engaged_switch WHERE system = %s", (manifest.system,)),
        )  # fmt: skip
    else:
        rows = conn.execute(SELECT_ENGAGED, (manifest.system,)).fetchall()
    return [_engaged(manifest, r) for r in rows]


def _engaged(manifest: Manifest, row: tuple[Any, ...]) -> Engaged:
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


def record_engaged(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    engaged: tuple[str, str, int],
    prior: dict[str, Any],
    applied: dict[str, Any],
    settings: dict[str, KillSetting],
    below: dict[str, dict[str, Below]],
) -> None:
    """Record a switch as engaged (switch, scope, level) with its base and applied values,
    and for a global one the scoped overrides it covers."""
    from psycopg.types.json import Jsonb

    def as_json(values: dict[str, Any]) -> Jsonb:
        return Jsonb({f: _to_db(manifest, f, v) for f, v in values.items()})

    switch, scope, level = engaged
    conn.execute(
        INSERT_ENGAGED,
        (manifest.system, switch, scope, level, as_json(prior), as_json(applied),
         Jsonb({f: s.to_json() for f, s in settings.items()}), _below_json(manifest, below)),
    )  # fmt: skip


def cover_below(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    switch: str,
    scope: str,
    below: dict[str, dict[str, Below]],
) -> None:
    """Record the scoped overrides an engaged global kill covers (all of them, again)."""
    conn.execute(UPDATE_BELOW, (_below_json(manifest, below), manifest.system, switch, scope))


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

    conn.execute(UPDATE_BASE, (as_json(prior), as_json(applied), manifest.system, switch))


def _to_db(manifest: Manifest, flag: str, value: Any) -> Any:
    return None if value is None else manifest.flags[flag].to_db(value)


def _below_json(manifest: Manifest, below: dict[str, dict[str, Below]]) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb({
        f: {s: {"prior": _to_db(manifest, f, b.prior), "applied": _to_db(manifest, f, b.applied)} for s, b in by_scope.items()}
        for f, by_scope in below.items()
    })  # fmt: skip


def remove_engaged(conn: psycopg.Connection[Any], manifest: Manifest, switch: str, scope: str) -> None:
    conn.execute(DELETE_ENGAGED, (manifest.system, switch, scope))


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
