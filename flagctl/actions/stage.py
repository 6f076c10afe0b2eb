"""StageSet: move a ladder to a stage.

Rules for ``stage set`` (the pure ones are in ``flagctl.rules.ladder``):
- backward, any distance: always allowed;
- forward: one stage at a time, after the current stage's bake time, with the ladder's
  required guardrails passing; ``--force`` skips a stage or a bake (never a guardrail);
- a percent change inside a range stage: an increase needs the guardrails, not a bake;
- under a kill switch holding the ladder's flags, the ladder stands at the stage beneath
  the kill (the base the kill recorded: what releasing it restores). A backward move
  moves that base — the flags keep the kill's values, and the release lands at the stage
  moved to; a forward move is refused until the kill is released.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

from flagctl.actions.base import Plan, Requestable
from flagctl.errors import PermissionDenied, PolicyRefused
from flagctl.model.change import Change
from flagctl.model.durations import format_duration
from flagctl.model.manifest import Manifest, ResolvedLadder, ResolvedStage
from flagctl.model.scopes import GLOBAL
from flagctl.rules.kills import Engaged, beneath, engaged_at, overlay
from flagctl.rules.ladder import check_percent, describe_values, exposure_increases, label, needs_approval
from flagctl.store.audit import record_event
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged, move_base
from flagctl.verify import guardrails
from flagctl.views.stage import entered_at

if TYPE_CHECKING:
    import psycopg

    from flagctl.verify.guardrails import GuardrailResult

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class BaseMove:
    """A kill's recorded base, rewritten by a backward move beneath it: the switch, and
    per flag the new base (``prior``) and what the kill leaves over it (``applied``)."""

    switch: str
    prior: dict[str, Any]
    applied: dict[str, Any]


@dataclass
class StagePlan(Plan):
    ladder: str = ""
    stage: str = ""
    killed_by: list[str] = field(default_factory=list)  # kill switches holding the ladder's flags
    beneath: list[Change] = field(default_factory=list)  # the bases they recorded, moved
    moves: list[BaseMove] = field(default_factory=list)  # the engagements rewritten for it

    def details(self) -> dict[str, Any]:
        return {"killed_by": self.killed_by, "beneath": [c.to_json() for c in self.beneath]}

    def detail_lines(self) -> list[str]:
        under = ", ".join(self.killed_by)
        return [f"  {c.flag} beneath kill switch {under}: {c.describe()}" for c in self.beneath]


@dataclass
class LadderMove(Requestable[StagePlan]):
    """What every move of a ladder shares: the ladder, --force, the clock for bake times,
    the audit name, and the guardrail results of the unlocked plan, which the locked plan
    reuses (see ``slow_checks``)."""

    manifest: Manifest
    ladder: str
    force: bool = field(default=False, kw_only=True)
    clock: Clock = field(default=lambda: datetime.now(UTC), kw_only=True)
    action: str = field(default="stage.set", kw_only=True)
    evidence: dict[str, GuardrailResult] = field(
        default_factory=dict, repr=False, compare=False, kw_only=True
    )
    slow_checks: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return self.action

    def apply(self, conn: psycopg.Connection[Any], plan: StagePlan) -> None:
        FlagStore(conn, self.manifest).write(plan.changes)
        for move in plan.moves:
            move_base(conn, self.manifest, move.switch, move.prior, move.applied)
        record_verdicts(conn, self.manifest, self.ladder, self.evidence)

    def approval(self, plan: StagePlan) -> str | None:
        return needs_approval(self.manifest, plan.changes, plan.forced)

    def request_spec(self, plan: StagePlan) -> dict[str, Any]:
        """The stage the plan moves to (a step is requested as the move it would make)."""
        percent = getattr(self, "percent", None)
        return {"kind": "stage.set", "ladder": self.ladder, "stage": plan.stage, "percent": percent,
                "force": self.force}  # fmt: skip


@dataclass
class StageSet(LadderMove):
    """Move ladder ``ladder`` to stage ``stage`` (``percent`` within a range stage)."""

    stage: str
    percent: int | None = None

    def validate(self) -> None:
        resolved = self.manifest.ladder(self.ladder)
        check_percent(resolved, resolved.stage(self.stage), self.percent)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> StagePlan:
        self.validate()
        plan = plan_stage_set(
            conn, self.manifest, self.manifest.ladder(self.ladder), self.stage,
            percent=self.percent, force=self.force, clock=self.clock, locked=locked, evidence=self.evidence,
        )  # fmt: skip
        plan.action = self.action
        return plan


@dataclass
class StageStep(LadderMove):
    """Move a ladder one stage forward (``step=1``: ``stage next``) or back (``step=-1``:
    ``stage rollback``, and the watchdog's ``step_back``), from wherever it stands when the
    move is planned under the lock — so two racing steps never skip a stage."""

    step: int

    def validate(self) -> None:
        self.manifest.ladder(self.ladder)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> StagePlan:
        resolved = self.manifest.ladder(self.ladder)
        live = FlagStore(conn, self.manifest).values(resolved.flags)
        values, killed_by = beneath(
            list_engaged(conn, self.manifest), live, _defaults(self.manifest, resolved)
        )
        current = resolved.position(values)
        summary = f"ladder {resolved.name}: one stage {'forward' if self.step > 0 else 'back'}"
        under = f" (beneath kill switch {', '.join(killed_by)})" if killed_by else ""
        if current is None:
            return StagePlan(self.action, summary, ladder=resolved.name, killed_by=killed_by, noop=(
                f"ladder {resolved.name} is off its stages ({label(resolved, values)}){under}: "
                "name the stage with flagctl stage set"))  # fmt: skip
        index = current.index + self.step
        if not 0 <= index < len(resolved.stages):
            edge = "last" if self.step > 0 else "first"
            return StagePlan(self.action, summary, ladder=resolved.name, stage=current.name, killed_by=killed_by,
                             noop=f"ladder {resolved.name} is at its {edge} stage, {current.name}{under}")  # fmt: skip
        target = resolved.stages[index].name
        return StageSet(self.manifest, self.ladder, target, force=self.force, clock=self.clock,
                        action=self.action, evidence=self.evidence).plan(conn, locked)  # fmt: skip


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
    evidence: dict[str, GuardrailResult] | None = None,
) -> StagePlan:
    target = ladder.stage(target_name)
    check_percent(ladder, target, percent)
    snapshot = FlagStore(conn, manifest).for_change(ladder.flags, locked=locked)
    live = {flag: snapshot.globals[flag] for flag in ladder.flags}
    engaged = list_engaged(conn, manifest, lock=locked)
    values, killed_by = beneath(engaged, live, _defaults(manifest, ladder))  # live, but a kill's base
    current = ladder.position(values)
    new_values = dict(values)
    for flag, spec in target.specs.items():
        new_values[flag] = spec.value(percent if spec.takes_percent else None)
    under = f" beneath kill switch {', '.join(killed_by)}" if killed_by else ""
    summary = f"ladder {ladder.name}: {label(ladder, values)} → {label(ladder, new_values)}{under}"
    refuse = refuser(manifest, ladder)
    held = {flag: engaged_at(engaged, flag, GLOBAL) for flag in ladder.flags}
    changes, base_changes = [], []
    for flag in ladder.flags:
        if held[flag]:  # the row keeps the kill's values, over the moved base
            if new_values[flag] == values[flag]:
                continue
            base_changes.append(Change(flag, GLOBAL, values[flag], new_values[flag]))
            after = overlay(new_values[flag], held[flag], flag)
        else:
            after = new_values[flag]
        if live[flag] != after:
            changes.append(Change(flag, GLOBAL, live[flag], after))
    plan = StagePlan("stage.set", summary, ladder=ladder.name, stage=target.name, killed_by=killed_by)
    if not changes and not base_changes:
        plan.noop = f"ladder {ladder.name} is already at {label(ladder, values)}{under}"
        return plan

    checks: list[str] = []
    forced = False
    exposure_up = exposure_increases(manifest, values, new_values)
    backward = (target.index < current.index or (target.index == current.index and not exposure_up)
                if current is not None else not exposure_up)  # fmt: skip
    if killed_by:
        _check_under_kill(manifest, ladder, killed_by, backward, base_changes, values, refuse)
        checks.append(
            f"under kill switch {', '.join(killed_by)} the flags keep the kill's values; "
            f"the stage beneath it moves, and releasing it restores {label(ladder, new_values)}"
        )
    if current is None:
        if exposure_up and not force:
            raise refuse(
                f"ladder {ladder.name} is off its stages ({describe_values(values)}); "
                "cannot tell which move is one stage forward",
                "move to a stage below the current values, or use --force with --reason",
            )
        forced = exposure_up
        checks.append(f"off the ladder before the move; {'forced' if forced else 'exposure goes down'}")
    elif backward:
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
        check_guardrails(conn, manifest, (*ladder.require, *target.require), checks, refuse, evidence)
    if ladder.subjects and not locked:
        checks.extend(_blast_radius(conn, manifest, ladder, values, new_values))
    plan.changes, plan.checks, plan.forced, plan.snapshot = changes, checks, forced, snapshot
    plan.beneath = base_changes
    plan.moves = _base_moves(engaged, base_changes)
    return plan


def _defaults(manifest: Manifest, ladder: ResolvedLadder) -> dict[str, Any]:
    return {flag: manifest.flags[flag].default_value() for flag in ladder.flags}


def _check_under_kill(
    manifest: Manifest,
    ladder: ResolvedLadder,
    killed_by: list[str],
    backward: bool,
    base_changes: list[Change],
    values: dict[str, Any],
    refuse: Callable[..., PolicyRefused],
) -> None:
    """Under a kill only a backward move is made, and only one that narrows every base it
    moves (the database's guard allows no more); anything else waits for the release."""
    names = ", ".join(killed_by)
    hint = f"release it first: flagctl release {killed_by[0]} --reason …; then move the ladder"
    if not backward:
        raise refuse(
            f"kill switch {names} holds ladder {ladder.name}'s flags ({label(ladder, values)} beneath it); "
            "a forward move under a kill is refused",
            hint,
        )
    for change in base_changes:
        spec = manifest.flag(change.flag)
        up, was = spec.exposure(change.after), spec.exposure(change.before)
        if up is not None and was is not None and up > was:
            raise refuse(
                f"kill switch {names} holds {change.flag}; this move would widen it beneath the kill "
                f"({change.describe()}), and a move under a kill only narrows what the release restores",
                hint,
            )


def _base_moves(engaged: list[Engaged], base_changes: list[Change]) -> list[BaseMove]:
    """Every global engagement holding a moved flag records the new base, and what it left
    over it (the base overlaid with it and the kills engaged before it)."""
    moves = []
    for record in engaged:
        moved = [c for c in base_changes if record.covers(c.flag, GLOBAL) and record.scope == GLOBAL]
        if not moved:
            continue
        prior, applied = dict(record.prior), dict(record.applied)
        for change in moved:
            before = [e for e in engaged if e.covers(change.flag, GLOBAL) and e.seq <= record.seq]
            prior[change.flag] = change.after
            applied[change.flag] = overlay(change.after, before, change.flag)
        moves.append(BaseMove(record.switch, prior, applied))
    return moves


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


def check_guardrails(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    required: tuple[str, ...],
    checks: list[str],
    refuse: Callable[..., PolicyRefused],
    evidence: dict[str, GuardrailResult] | None = None,
) -> None:
    """Run the required guardrails — or reuse ``evidence``, their results from the unlocked
    plan, so the locked plan holds no lock while a guardrail query runs."""
    evidence = {} if evidence is None else evidence
    failed = []
    for name in dict.fromkeys(required):
        if name not in evidence:
            evidence[name] = guardrails.evaluate(conn, name, manifest.model.guardrails[name])
        result = evidence[name]
        if result.sqlstate == "42501":  # the operator may not even read what the guardrail reads
            raise PermissionDenied(
                f"cannot check guardrail {name}: {result.error}",
                "ask for SELECT on the tables the manifest's guardrails read, or use another role",
            )
        checks.append(result.describe())
        if not result.passed:
            failed.append(result)
    if failed:
        what = "failed" if any(r.failed for r in failed) else "inconclusive"
        raise refuse(
            f"required guardrail {what}: " + "; ".join(r.describe() for r in failed),
            "forward moves need every required guardrail to pass (--force does not skip them)"
            + (
                "; an inconclusive one needs more samples: wait, and try again"
                if what == "inconclusive"
                else ""
            ),
            detail={"guardrails": [r.to_json() for r in failed]},
        )


def record_verdicts(
    conn: psycopg.Connection[Any], manifest: Manifest, ladder: str, evidence: dict[str, GuardrailResult]
) -> None:
    """The guardrail verdicts a move was allowed on, as an event of the move's own audited
    transaction (target ``ladder:NAME``); a refused move records them in its refusal."""
    if evidence:
        results = [result.to_json() for result in evidence.values()]
        record_event(conn, "guardrails", manifest.system, None, f"ladder:{ladder}", {"guardrails": results})


def refuser(manifest: Manifest, ladder: ResolvedLadder) -> Callable[..., PolicyRefused]:
    def refuse(message: str, hint: str, detail: dict[str, object] | None = None) -> PolicyRefused:
        return PolicyRefused(
            message, hint, system=manifest.system, target=f"ladder:{ladder.name}", detail=detail
        )

    return refuse
