"""Kill switches: leveled, scoped, engaged in one transaction, exactly reversible.

Engaging bypasses bakes, freezes and guardrails. Any number of switches may be engaged,
globally or per scope. For each flag a switch holds, the engagement records the flag's
*base* value (before any kill held it at that scope; ``None`` at a scope means "no
override") and the switch's own settings. A flag's value is then always

    base, overlaid with the settings of every switch engaged on it (lowest level first)

where rollout settings combine strictly (enabled AND-ed, percent the minimum) and other
types take the highest level's value. So releasing one switch never undoes another still
engaged, and releasing the last restores the base exactly. A release finds the flag
changed since (someone edited it in between) and stops with a conflict unless forced.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Change, Plan
from flagctl.errors import ConflictError
from flagctl.model.flagtypes import KillSetting, describe, kill_setting
from flagctl.model.manifest import Manifest
from flagctl.store.db import lock_rows
from flagctl.store.flags import GLOBAL, FlagStore, check_scope

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Engaged:
    switch: str
    scope: str
    level: int
    seq: int
    engaged_at: datetime
    actor: str | None
    db_user: str
    reason: str
    prior: dict[str, Any]  # flag → base value (None: no override at this scope)
    applied: dict[str, Any]  # flag → value right after engaging
    settings: dict[str, KillSetting]  # flag → what this switch sets

    def to_json(self, manifest: Manifest) -> dict[str, Any]:
        def value(flag: str, v: Any) -> Any:
            return None if v is None else manifest.flags[flag].to_db(v)

        return {
            "switch": self.switch,
            "scope": self.scope,
            "level": self.level,
            "engaged_at": self.engaged_at.isoformat(),
            "actor": self.actor,
            "db_user": self.db_user,
            "reason": self.reason,
            "prior": {f: value(f, v) for f, v in self.prior.items()},
            "applied": {f: value(f, v) for f, v in self.applied.items()},
        }


_SELECT = (
    "SELECT switch, scope, level, seq, engaged_at, actor, db_user, reason, prior, applied, settings"
    " FROM flagctl.engaged_switch WHERE system = %s ORDER BY seq"
)


def list_engaged(conn: psycopg.Connection[Any], manifest: Manifest, lock: bool = False) -> list[Engaged]:
    from psycopg import sql

    if lock:
        query = sql.SQL(_SELECT + " FOR UPDATE")
        rows = lock_rows(
            conn, query, (manifest.system,), "flagctl.engaged_switch", "the engaged kill switches"
        )
    else:
        rows = conn.execute(_SELECT, (manifest.system,)).fetchall()
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


def engaged_on(engaged: list[Engaged], flag: str) -> list[Engaged]:
    """Every engagement that sets this flag, at any scope, lowest level first (for listing)."""
    return sorted((e for e in engaged if flag in e.settings), key=lambda e: (e.level, e.seq))


def engaged_at(engaged: list[Engaged], flag: str, scope: str) -> list[Engaged]:
    """The engagements recorded at exactly this scope that set this flag, lowest level first:
    the ones whose settings are overlaid on the value stored at that scope."""
    return [e for e in engaged_on(engaged, flag) if e.scope == scope]


def holding(engaged: list[Engaged], flag: str, *scopes: str) -> list[Engaged]:
    """The one policy rule "a kill holds this flag" for a subject in these scopes (or a
    change at this scope): a switch engaged globally holds it everywhere, one engaged at a
    scope holds it there. Lowest level first."""
    return [e for e in engaged_on(engaged, flag) if e.scope in (GLOBAL, *scopes)]


def overlay(start: Any, holders: list[Engaged], flag: str) -> Any:
    value = start
    for record in sorted(holders, key=lambda e: (e.level, e.seq)):
        value = record.settings[flag].overlay(value)
    return value


def plan_kill(conn: psycopg.Connection[Any], manifest: Manifest, name: str, scope: str, locked: bool) -> Plan:
    switch = manifest.switch(name)
    settings = manifest.switches[name]
    for flag in settings:
        check_scope(manifest, flag, scope)
    flags = sorted(settings)
    snapshot = FlagStore(conn, manifest).for_change(flags, locked=locked)
    values = {f: snapshot.at(f, scope) for f in flags}
    engaged = list_engaged(conn, manifest, lock=locked)
    summary = f"engage kill switch {name} (level {switch.level}, scope {scope})"
    for record in engaged:
        if record.switch == name and record.scope == scope:
            return Plan(
                "kill",
                summary,
                noop=f"kill switch {name} is already engaged (scope {scope}) since "
                f"{record.engaged_at:%Y-%m-%d %H:%M:%S %Z} by {record.actor or record.db_user}",
            )
    me = Engaged(name, scope, switch.level, 1 << 62, datetime.max, None, "", "", {}, {}, settings)
    prior: dict[str, Any] = {}
    applied: dict[str, Any] = {}
    changes = []
    for flag in flags:
        holders = engaged_at(engaged, flag, scope)
        prior[flag] = holders[0].prior[flag] if holders else values[flag]
        start = prior[flag] if prior[flag] is not None else snapshot.globals[flag]
        applied[flag] = overlay(start, [*holders, me], flag)
        if applied[flag] != values[flag]:
            changes.append(Change(flag, scope, values[flag], applied[flag]))
    checks = ["kill switches bypass bakes, freezes and guardrails"]
    if not changes:
        checks.append("every flag already has the kill values; the switch is recorded as engaged")
    return Plan(
        "kill",
        summary,
        changes=changes,
        checks=checks,
        data={"switch": name, "scope": scope, "level": switch.level, "prior": prior, "applied": applied},
        snapshot=snapshot,
    )


def apply_kill(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    from psycopg.types.json import Jsonb

    FlagStore(conn, manifest).write(plan.changes)
    data = plan.data
    settings = manifest.switches[data["switch"]]

    def as_json(values: dict[str, Any]) -> Jsonb:
        return Jsonb({f: None if v is None else manifest.flags[f].to_db(v) for f, v in values.items()})

    conn.execute(
        "INSERT INTO flagctl.engaged_switch"
        " (system, switch, scope, level, actor, reason, prior, applied, settings)"
        " VALUES (%s, %s, %s, %s, current_setting('flagctl.actor', true),"
        " current_setting('flagctl.reason', true), %s, %s, %s)",
        (
            manifest.system, data["switch"], data["scope"], data["level"],
            as_json(data["prior"]), as_json(data["applied"]),
            Jsonb({f: s.to_json() for f, s in settings.items()}),
        ),
    )  # fmt: skip


def plan_release(
    conn: psycopg.Connection[Any], manifest: Manifest, name: str, scope: str, locked: bool, force: bool
) -> Plan:
    manifest.switch(name)  # unknown switch: usage error
    summary = f"release kill switch {name} (scope {scope})"
    engaged = list_engaged(conn, manifest, lock=locked)
    record = next((e for e in engaged if e.switch == name and e.scope == scope), None)
    if record is None:
        return Plan("release", summary, noop=f"kill switch {name} is not engaged (scope {scope})")
    flags = sorted(record.settings)
    snapshot = FlagStore(conn, manifest).for_change(flags, locked=locked)
    values = {f: snapshot.at(f, scope) for f in flags}
    changes: list[Change] = []
    conflicts: list[str] = []
    checks: list[str] = []
    for flag in flags:
        holders = engaged_at(engaged, flag, scope)
        others = [e for e in holders if e is not record]
        base = record.prior[flag]
        start = base if base is not None else snapshot.globals[flag]
        expected = overlay(start, holders, flag)
        if values[flag] != expected:
            conflicts.append(
                f"{flag}: the kills set {describe(expected)}, it is now {describe(values[flag])}"
            )
        target = overlay(start, others, flag) if others else base
        if others:
            checks.append(f"{flag} stays held by {', '.join(e.switch for e in others)}")
        if target != values[flag]:
            changes.append(Change(flag, scope, values[flag], target))
    if conflicts and not force:
        raise ConflictError(
            f"{_flags(len(conflicts))} changed since {name} was engaged: " + "; ".join(conflicts),
            "someone changed it in between; check `flagctl audit log`, then release with --force "
            "to restore the values from before the kill anyway",
        )
    if conflicts:
        checks.append("forced: restoring the values from before the kill over later changes")
    return Plan(
        "release", summary, changes=changes, checks=checks, forced=bool(conflicts),
        data={"switch": name, "scope": scope}, snapshot=snapshot,
    )  # fmt: skip


def _flags(count: int) -> str:
    return "a flag" if count == 1 else f"{count} flags"


def apply_release(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    FlagStore(conn, manifest).write(plan.changes)
    conn.execute(
        "DELETE FROM flagctl.engaged_switch WHERE system = %s AND switch = %s AND scope = %s",
        (manifest.system, plan.data["switch"], plan.data["scope"]),
    )
