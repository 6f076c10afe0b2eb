"""StageSet: move a ladder to a stage.

Rules for ``stage set`` (the pure ones are in ``flagctl.rules.ladder``):
- backward, any distance: always allowed;
- forward: one stage at a time, after the current stage's bake time, with the ladder's
  required guardrails passing; ``--force`` skips a stage or a bake (never a guardrail);
- a percent change inside a range stage: an increase needs the guardrails, not a bake;
- nothing moves while a kill switch holds one of the ladder's flags.
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
from flagctl.rules.kills import holding
from flagctl.rules.ladder import check_percent, describe_values, exposure_increases, label, needs_approval
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged
from flagctl.verify import guardrails
from flagctl.views.stage import entered_at

if TYPE_CHECKING:
    import psycopg

    from flagctl.verify.guardrails import GuardrailResult

Clock = Callable[[], datetime]


@dataclass
class StagePlan(Plan):
    ladder: str = ""
    stage: str = ""


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
        values = FlagStore(conn, self.manifest).values(resolved.flags)
        current = resolved.position(values)
        summary = f"ladder {resolved.name}: one stage {'forward' if self.step > 0 else 'back'}"
        if current is None:
            return StagePlan(self.action, summary, ladder=resolved.name, noop=(
                f"ladder {resolved.name} is off its stages ({label(resolved, values)}): "
                "name the stage with flagctl stage set"))  # fmt: skip
        index = current.index + self.step
        if not 0 <= index < len(resolved.stages):
            edge = "last" if self.step > 0 else "first"
            return StagePlan(self.action, summary, ladder=resolved.name, stage=current.name,
                             noop=f"ladder {resolved.name} is at its {edge} stage, {current.name}")  # fmt: skip
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
    values = {flag: snapshot.globals[flag] for flag in ladder.flags}
    current = ladder.position(values)
    new_values = dict(values)
    for flag, spec in target.specs.items():
        new_values[flag] = spec.value(percent if spec.takes_percent else None)
    summary = f"ladder {ladder.name}: {label(ladder, values)} → {label(ladder, new_values)}"
    refuse = refuser(manifest, ladder)

    engaged = list_engaged(conn, manifest)
    holders = sorted({e.switch for f in ladder.flags for e in holding(engaged, f, GLOBAL)})
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
        return StagePlan(
            "stage.set",
            summary,
            ladder=ladder.name,
            stage=target.name,
            noop=f"ladder {ladder.name} is already at {label(ladder, values)}",
        )

    checks: list[str] = []
    forced = False
    exposure_up = exposure_increases(manifest, values, new_values)
    if current is None:
        if exposure_up and not force:
            raise refuse(
                f"ladder {ladder.name} is off its stages ({describe_values(values)}); "
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
        check_guardrails(conn, manifest, (*ladder.require, *target.require), checks, refuse, evidence)
    if ladder.subjects and not locked:
        checks.extend(_blast_radius(conn, manifest, ladder, values, new_values))
    return StagePlan(
        "stage.set",
        summary,
        changes=changes,
        checks=checks,
        forced=forced,
        snapshot=snapshot,
        ladder=ladder.name,
        stage=target.name,
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
        raise refuse(
            "required guardrail failed: " + "; ".join(r.describe() for r in failed),
            "forward moves need every required guardrail to pass (--force does not skip them)",
            detail={"guardrails": [r.to_json() for r in failed]},
        )


def refuser(manifest: Manifest, ladder: ResolvedLadder) -> Callable[..., PolicyRefused]:
    def refuse(message: str, hint: str, detail: dict[str, object] | None = None) -> PolicyRefused:
        return PolicyRefused(
            message, hint, system=manifest.system, target=f"ladder:{ladder.name}", detail=detail
        )

    return refuse
