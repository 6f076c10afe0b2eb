"""Allow / deny exemptions of one scope from a flag (``flagctl.exemption``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.model.manifest import Manifest

if TYPE_CHECKING:
    import psycopg

SELECT_ONE = "SELECT effect, note FROM flagctl.exemption WHERE system = %s AND flag = %s AND scope = %s"
SELECT_OF_FLAG = "SELECT scope, effect FROM flagctl.exemption WHERE system = %s AND flag = %s ORDER BY scope"
SELECT_ALL = """
SELECT flag, scope, effect, note, created_at, actor FROM flagctl.exemption
 WHERE system = %s AND (%s::text IS NULL OR flag = %s) ORDER BY flag, scope
"""
OF_SYSTEM = "SELECT flag, scope, effect FROM flagctl.exemption WHERE system = %s"
OF_FLAGS = "SELECT flag, scope, effect FROM flagctl.exemption WHERE system = %s AND flag = ANY(%s)"
# Set or removed inside the declared `exempt` change (routines/96_records.sql).
DELETE = "SELECT flagctl.record_exemption(%s, %s, %s, NULL, NULL)"
UPSERT = "SELECT flagctl.record_exemption(%s, %s, %s, %s, %s)"


def exemption(
    conn: psycopg.Connection[Any], manifest: Manifest, flag: str, scope: str
) -> tuple[str, str | None] | None:
    """(effect, note) of one scope's exemption from a flag, if any."""
    row = conn.execute(SELECT_ONE, (manifest.system, flag, scope)).fetchone()
    return None if row is None else (row[0], row[1])


def exemptions_of(conn: psycopg.Connection[Any], manifest: Manifest, flag: str) -> dict[str, str]:
    """scope → allow | deny, for one flag."""
    return dict(conn.execute(SELECT_OF_FLAG, (manifest.system, flag)).fetchall())


def list_exemptions(
    conn: psycopg.Connection[Any], manifest: Manifest, flag: str | None
) -> list[dict[str, Any]]:
    rows = conn.execute(SELECT_ALL, (manifest.system, flag, flag)).fetchall()
    keys = ("flag", "scope", "effect", "note", "created_at", "actor")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def write_exemption(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    flag: str,
    scope: str,
    effect: str | None,
    note: str | None,
) -> None:
    """Store an exemption (``effect=None``: remove it)."""
    if effect is None:
        conn.execute(DELETE, (manifest.system, flag, scope))
    else:
        conn.execute(UPSERT, (manifest.system, flag, scope, effect, note))


def all_exemptions(
    conn: psycopg.Connection[Any], manifest: Manifest, flags: list[str] | None = None
) -> dict[str, dict[str, str]]:
    """flag → scope → allow | deny, for every flag of the system (or these flags)."""
    found: dict[str, dict[str, str]] = {}
    query, params = (OF_SYSTEM, (manifest.system,)) if flags is None else (OF_FLAGS, (manifest.system, flags))
    for flag, scope, effect in conn.execute(query, params).fetchall():
        found.setdefault(flag, {})[scope] = effect
    return found
