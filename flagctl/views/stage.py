"""Where a ladder stands and how it got there, derived from the live values and the audit.

The position is derived from the flag values themselves (a bound table stays the single
source of truth), and the history from the audit trail, so a change made with plain SQL
shows up as a stage move too, and counts for bake time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from itertools import groupby
from typing import TYPE_CHECKING, Any

from flagctl.model.flagtypes import to_json
from flagctl.model.manifest import Manifest, ResolvedLadder, ResolvedStage
from flagctl.model.scopes import GLOBAL
from flagctl.rules.kills import beneath
from flagctl.store import audit as audit_mod
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged

if TYPE_CHECKING:
    import psycopg

HISTORY_DEPTH = 1000


@dataclass(frozen=True)
class Transition:
    at: datetime
    from_stage: str | None
    to_stage: str | None
    before: dict[str, Any]
    after: dict[str, Any]
    who: str
    action: str
    reason: str | None
    forced: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "from": self.from_stage,
            "to": self.to_stage,
            "before": {f: to_json(v) for f, v in self.before.items()},
            "after": {f: to_json(v) for f, v in self.after.items()},
            "who": self.who,
            "action": self.action,
            "reason": self.reason,
            "forced": self.forced,
        }


@dataclass(frozen=True)
class Position:
    """Where a ladder stands: the stage its live values are at (under a kill, the kill's),
    and under a kill the stage beneath it — what releasing the kill restores."""

    ladder: ResolvedLadder
    values: dict[str, Any]
    stage: ResolvedStage | None
    entered_at: datetime | None
    engaged: list[str]  # kill switches holding the ladder's flags
    beneath_values: dict[str, Any] | None = None  # under a kill: the values it recorded as the base
    beneath: ResolvedStage | None = None  # …and their stage

    @property
    def stage_name(self) -> str:
        return self.stage.name if self.stage else "(off ladder)"

    def to_json(self) -> dict[str, Any]:
        """``stage show -o json``: ``stage`` is where the live values stand (under a kill, the
        kill's); ``beneath`` the stage a kill's recorded base stands at (what its release
        restores), ``killed_by`` the switches holding the ladder's flags."""
        from flagctl.model.durations import format_duration

        ladder = self.ladder
        return {
            "ladder": ladder.name,
            "stage": self.stage.name if self.stage else None,
            "entered_at": self.entered_at,
            "values": {f: to_json(v) for f, v in self.values.items()},
            "kill_switches": self.engaged,
            "killed_by": self.engaged,
            "beneath": self.beneath.name if self.beneath else None,
            "beneath_values": None
            if self.beneath_values is None
            else {f: to_json(v) for f, v in self.beneath_values.items()},
            "stages": [
                {
                    "name": s.name,
                    "index": s.index,
                    "values": s.describe(),
                    "bake": format_duration(bake) if (bake := ladder.bake.get(s.name)) else None,
                }
                for s in ladder.stages
            ],
        }

    @property
    def describe(self) -> str:
        """``dark``, or under a kill ``dark — killed by p3-off; beneath it: canary``."""
        if not self.engaged:
            return self.stage_name
        return killed_text(self.stage_name, self.engaged, self.beneath)


def killed_text(stage: str, switches: list[str], under: ResolvedStage | None) -> str:
    return f"{stage} — killed by {', '.join(switches)}; beneath it: {under.name if under else '(off ladder)'}"


def stage_name(stage: ResolvedStage | None) -> str | None:
    return stage.name if stage else None


def history(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    ladder: ResolvedLadder,
    current: dict[str, Any],
) -> list[Transition]:
    """Every change of the ladder's flags, newest first, as stage transitions.

    Walks the audit trail backwards from the current values, one transaction at a time,
    undoing each change to learn the values (and so the stage) before it.
    """
    rows = [
        row
        for row in audit_mod.read_log(
            conn, system=manifest.system, flags=list(ladder.flags), limit=HISTORY_DEPTH
        )
        if (row.scope or GLOBAL) == GLOBAL and not row.action.endswith(".refused")
    ]
    state = dict(current)
    transitions = []
    for _, group in groupby(rows, key=lambda r: r.txid):
        changes = list(group)
        after = dict(state)
        for row in changes:
            assert row.flag is not None
            before_value = audit_mod.value_from_row(manifest, row, "before")
            state[row.flag] = (
                before_value if before_value is not None else manifest.flag(row.flag).default_value()
            )
        if state == after:
            continue
        first = changes[-1]
        transitions.append(
            Transition(
                at=first.at,
                from_stage=stage_name(ladder.position(state)),
                to_stage=stage_name(ladder.position(after)),
                before=dict(state),
                after=after,
                who=first.who,
                action=first.action,
                reason=first.reason,
                forced=any(r.forced for r in changes),
            )
        )
    return transitions


def entered_at(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    ladder: ResolvedLadder,
    current: dict[str, Any],
) -> datetime | None:
    """When the ladder entered its current stage; None when it is off the ladder.

    With no recorded entry (the values predate flagctl), the time flagctl started to
    watch the flags counts: the binding's registration, or the schema's installation.
    """
    stage = ladder.position(current)
    if stage is None:
        return None
    for move in history(conn, manifest, ladder, current):
        if move.to_stage == stage.name and move.from_stage != stage.name:
            return move.at
    from flagctl.store.schema import watched_since

    return watched_since(conn, manifest.system, list(ladder.flags))


def position(conn: psycopg.Connection[Any], manifest: Manifest, ladder: ResolvedLadder) -> Position:
    values = FlagStore(conn, manifest).values(ladder.flags)
    defaults = {flag: manifest.flags[flag].default_value() for flag in ladder.flags}
    under, holders = beneath(list_engaged(conn, manifest), values, defaults)
    return Position(
        ladder, values, ladder.position(values), entered_at(conn, manifest, ladder, values), holders,
        under if holders else None, ladder.position(under) if holders else None,
    )  # fmt: skip
