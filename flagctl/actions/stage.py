"""Ladders: where a rollout stands, its history, and the rules for moving it.

The position is derived from the flag values themselves (a bound table stays the single
source of truth), and the history from the audit trail, so a change made with plain SQL
shows up as a stage move too. Rules for ``stage set``:
- backward, any distance: always allowed;
- forward: one stage at a time, after the current stage's bake time, with the ladder's
  required guardrails passing; ``--force`` skips a stage or a bake (never a guardrail);
- a percent change inside a range stage: an increase needs the guardrails, not a bake;
- nothing moves while a kill switch holds one of the ladder's flags.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import groupby
from typing import TYPE_CHECKING, Any

from flagctl.actions import kill as killswitch
from flagctl.actions.base import Change, Plan
from flagctl.errors import PolicyRefused, UsageError
from flagctl.model.durations import format_duration
from flagctl.model.flagtypes import effective_text, to_json
from flagctl.model.manifest import Manifest, ResolvedLadder, ResolvedStage
from flagctl.store import audit as audit_mod
from flagctl.store.flags import GLOBAL, FlagStore
from flagctl.verify import guardrails

if TYPE_CHECKING:
    import psycopg

Clock = Callable[[], datetime]
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
    ladder: ResolvedLadder
    values: dict[str, Any]
    stage: ResolvedStage | None
    entered_at: datetime | None
    engaged: list[str]  # kill switches holding the ladder's flags

    @property
    def stage_name(self) -> str:
        return self.stage.name if self.stage else "(off ladder)"


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
    row = conn.execute(
        "SELECT coalesce((SELECT min(registered_at) FROM flagctl.binding"
        "                  WHERE system = %s AND flag = ANY(%s)),"
        "                 (SELECT min(applied_at) FROM flagctl.schema_migrations))",
        (manifest.system, list(ladder.flags)),
    ).fetchone()
    return row[0] if row else None


def position(conn: psycopg.Connection[Any], manifest: Manifest, ladder: ResolvedLadder) -> Position:
    values = FlagStore(conn, manifest).values(ladder.flags)
    engaged = killswitch.list_engaged(conn, manifest)
    holders = sorted({e.switch for f in ladder.flags for e in killswitch.holding(engaged, f, GLOBAL)})
    return Position(
        ladder, values, ladder.position(values), entered_at(conn, manifest, ladder, values), holders
    )


def plan_stage_set(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    ladder: ResolvedLadder,
    target_name: str,
    *,
    percent: int | None,
    force: bool,
    clock: Clock,
    locked: bool,
) -> Plan:
    target = ladder.stage(target_name)
    _check_percent(ladder, target, percent)
    snapshot = FlagStore(conn, manifest).for_change(ladder.flags, locked=locked)
    values = {flag: snapshot.globals[flag] for flag in ladder.flags}
    current = ladder.position(values)
    new_values = dict(values)
    for flag, spec in target.specs.items():
        new_values[flag] = spec.value(percent if spec.takes_percent else None)
    summary = f"ladder {ladder.name}: {_label(ladder, values)} → {_label(ladder, new_values)}"
    refuse = _refuser(manifest, ladder)

    engaged = killswitch.list_engaged(conn, manifest)
    holders = sorted({e.switch for f in ladder.flags for e in killswitch.holding(engaged, f, GLOBAL)})
    if holders:
        raise refuse(
            f"kill switch {', '.join(holders)} is engaged on ladder {ladder.name}'s flags; "
            "the kill beats every stage",
            f"release it first: flagctl release {holders[0]} --reason …",
        )

    changes = [
        Change(flag, GLOBAL, values[flag], new_values[flag])
        for flag in ladder.flags
        if values[flag] != new_values[flag]
    ]
    if not changes:
        return Plan(
            "stage.set",
            summary,
            noop=f"ladder {ladder.name} is already at {_label(ladder, values)}",
        )

    checks: list[str] = []
    forced = False
    exposure_up = exposure_increases(manifest, values, new_values)
    if current is None:
        if exposure_up and not force:
            raise refuse(
                f"ladder {ladder.name} is off its stages ({_describe(values)}); "
                "cannot tell which move is one stage forward",
                "move to a stage below the current values, or use --force with --reason",
            )
        forced = exposure_up
        checks.append(f"off the ladder before the move; {'forced' if forced else 'exposure goes down'}")
    elif target.index < current.index or (target.index == current.index and not exposure_up):
        checks.append("backward moves are always allowed")
    else:
        if target.index > current.index + 1:
            skipped = ", ".join(s.name for s in ladder.stages[current.index + 1 : target.index])
            if not force:
                raise refuse(
                    f"{current.name} → {target.name} skips {skipped}; forward moves go one stage at a time",
                    f"move to {ladder.stages[current.index + 1].name} first, or --force with --reason",
                )
            forced = True
            checks.append(f"forced: skips {skipped}")
        if target.index > current.index:
            forced |= _check_bake(conn, manifest, ladder, current, values, force, clock, checks, refuse)
        _check_guardrails(conn, manifest, (*ladder.require, *target.require), checks, refuse)
    if ladder.subjects and not locked:
        checks.extend(_blast_radius(conn, manifest, ladder, values, new_values))
    return Plan(
        "stage.set",
        summary,
        changes=changes,
        checks=checks,
        forced=forced,
        data={"ladder": ladder.name, "stage": target.name},
        snapshot=snapshot,
    )


def _blast_radius(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    ladder: ResolvedLadder,
    values: dict[str, Any],
    new_values: dict[str, Any],
) -> list[str]:
    """For the preview: how many of the ladder's subjects each rollout flag reaches."""
    from flagctl.model.flagtypes import RolloutFlag
    from flagctl.views.evaluate import blast_radius

    assert ladder.subjects is not None
    lines = []
    for flag in ladder.flags:
        if isinstance(manifest.flag(flag), RolloutFlag) and values[flag] != new_values[flag]:
            radius = blast_radius(
                conn, manifest, flag, ladder.subjects, new_values[flag].exposure, values[flag]
            )
            lines.append(f"blast radius {flag}: {radius.describe()}")
    return lines


def apply_stage_set(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    FlagStore(conn, manifest).write(plan.changes)


def _check_bake(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    ladder: ResolvedLadder,
    current: ResolvedStage,
    values: dict[str, Any],
    force: bool,
    clock: Clock,
    checks: list[str],
    refuse: Callable[..., PolicyRefused],
) -> bool:
    """Check the bake time of the current stage; True if it was forced."""
    bake = ladder.bake.get(current.name)
    if not bake:
        checks.append(f"bake: {current.name} has no minimum time")
        return False
    since = entered_at(conn, manifest, ladder, values)
    now = clock()
    baked = now - since if since else timedelta(0)
    if baked >= bake:
        checks.append(f"bake: {current.name} for {format_duration(baked)} ≥ {format_duration(bake)}")
        return False
    if not force:
        ready = (since or now) + bake
        raise refuse(
            f"{current.name} has baked {format_duration(baked)} of its {format_duration(bake)}; "
            f"the next forward move is allowed from {ready:%Y-%m-%d %H:%M:%S %Z} "
            f"(in {format_duration(ready - now)})",
            "wait, or use --force with --reason (recorded as forced in the audit)",
        )
    checks.append(f"forced: bake {current.name} {format_duration(baked)} < {format_duration(bake)}")
    return True


def _check_guardrails(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    required: tuple[str, ...],
    checks: list[str],
    refuse: Callable[..., PolicyRefused],
) -> None:
    failed = []
    for name in dict.fromkeys(required):
        result = guardrails.evaluate(conn, name, manifest.model.guardrails[name])
        checks.append(result.describe())
        if not result.passed:
            failed.append(result)
    if failed:
        raise refuse(
            "required guardrail failed: " + "; ".join(r.describe() for r in failed),
            "forward moves need every required guardrail to pass (--force does not skip them)",
            detail={"guardrails": [r.to_json() for r in failed]},
        )


def _refuser(manifest: Manifest, ladder: ResolvedLadder) -> Callable[..., PolicyRefused]:
    def refuse(message: str, hint: str, detail: dict[str, object] | None = None) -> PolicyRefused:
        return PolicyRefused(
            message, hint, system=manifest.system, target=f"ladder:{ladder.name}", detail=detail
        )

    return refuse


def _check_percent(ladder: ResolvedLadder, stage: ResolvedStage, percent: int | None) -> None:
    """--percent goes to the stage's rollout flags and must lie within each one's range."""
    if percent is None:
        return
    takers = [spec for spec in stage.specs.values() if spec.takes_percent]
    if not takers:
        raise UsageError(
            f"stage {stage.name} of ladder {ladder.name} takes no --percent (nothing is on by percent)"
        )
    for spec in takers:
        if not spec.low <= percent <= spec.high:
            allowed = f"{spec.low}–{spec.high}" if spec.is_range else str(spec.low)
            raise UsageError(
                f"--percent {percent} is outside stage {stage.name} of ladder {ladder.name} ({allowed})",
                f"give a percent within {allowed}",
            )


def exposure_increases(manifest: Manifest, before: dict[str, Any], after: dict[str, Any]) -> bool:
    """True if any flag would be on for more subjects than now (a change of a flag whose
    type has no such order, e.g. an enum, counts as an increase: it needs the checks)."""
    for flag, new in after.items():
        if new == before[flag]:
            continue
        spec = manifest.flag(flag)
        up, was = spec.exposure(new), spec.exposure(before[flag])
        if up is None or was is None or up > was:
            return True
    return False


def _describe(values: dict[str, Any]) -> str:
    if len(values) == 1:
        return effective_text(next(iter(values.values())))
    return ", ".join(f"{f} {effective_text(v)}" for f, v in sorted(values.items()))


def _label(ladder: ResolvedLadder, values: dict[str, Any]) -> str:
    stage = ladder.position(values)
    name = stage.name if stage else "(off ladder)"
    return f"{name} ({_describe(values)})"
