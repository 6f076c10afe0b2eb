"""``flagctl status --watch``: the status, read again whenever a change of the system commits.

The wake-up is the audit trigger's notification (``store.changes``), not a poll: a read
follows each notified change, and what changed is the difference between two reads — the
flags (and scoped overrides) whose effective state moved. Between changes it only asks the
database for its newest audit row every ``heartbeat`` seconds, so a dead connection is
noticed (and a change that came without a notification would be read all the same).

Where the changes come from is given (``Changes``): a ``store.changes.Listener`` on the
connection in flagctl, a wrapper in tests that makes a real change before it waits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from flagctl.model.flagtypes import effective_text, effective_value
from flagctl.model.scopes import GLOBAL
from flagctl.store.audit import AuditRow
from flagctl.store.changes import newest
from flagctl.views.status import Effective, SystemStatus, status

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest

HEARTBEAT = 30.0  # seconds without a notification before the watch asks for the newest row


class Changes(Protocol):
    def wait(self, timeout: float) -> int:
        """Wait up to ``timeout`` seconds; how many changes of the system committed (0: none)."""
        ...


@dataclass(frozen=True)
class FlagChange:
    """One flag at one scope whose effective state moved between two reads (None: no
    override at that scope on that side)."""

    flag: str
    scope: str
    before: Effective | None
    after: Effective | None
    change: AuditRow | None  # the flag's own newest row when it is new, else the system's newest

    @property
    def at(self) -> datetime | None:
        return self.change.at if self.change is not None else None

    @property
    def text(self) -> str:
        """``p3_advisory: on 5% → off (killed by p3-off)``, ``F3@workspace:42: (no override) → on``."""
        where = self.flag if self.scope == GLOBAL else f"{self.flag}@{self.scope}"
        before = self.before.text if self.before is not None else effective_text(None)
        after = self.after.text if self.after is not None else effective_text(None)
        return f"{where}: {before} → {after}"

    def to_json(self) -> dict[str, Any]:
        row = self.change
        return {
            "flag": self.flag,
            "scope": self.scope,
            "before": self.before.to_json() if self.before is not None else None,
            "after": self.after.to_json() if self.after is not None else None,
            "change": None
            if row is None
            else {
                "seq": row.seq,
                "at": row.at.isoformat(),
                "who": row.who,
                "action": row.action,
                "reason": row.reason,
            },
        }


@dataclass(frozen=True)
class Update:
    """One read: the status, the newest audit row when it was read, and what changed since
    the read before it (nothing for the first)."""

    status: SystemStatus
    newest: AuditRow | None
    changes: list[FlagChange]

    @property
    def seq(self) -> int:
        return self.newest.seq if self.newest is not None else 0

    def to_json(self) -> dict[str, Any]:
        row = self.newest
        return {
            "seq": self.seq,
            "at": row.at.isoformat() if row is not None else None,
            "changes": [c.to_json() for c in self.changes],
            "status": self.status.to_json(),
        }


def watch(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    names: list[str] | None,
    changes: Changes,
    clock: Callable[[], datetime],
    *,
    until: datetime | None = None,
    count: int | None = None,
    heartbeat: float = HEARTBEAT,
) -> Iterator[Update]:
    """The status now, then once more after every change, until ``count`` changes were seen
    or the clock reaches ``until``. ``changes`` must be listening already (LISTEN before the
    first read: nothing that commits after it is missed)."""
    current = _read(conn, manifest, names, None)
    yield current
    seen = 0
    while count is None or seen < count:
        remaining = None if until is None else (until - clock()).total_seconds()
        if remaining is not None and remaining <= 0:
            return
        wait = heartbeat if remaining is None else min(heartbeat, remaining)
        notified = changes.wait(wait)
        if not notified:
            if remaining is not None and wait >= remaining:
                return  # waited out the rest of the time
            row = newest(conn, manifest.system)  # the heartbeat: alive, and nothing missed?
            if (row.seq if row is not None else 0) == current.seq:
                continue
            notified = 1
        seen += notified
        current = _read(conn, manifest, names, current)
        yield current


def _read(
    conn: psycopg.Connection[Any], manifest: Manifest, names: list[str] | None, before: Update | None
) -> Update:
    row = newest(conn, manifest.system)  # first: a change committed after it is notified again
    now = status(conn, manifest, names)
    moved = [] if before is None else changed(before.status, now, before.seq, row)
    return Update(now, row, moved)


def changed(
    before: SystemStatus, after: SystemStatus, since: int, newest_row: AuditRow | None
) -> list[FlagChange]:
    """The flags and scoped overrides whose effective state differs between two reads (the
    value subjects see, why, and by what), in the manifest's order. ``since``: the newest
    audit row of the earlier read; a flag's own row newer than it is the change shown."""
    old = {f.name: f for f in before.flags}
    found = []
    for flag in after.flags:
        prior = old.get(flag.name)
        own = flag.last_change
        change = own if own is not None and own.seq > since else newest_row
        if prior is None or prior.effective.to_json() != flag.effective.to_json():
            found.append(
                FlagChange(flag.name, GLOBAL, prior.effective if prior else None, flag.effective, change)
            )
        was = prior.overrides if prior is not None else {}
        for scope in [*flag.overrides, *(s for s in was if s not in flag.overrides)]:
            a, b = _override(was.get(scope)), _override(flag.overrides.get(scope))
            if (a and a.to_json()) != (b and b.to_json()):
                found.append(FlagChange(flag.name, scope, a, b, change))
    return found


def _override(value: Any) -> Effective | None:
    if value is None:
        return None
    return Effective(effective_value(value), "override", None, effective_text(value))
