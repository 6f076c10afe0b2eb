"""The bearer tokens ``flagctl serve`` accepts (``flagctl.token``; schema 35): read here,
written only through ``flagctl.token_create`` / ``flagctl.token_revoke`` inside a declared
``tokens.*`` change (flagctl_admin).

A token is ``fct_`` and 43 characters of a 256-bit random secret; the database keeps only
its sha256, so neither the table nor the audit trail holds anything a relay would accept.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.store.rows import row_json

if TYPE_CHECKING:
    import psycopg

PREFIX = "fct_"
COLUMNS = "id, system, name, created_by, db_user, reason, created_at, revoked_at, revoked_by"
LIST = (
    f"SELECT {COLUMNS} FROM flagctl.token WHERE system = %s"  # noqa: S608 - constant columns
    " AND (%s OR revoked_at IS NULL) ORDER BY name, id"
)
LIVE = "SELECT hash, name FROM flagctl.token WHERE system = %s AND revoked_at IS NULL"
CREATE = "SELECT flagctl.token_create(%s, %s, %s)"
REVOKE = "SELECT flagctl.token_revoke(%s, %s)"


def new_secret() -> str:
    """A new token: shown once, never stored."""
    return PREFIX + secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What the database keeps of a token, and what a relay compares."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Token:
    id: int
    system: str
    name: str
    created_by: str
    db_user: str
    reason: str | None
    created_at: datetime
    revoked_at: datetime | None
    revoked_by: str | None

    def to_json(self) -> dict[str, Any]:
        return row_json(self)


def listed(conn: psycopg.Connection[Any], system: str, everything: bool = False) -> list[Token]:
    """The system's live tokens (``everything``: the revoked ones too), by name."""
    return [Token(*row) for row in conn.execute(LIST, (system, everything)).fetchall()]


def live(conn: psycopg.Connection[Any], system: str) -> dict[str, str]:
    """The live tokens of the system: hash → application name (what a relay accepts)."""
    return {str(h): str(n) for h, n in conn.execute(LIVE, (system,)).fetchall()}


def create(conn: psycopg.Connection[Any], system: str, name: str, hashed: str) -> int:
    row = conn.execute(CREATE, (system, name, hashed)).fetchone()
    assert row is not None
    return int(row[0])


def revoke(conn: psycopg.Connection[Any], system: str, name: str) -> bool:
    row = conn.execute(REVOKE, (system, name)).fetchone()
    return bool(row and row[0])
