"""The engaged kill switches (``flagctl.engaged_switch``): read, record, remove."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.model.flagtypes import KillSetting, kill_setting
from flagctl.model.manifest import Manifest
from flagctl.rules.kills import Engaged
from flagctl.store.db import lock_rows

if TYPE_CHECKING:
    import psycopg

SELECT_ENGAGED = (
    "SELECT switch, scope, level, seq, engaged_at, actor, db_user, reason, prior, applied, settings"
    " FROM flagctl.engaged_switch WHERE system = %s ORDER BY seq"
)

INSERT_ENGAGED = """
INSERT INTO flagctl.engaged_switch (system, switch, scope, level, actor, reason, prior, applied, settings)
VALUES (%s, %s, %s, %s, current_setting('flagctl.actor', true), current_setting('flagctl.reason', true),
        %s, %s, %s)
"""

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
    switch, scope, level, seq, at, actor, db_user, reason, prior, applied, settings = row
    flags = {f: manifest.flags[f] for f in {*prior, *applied} if f in manifest.flags}

    def load(flag: str, data: Any) -> Any:
        return None if data is None else flags[flag].from_db(data)

    return Engaged(
        switch, scope, level, seq, at, actor, db_user, reason,
        {f: load(f, v) for f, v in prior.items() if f in flags},
        {f: load(f, v) for f, v in applied.items() if f in flags},
        {f: kill_setting(flags[f], v) for f, v in settings.items() if f in flags},
    )  # fmt: skip


def record_engaged(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    engaged: tuple[str, str, int],
    prior: dict[str, Any],
    applied: dict[str, Any],
    settings: dict[str, KillSetting],
) -> None:
    """Record a switch as engaged (switch, scope, level) with its base and applied values."""
    from psycopg.types.json import Jsonb

    def as_json(values: dict[str, Any]) -> Jsonb:
        return Jsonb({f: None if v is None else manifest.flags[f].to_db(v) for f, v in values.items()})

    switch, scope, level = engaged
    conn.execute(
        INSERT_ENGAGED,
        (manifest.system, switch, scope, level, as_json(prior), as_json(applied),
         Jsonb({f: s.to_json() for f, s in settings.items()})),
    )  # fmt: skip


def remove_engaged(conn: psycopg.Connection[Any], manifest: Manifest, switch: str, scope: str) -> None:
    conn.execute(DELETE_ENGAGED, (manifest.system, switch, scope))


def engaged_json(manifest: Manifest, record: Engaged) -> dict[str, Any]:
    """An engagement as ``kill --list`` and ``status`` print it (values as stored)."""

    def value(flag: str, v: Any) -> Any:
        return None if v is None else manifest.flags[flag].to_db(v)

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
    }
