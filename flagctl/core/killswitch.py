"""Kill switches: engage in one transaction, record the exact prior values, release.

Engaging bypasses bakes and guardrails. Several switches may be engaged at once; each
remembers, per flag, the value it replaced. Releasing a switch restores a flag only if
no switch engaged *after* it also holds that flag; otherwise it hands its remembered
value to that later switch, so releasing one switch never undoes another still engaged,
and releasing all of them, in any order, restores the values from before the first kill.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.core.db import lock_rows
from flagctl.core.errors import ConflictError
from flagctl.core.manifest import Manifest
from flagctl.core.plan import Change, Plan
from flagctl.core.store import FlagStore
from flagctl.core.values import Rollout

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
    prior: dict[str, Rollout]
    applied: dict[str, Rollout]

    def to_json(self) -> dict[str, Any]:
        return {
            "switch": self.switch,
            "scope": self.scope,
            "level": self.level,
            "engaged_at": self.engaged_at.isoformat(),
            "actor": self.actor,
            "db_user": self.db_user,
            "reason": self.reason,
            "prior": {flag: value.to_json() for flag, value in self.prior.items()},
            "applied": {flag: value.to_json() for flag, value in self.applied.items()},
        }


_SELECT = (
    "SELECT switch, scope, level, seq, engaged_at, actor, db_user, reason, prior, applied"
    " FROM flagctl.engaged_switch WHERE system = %s ORDER BY seq"
)


def _row(row: tuple[Any, ...]) -> Engaged:
    switch, scope, level, seq, at, actor, db_user, reason, prior, applied = row
    return Engaged(
        switch,
        scope,
        level,
        seq,
        at,
        actor,
        db_user,
        reason,
        {f: Rollout.from_json(v) for f, v in prior.items()},
        {f: Rollout.from_json(v) for f, v in applied.items()},
    )


def list_engaged(conn: psycopg.Connection[Any], system: str, lock: bool = False) -> list[Engaged]:
    from psycopg import sql

    if lock:
        query = sql.SQL(_SELECT + " FOR UPDATE")
        rows = lock_rows(conn, query, (system,), "flagctl.engaged_switch", "the engaged kill switches")
    else:
        rows = conn.execute(_SELECT, (system,)).fetchall()
    return [_row(r) for r in rows]


def holding(engaged: list[Engaged], flag: str) -> list[Engaged]:
    """The engaged switches that hold this flag, in engagement order."""
    return [e for e in engaged if flag in e.applied]


def plan_kill(conn: psycopg.Connection[Any], manifest: Manifest, name: str, scope: str, locked: bool) -> Plan:
    switch = manifest.switch(name)
    settings = manifest.switches[name]
    store = FlagStore(conn, manifest)
    values = store.lock(list(settings), scope) if locked else store.read_all(sorted(settings))
    engaged = list_engaged(conn, manifest.system, lock=locked)
    summary = f"engage kill switch {name} (level {switch.level}, scope {scope})"
    for record in engaged:
        if record.switch == name and record.scope == scope:
            return Plan(
                "kill",
                summary,
                noop=f"kill switch {name} is already engaged (scope {scope}) since "
                f"{record.engaged_at:%Y-%m-%d %H:%M:%S %Z} by {record.actor or record.db_user}",
            )
    applied = {flag: settings[flag].apply_to(values[flag]) for flag in sorted(settings)}
    changes = [
        Change(flag, scope, values[flag], applied[flag])
        for flag in sorted(settings)
        if values[flag] != applied[flag]
    ]
    checks = ["kill switches bypass bakes, freezes and guardrails"]
    if not changes:
        checks.append("every flag already has the kill values; the switch is recorded as engaged")
    return Plan(
        "kill",
        summary,
        changes=changes,
        checks=checks,
        data={
            "switch": name,
            "scope": scope,
            "level": switch.level,
            "prior": {f: values[f] for f in sorted(settings)},
            "applied": applied,
        },
    )


def apply_kill(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    from psycopg.types.json import Jsonb

    store = FlagStore(conn, manifest)
    for change in plan.changes:
        store.write(change.flag, change.after, change.scope)
    data = plan.data
    conn.execute(
        "INSERT INTO flagctl.engaged_switch (system, switch, scope, level, actor, reason, prior, applied)"
        " VALUES (%s, %s, %s, %s, current_setting('flagctl.actor', true),"
        " current_setting('flagctl.reason', true), %s, %s)",
        (
            manifest.system,
            data["switch"],
            data["scope"],
            data["level"],
            Jsonb({f: v.to_json() for f, v in data["prior"].items()}),
            Jsonb({f: v.to_json() for f, v in data["applied"].items()}),
        ),
    )


def plan_release(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    name: str,
    scope: str,
    locked: bool,
    force: bool,
) -> Plan:
    manifest.switch(name)  # unknown switch: usage error
    store = FlagStore(conn, manifest)
    summary = f"release kill switch {name} (scope {scope})"
    settings = manifest.switches[name]
    values = store.lock(list(settings), scope) if locked else store.read_all(sorted(settings))
    engaged = list_engaged(conn, manifest.system, lock=locked)
    record = next((e for e in engaged if e.switch == name and e.scope == scope), None)
    if record is None:
        return Plan("release", summary, noop=f"kill switch {name} is not engaged (scope {scope})")
    changes: list[Change] = []
    handovers: dict[str, dict[str, Rollout]] = {}  # later switch → flags whose prior it inherits
    conflicts: list[str] = []
    checks: list[str] = []
    for flag in sorted(record.applied):
        later = [e for e in holding(engaged, flag) if e.seq > record.seq and e.scope == scope]
        if later:
            handovers.setdefault(later[0].switch, {})[flag] = record.prior[flag]
            checks.append(f"{flag} stays as {later[0].switch} set it ({later[0].switch} is engaged)")
            continue
        current = values.get(flag) or store.read(flag, scope)
        if current != record.applied[flag]:
            conflicts.append(f"{flag}: the kill set {record.applied[flag]}, it is now {current}")
        if current != record.prior[flag]:
            changes.append(Change(flag, scope, current, record.prior[flag]))
    if conflicts and not force:
        raise ConflictError(
            f"{flag_word(len(conflicts))} changed since {name} was engaged: " + "; ".join(conflicts),
            "someone changed it in between; check `flagctl audit log`, then release with --force "
            "to restore the values from before the kill anyway",
        )
    if conflicts:
        checks.append("forced: restoring the values from before the kill over later changes")
    return Plan(
        "release",
        summary,
        changes=changes,
        checks=checks,
        forced=bool(conflicts),
        data={"switch": name, "scope": scope, "handovers": handovers},
    )


def flag_word(count: int) -> str:
    return "a flag" if count == 1 else f"{count} flags"


def apply_release(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    from psycopg.types.json import Jsonb

    store = FlagStore(conn, manifest)
    for change in plan.changes:
        store.write(change.flag, change.after, change.scope)
    data = plan.data
    for later, inherited in data["handovers"].items():
        conn.execute(
            "UPDATE flagctl.engaged_switch SET prior = prior || %s"
            " WHERE system = %s AND switch = %s AND scope = %s",
            (
                Jsonb({f: v.to_json() for f, v in inherited.items()}),
                manifest.system,
                later,
                data["scope"],
            ),
        )
    conn.execute(
        "DELETE FROM flagctl.engaged_switch WHERE system = %s AND switch = %s AND scope = %s",
        (manifest.system, data["switch"], data["scope"]),
    )
