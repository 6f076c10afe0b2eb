"""Scoped freezes (``flagctl.freeze``): read the active ones, add one, clear them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.model.manifest import Manifest
from flagctl.rules.freeze import Freeze

if TYPE_CHECKING:
    from datetime import datetime

    import psycopg

ACTIVE = """
SELECT id, scope, until, reason, actor, db_user, created_at FROM flagctl.freeze
 WHERE system = %s AND cleared_at IS NULL AND (until IS NULL OR until > coalesce(%s, now())) ORDER BY id
"""
# The same, after waiting for a freeze being set or cleared: what a widening change checks.
IN_FORCE = "SELECT id, scope, until, reason, actor, db_user, created_at FROM flagctl.freezes_in_force(%s)"
# Why and who from the declared freeze.set / freeze.clear (routines/96_records.sql).
ADD = "SELECT flagctl.freeze_add(%s, %s, %s)"
# Setting or clearing a freeze takes this lock exclusively; a change that checks the freezes
# takes it shared first, so a freeze and a widening change never pass each other unseen.
LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('flagctl.freeze:' || %s, 0))"
CLEAR = "SELECT flagctl.freeze_clear(%s)"


def active_freezes(
    conn: psycopg.Connection[Any], manifest: Manifest, now: datetime | None = None
) -> list[Freeze]:
    """The freezes in force at ``now`` (default: the database's now): not cleared, not expired."""
    return [Freeze(*row) for row in conn.execute(ACTIVE, (manifest.system, now)).fetchall()]


def add_freeze(conn: psycopg.Connection[Any], manifest: Manifest, scope: str, until: datetime | None) -> None:
    conn.execute(ADD, (manifest.system, scope, until))


def clear_freezes(conn: psycopg.Connection[Any], ids: list[int]) -> None:
    conn.execute(CLEAR, (ids,))


def lock_freezes(conn: psycopg.Connection[Any], manifest: Manifest) -> None:
    """Setting or clearing a freeze: wait for the changes checking the freezes now."""
    conn.execute(LOCK, (manifest.system,))


def freezes_in_force(conn: psycopg.Connection[Any], manifest: Manifest) -> list[Freeze]:
    """The freezes in force, in one statement that first waits for any freeze being set or
    cleared (so a widening change and a new freeze never pass each other unseen)."""
    return [Freeze(*row) for row in conn.execute(IN_FORCE, (manifest.system,)).fetchall()]
