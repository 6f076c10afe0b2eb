"""The rollback state machine's transition function. Pure.

    NORMAL → DEGRADED → ROLLBACK_PENDING → ROLLED_BACK → RECOVERY_VERIFY → NORMAL
      ↑___________________ manual override ___________________________________|

- a breach maps to a state by severity (``rollback.on``; default P1 → ROLLBACK_PENDING,
  P2 → DEGRADED); DEGRADED returns to NORMAL when all are green again;
- ROLLED_BACK moves to RECOVERY_VERIFY once all are green, and RECOVERY_VERIFY to NORMAL
  after ``rollback.recovery`` of continuous green; a breach sends it back to ROLLED_BACK.
  Time a watcher spent blind (its connection lost) is not green: the window restarts.
- an inconclusive guardrail (too few samples, or no data where the guardrail says so) is
  neither a breach nor green: the machine stays where it is, and a recovery window
  restarts once all are green again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flagctl.model.durations import format_duration

STATES = ("NORMAL", "DEGRADED", "ROLLBACK_PENDING", "ROLLED_BACK", "RECOVERY_VERIFY")


@dataclass(frozen=True)
class MachineState:
    state: str
    since: datetime | None
    green_since: datetime | None


def next_state(
    current: MachineState,
    worst: str | None,
    on: dict[str, str],
    now: datetime,
    recovery: timedelta,
    watched_since: datetime | None = None,
    unsure: bool = False,
) -> MachineState:
    """The machine's transition function (no side effects). ``watched_since``: the watcher
    was blind (no connection) until then, so green before it was never seen and does not
    count towards the recovery window. ``unsure``: a guardrail was inconclusive, so the
    others' green is not all green."""
    state = current.state
    target = on.get(worst) if worst else None
    if target == "ROLLBACK_PENDING":
        if state in ("NORMAL", "DEGRADED"):
            return MachineState("ROLLBACK_PENDING", now, None)
        if state == "RECOVERY_VERIFY":
            return MachineState("ROLLED_BACK", now, None)
        return MachineState(state, current.since, None)
    if target == "DEGRADED":
        if state == "NORMAL":
            return MachineState("DEGRADED", now, None)
        if state == "RECOVERY_VERIFY":
            return MachineState("ROLLED_BACK", now, None)
        return MachineState(state, current.since, None)
    if unsure:  # no breach, but not all green either: hold, and see again
        return MachineState(state, current.since or now, None)
    # all green (or a breach whose severity maps to nothing)
    if state == "DEGRADED":
        return MachineState("NORMAL", now, None)
    if state == "ROLLED_BACK":
        return MachineState("RECOVERY_VERIFY", now, now)
    if state == "RECOVERY_VERIFY":
        green_since = current.green_since or now
        if watched_since is not None and green_since < watched_since:
            green_since = watched_since  # continuous green means green while watched
        if now - green_since >= recovery:
            return MachineState("NORMAL", now, None)
        return MachineState(state, current.since, green_since)
    return MachineState(state, current.since or now, None)


def describe(state: MachineState, now: datetime, recovery: timedelta) -> str:
    text = state.state
    if state.since:
        text += f" for {format_duration(now - state.since)}"
    if state.state == "RECOVERY_VERIFY" and state.green_since:
        left = recovery - (now - state.green_since)
        text += f" (green for {format_duration(now - state.green_since)}; NORMAL in {format_duration(left)})"
    return text
