"""Requests waiting for a second person (``flagctl.requests``), and reviews of emergency
actions (``flagctl.reviews``). Who may approve or review is checked by the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError
from flagctl.model.manifest import Manifest

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.change import Change

# A request is made and approved only by these functions (schema 21): the database derives
# its summary from the exact changes, caps its expiry by the published approvals, and the
# guard lets an approved request through only for those very changes.
INSERT_REQUEST = "SELECT flagctl.create_request(%s, %s, %s, %s, %s, %s, %s)"
REQUEST_COLUMNS = (
    "id, action, summary, spec, why, reason, requested_by, requested_actor, requested_at, expires_at, "
    "status, approved_by, approved_actor, approved_at"
)
SELECT_REQUESTS = f"SELECT {REQUEST_COLUMNS} FROM flagctl.requests WHERE system = %s"  # noqa: S608 - constant columns
APPROVE = "SELECT flagctl.approve_request(%s, %s, current_setting('flagctl.actor', true))"


@dataclass(frozen=True)
class Request:
    id: int
    action: str
    summary: str
    spec: dict[str, Any]
    why: str
    reason: str
    requested_by: str
    requested_actor: str | None
    requested_at: datetime
    expires_at: datetime
    status: str
    approved_by: str | None
    approved_actor: str | None
    approved_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "action": self.action,
            "summary": self.summary,
            "why": self.why,
            "reason": self.reason,
            "requested_by": self.requested_actor or self.requested_by,
            "db_user": self.requested_by,
            "requested_at": self.requested_at.isoformat(),
            "expires_at": self.expires_at.isoformat(),
            "status": self.status,
            "approved_by": self.approved_by,
            "approved_at": self.approved_at.isoformat() if self.approved_at else None,
        }


def create_request(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    action: str,
    spec: dict[str, Any],
    why: str,
    reason: str,
    actor: str,
    changes: list[Change],
) -> int:
    """Record a pending request for exactly these changes (its summary and expiry are the
    database's to set)."""
    from psycopg.types.json import Jsonb

    flags = manifest.flags
    planned = [
        {
            "flag": c.flag,
            "scope": c.scope,
            "before": None if c.before is None else flags[c.flag].to_db(c.before),
            "after": None if c.after is None else flags[c.flag].to_db(c.after),
        }
        for c in changes
    ]
    with conn.transaction():
        row = conn.execute(
            INSERT_REQUEST, (manifest.system, action, Jsonb(spec), why, reason, actor, Jsonb(planned))
        ).fetchone()
    assert row is not None
    return int(row[0])


def requests(conn: psycopg.Connection[Any], manifest: Manifest, everything: bool = False) -> list[Request]:
    """Pending requests (``everything``: all of them), newest first."""
    where = "" if everything else " AND status = 'pending' AND expires_at > now()"
    rows = conn.execute(SELECT_REQUESTS + where + " ORDER BY id DESC", (manifest.system,)).fetchall()
    return [Request(*row) for row in rows]


def request(conn: psycopg.Connection[Any], manifest: Manifest, request_id: int) -> Request:
    row = conn.execute(SELECT_REQUESTS + " AND id = %s", (manifest.system, request_id)).fetchone()
    if row is None:
        raise UsageError(
            f"no request {request_id} for system {manifest.system}", "flagctl requests lists them"
        )
    return Request(*row)


def mark_approved(conn: psycopg.Connection[Any], manifest: Manifest, request_id: int) -> None:
    """Mark the request approved by this session (the database refuses its requester, an
    expired or an already approved request)."""
    conn.execute(APPROVE, (request_id, manifest.system))


# ---------------------------------------------------------------- reviews

# Emergency actions: a kill, the watchdog's or a rollout runner's automatic rollback, a
# forced change, locks broken — one entry per transaction, named by its first audit row, with the review if
# there is one.
EMERGENCIES = """
SELECT e.seq, e.at, e.db_user, e.actor, e.action, e.reason, e.flags, r.reviewed_by, r.note, r.reviewed_at
  FROM (SELECT min(a.seq) AS seq, min(a.at) AS at, min(a.db_user) AS db_user, min(a.actor) AS actor,
               min(a.action) AS action, min(a.reason) AS reason,
               string_agg(DISTINCT coalesce(a.flag, a.target), ', ') AS flags
          FROM flagctl.audit a
         WHERE a.system = %s AND a.action NOT LIKE '%%.refused' AND a.action NOT LIKE 'drill.%%'
           AND (a.action IN ('kill', 'rollback.auto', 'rollout.rollback') OR a.forced
                OR a.reason LIKE '%%[broke locks:%%')
         GROUP BY a.txid) e
  LEFT JOIN flagctl.reviews r ON r.audit_seq = e.seq
 ORDER BY e.seq
"""
# Reviewed by the session's own user, the actor as declared (routines/96_records.sql).
REVIEW = "SELECT flagctl.record_review(%s, %s, %s)"


@dataclass(frozen=True)
class Emergency:
    seq: int
    at: datetime
    db_user: str
    actor: str | None
    action: str
    reason: str | None
    flags: str
    reviewed_by: str | None
    note: str | None
    reviewed_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {
            "audit_seq": self.seq,
            "at": self.at.isoformat(),
            "by": self.actor or self.db_user,
            "db_user": self.db_user,
            "action": self.action,
            "reason": self.reason,
            "flags": self.flags,
            "reviewed_by": self.reviewed_by,
            "note": self.note,
            "reviewed_at": self.reviewed_at.isoformat() if self.reviewed_at else None,
        }


def emergencies(conn: psycopg.Connection[Any], manifest: Manifest) -> list[Emergency]:
    return [Emergency(*row) for row in conn.execute(EMERGENCIES, (manifest.system,)).fetchall()]


def review(conn: psycopg.Connection[Any], manifest: Manifest, seq: int, note: str) -> None:
    conn.execute(REVIEW, (seq, manifest.system, note))
