"""Ladder rules that need no database: exposure order, --percent within a stage, and
the one rule for changing a ladder's flag outside the ladder. Pure."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.errors import PolicyRefused, UsageError
from flagctl.model.flagtypes import effective_text
from flagctl.model.manifest import Manifest, ResolvedLadder, ResolvedStage

if TYPE_CHECKING:
    from flagctl.model.change import Change

from flagctl.model.scopes import GLOBAL


def check_percent(ladder: ResolvedLadder, stage: ResolvedStage, percent: int | None) -> None:
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


def outside_ladder(
    manifest: Manifest, changes: list[Change], force: bool, target: str
) -> tuple[bool, list[str]]:
    """The one rule for changing a ladder's flag directly (``set``, profiles, restore):
    lowering exposure is always allowed; raising it skips the ladder's bake and guardrails,
    so it is refused unless forced. Returns (forced, checks)."""
    forced = False
    checks: list[str] = []
    for change in changes:
        ladders = manifest.ladders_of(change.flag) if change.scope == GLOBAL else []
        if not ladders:
            continue
        if not exposure_increases(manifest, {change.flag: change.before}, {change.flag: change.after}):
            checks.append(f"{change.flag}: lowering exposure is always allowed")
            continue
        if not force:
            raise PolicyRefused(
                f"{change.flag} is controlled by ladder {ladders[0].name}; raising its exposure directly "
                "would skip the ladder's bake and guardrails",
                f"use: flagctl stage set {ladders[0].name} STAGE (or --force with --reason; marked in the audit)",
                system=manifest.system,
                target=target,
            )
        forced = True
        checks.append(f"forced: raises {change.flag} outside ladder {ladders[0].name}")
    return forced, checks


def describe_values(values: dict[str, Any]) -> str:
    if len(values) == 1:
        return effective_text(next(iter(values.values())))
    return ", ".join(f"{f} {effective_text(v)}" for f, v in sorted(values.items()))


def label(ladder: ResolvedLadder, values: dict[str, Any]) -> str:
    stage = ladder.position(values)
    name = stage.name if stage else "(off ladder)"
    return f"{name} ({describe_values(values)})"


def needs_approval(manifest: Manifest, changes: list[Change], forced: bool) -> str | None:
    """Why the manifest's ``approvals:`` want a second person for these changes (None: they
    do not): a forced change, or a rollout raised to ``at_or_above`` percent or more."""
    from flagctl.model.values import Rollout

    rules = manifest.model.approvals
    if rules is None:
        return None
    if rules.forced and forced:
        return "a forced change needs a second person (approvals.forced)"
    if rules.at_or_above is None:
        return None
    for change in changes:
        after, before = change.after, change.before
        if not isinstance(after, Rollout) or not after.enabled or after.percent < rules.at_or_above:
            continue
        was = before.percent if isinstance(before, Rollout) and before.enabled else -1
        if after.percent > was:
            return (
                f"raising {change.flag} to {after.percent}% needs a second person "
                f"(approvals.at_or_above: {rules.at_or_above})"
            )
    return None
