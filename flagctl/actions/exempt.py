"""Allow / deny exemptions of one scope from a flag (the canary plan's publisher exemptions).

An exemption is a row in ``flagctl.exemption``, audited by the database trigger like every
other change. Evaluation order is in ``flagctl.views.evaluate``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Change, Plan
from flagctl.errors import UsageError
from flagctl.model.manifest import Manifest
from flagctl.store.flags import GLOBAL, FlagStore, check_scope

if TYPE_CHECKING:
    import psycopg


def plan_exempt(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    flag: str,
    scope: str,
    effect: str | None,
    note: str | None,
    locked: bool,
) -> Plan:
    """Add (effect allow/deny) or remove (effect None) the exemption of ``scope``."""
    if scope == GLOBAL:
        raise UsageError("an exemption is for one scope (KIND:VALUE), not global")
    check_scope(manifest, flag, scope)
    if locked:
        FlagStore(conn, manifest).lock([flag])  # exemptions of a flag change under its lock
    row = conn.execute(
        "SELECT effect, note FROM flagctl.exemption WHERE system = %s AND flag = %s AND scope = %s",
        (manifest.system, flag, scope),
    ).fetchone()
    current = row[0] if row else None
    summary = f"exemption of {scope} from {flag}: {current or 'none'} → {effect or 'none'}"
    if current == effect and (effect is None or row is None or row[1] == note):
        return Plan(
            "exempt", summary, noop=f"{scope} already has {'no' if effect is None else effect} exemption"
        )
    return Plan(
        "exempt",
        summary,
        changes=[Change(flag, scope, current, effect)],
        checks=[
            "order: kill > stage off > deny > allow > internal > bucket; allow never reopens an off stage"
        ],
        data={"note": note},
    )


def apply_exempt(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    change = plan.changes[0]
    if change.after is None:
        conn.execute(
            "DELETE FROM flagctl.exemption WHERE system = %s AND flag = %s AND scope = %s",
            (manifest.system, change.flag, change.scope),
        )
        return
    conn.execute(
        "INSERT INTO flagctl.exemption (system, flag, scope, effect, note, actor)"
        " VALUES (%s, %s, %s, %s, %s, current_setting('flagctl.actor', true))"
        " ON CONFLICT (system, flag, scope) DO UPDATE SET effect = excluded.effect, note = excluded.note,"
        " actor = excluded.actor, created_at = now()",
        (manifest.system, change.flag, change.scope, change.after, plan.data["note"]),
    )


def list_exemptions(
    conn: psycopg.Connection[Any], manifest: Manifest, flag: str | None
) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT flag, scope, effect, note, created_at, actor FROM flagctl.exemption"
        " WHERE system = %s AND (%s::text IS NULL OR flag = %s) ORDER BY flag, scope",
        (manifest.system, flag, flag),
    ).fetchall()
    keys = ("flag", "scope", "effect", "note", "created_at", "actor")
    return [dict(zip(keys, row, strict=True)) for row in rows]
