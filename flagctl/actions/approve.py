"""Four eyes, the second pair: a pending request, checked and built again as the change it
recorded (``flagctl approve``). ``execute(..., approving=id)`` then applies it, checked again
at that moment, and the database refuses the user who asked for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.errors import PolicyRefused, UsageError

if TYPE_CHECKING:
    import psycopg

    from flagctl.actions.base import Action
    from flagctl.model.manifest import Manifest
    from flagctl.store.requests import Request


def pending(conn: psycopg.Connection[Any], loaded: Manifest, request_id: int) -> Request:
    """The request, if it still waits for approval (else PolicyRefused: who settled it)."""
    from flagctl.store.requests import request

    found = request(conn, loaded, request_id)
    if found.status != "pending":
        raise PolicyRefused(
            f"request {request_id} is {found.status} (by {found.approved_by})", system=loaded.system
        )
    return found


def approval_reason(found: Request, reason: str | None) -> str | None:
    """The approver's reason, with what it approves (None: the approver gave none)."""
    why = f"approve request {found.id} ({found.requested_actor or found.requested_by}: {found.reason})"
    return f"{reason.strip()} — {why}" if reason and reason.strip() else None


def rebuild(loaded: Manifest, found: Request, clock: Callable[[], datetime]) -> Action[Any]:
    """The requested change, built again from what the request recorded."""
    from flagctl.actions.set import SetFlag
    from flagctl.actions.stage import StageSet

    spec = found.spec
    if spec.get("kind") == "stage.set":
        return StageSet(
            loaded, spec["ladder"], stage=spec["stage"], percent=spec.get("percent"), force=bool(spec.get("force")),
            clock=clock,
        )  # fmt: skip
    if spec.get("kind") == "set":
        flag = loaded.flag(spec["flag"])
        value = None if spec.get("value") is None else flag.from_db(spec["value"])
        return SetFlag(loaded, spec["flag"], value, scope=spec["scope"], force=bool(spec.get("force")))
    raise UsageError(f"request {found.id} holds a change this flagctl cannot build: {spec!r}")
