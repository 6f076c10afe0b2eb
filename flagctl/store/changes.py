"""The change feed: the notification the audit trigger sends for every committed change.

Every audit row of a system sends ``NOTIFY flagctl '{"system": …, "txid": …}'``
(``sql/routines/10_audit.sql``, ``flagctl.audit_notify``); PostgreSQL delivers it when the
transaction commits and folds the rows of one transaction into one notification. The gate
listens on the same channel; ``status --watch`` listens here. Nothing sends a second one.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from flagctl.store.audit import COLUMNS, AuditRow

if TYPE_CHECKING:
    import psycopg

CHANNEL = "flagctl"  # the audit trigger's (flagctl.audit_notify)
LISTEN = "LISTEN flagctl"
# The newest audit row of a system (audit_system_seq_idx): what a change sequence stands at.
NEWEST_ROW = f"SELECT {COLUMNS} FROM flagctl.audit WHERE system = %s ORDER BY seq DESC LIMIT 1"  # noqa: S608


class Listener:
    """The committed changes of one system, as their notifications arrive on a connection
    in autocommit mode. LISTEN is sent when it is made: whatever commits after that is
    seen, so read the state after making it, not before."""

    def __init__(self, conn: psycopg.Connection[Any], system: str) -> None:
        self.conn = conn
        self.system = system
        conn.execute(LISTEN)

    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds for a change of the system; how many transactions
        changed it (0: none in that time). Once one arrives, those already delivered are
        counted too, without waiting more: a burst is read once."""
        import time

        deadline = time.monotonic() + max(timeout, 0.0)
        count = 0
        while not count:
            left = deadline - time.monotonic()
            if left <= 0:
                return 0
            count = sum(self._mine(n.payload) for n in self.conn.notifies(timeout=left, stop_after=1))
        return count + sum(self._mine(n.payload) for n in self.conn.notifies(timeout=0))

    def _mine(self, payload: str) -> bool:
        try:
            return bool(json.loads(payload).get("system") == self.system)
        except (ValueError, AttributeError):
            return False


def newest(conn: psycopg.Connection[Any], system: str) -> AuditRow | None:
    """The system's newest audit row (None: nothing recorded yet)."""
    row = conn.execute(NEWEST_ROW, (system,)).fetchone()
    return None if row is None else AuditRow(*row)
