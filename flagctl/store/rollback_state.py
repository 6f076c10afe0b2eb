"""The watchdog's state machine (``flagctl.rollback_state``): one row per system, read,
held and written only inside a declared ``rollback.*`` change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.rules.rollback import MachineState

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest

READ = "SELECT state, since, green_since FROM flagctl.rollback_state WHERE system = %s"
HOLD = "SELECT flagctl.hold_rollback_state(%s)"  # for the declared change (routines/95_writes.sql)
# Never dated in the future; only inside a declared rollback.* change (routines/96_records.sql).
STORE = "SELECT flagctl.store_rollback_state(%s, %s, %s, %s, %s)"


def read_state(conn: psycopg.Connection[Any], manifest: Manifest) -> MachineState:
    """The system's state (NORMAL, never entered, before its first row)."""
    row = conn.execute(READ, (manifest.system,)).fetchone()
    return MachineState("NORMAL", None, None) if row is None else MachineState(*row)


def hold_state(conn: psycopg.Connection[Any], manifest: Manifest) -> None:
    """Lock the system's state row until the caller's transaction ends."""
    conn.execute(HOLD, (manifest.system,))


def store_state(
    conn: psycopg.Connection[Any], manifest: Manifest, state: MachineState, detail: dict[str, Any]
) -> None:
    """Write the machine's state (inside the caller's audited transaction)."""
    from psycopg.types.json import Jsonb

    conn.execute(STORE, (manifest.system, state.state, state.since, state.green_since, Jsonb(detail)))
