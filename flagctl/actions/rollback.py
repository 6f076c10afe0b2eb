"""The watchdog: guardrails drive the rollback state machine (``flagctl.rules.rollback``), and
rolling back runs the same typed actions as the commands do.

    NORMAL → DEGRADED → ROLLBACK_PENDING → ROLLED_BACK → RECOVERY_VERIFY → NORMAL
      ↑___________________ manual override ___________________________________|

Each ``tick`` evaluates the guardrails (the manifest's ``rollback.guardrails``, or all) and
advances the state kept in ``flagctl.rollback_state`` (every transition is audited):
- a breach maps to a state by severity (``rollback.on``; default P1 → ROLLBACK_PENDING,
  P2 → DEGRADED); DEGRADED returns to NORMAL when all are green again;
- in ROLLBACK_PENDING, with ``auto``, the rollback actions run (apply a profile, step a
  ladder back one stage, engage a kill switch), each in its own audited transaction,
  then ROLLED_BACK;
- ROLLED_BACK moves to RECOVERY_VERIFY once all are green, and RECOVERY_VERIFY to NORMAL
  after ``rollback.recovery`` of continuous green; a breach sends it back to ROLLED_BACK.
The clock is injected, so recovery times are tested without sleeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan, execute
from flagctl.actions.kill import Kill
from flagctl.actions.profile import ApplyState, profile_state
from flagctl.actions.stage import Clock, StageStep
from flagctl.errors import FlagctlError, UsageError
from flagctl.model.durations import parse_duration
from flagctl.model.manifest import Manifest, RollbackAction, RollbackSpec
from flagctl.rules.rollback import MachineState, next_state
from flagctl.store.db import AuditContext, transaction
from flagctl.store.rollback_state import hold_state
from flagctl.store.rollback_state import read_state as read_state
from flagctl.store.rollback_state import store_state as store_state
from flagctl.verify import guardrails as guard_mod

if TYPE_CHECKING:
    import psycopg

    from flagctl.verify.guardrails import GuardrailResult


@dataclass
class Tick:
    at: datetime
    before: str
    after: str
    results: list[GuardrailResult]
    actions: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rollback_needed(self) -> bool:
        return self.after == "ROLLBACK_PENDING" or bool(self.actions) or self.before == "ROLLBACK_PENDING"

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "state_before": self.before,
            "state": self.after,
            "rollback_needed": self.rollback_needed,
            "guardrails": [r.to_json() for r in self.results],
            "actions": self.actions,
            "errors": self.errors,
        }


def spec_of(manifest: Manifest) -> RollbackSpec:
    return manifest.model.rollback or RollbackSpec()


def rollback_action(manifest: Manifest, spec: RollbackAction, clock: Clock) -> Action[Any]:
    """The typed action a manifest rollback action stands for."""
    if spec.profile:
        return ApplyState(manifest, profile_state(manifest, spec.profile, action="rollback.auto"))
    if spec.step_back:
        return StageStep(manifest, spec.step_back, -1, clock=clock, action="rollback.auto")
    assert spec.kill is not None
    return Kill(manifest, spec.kill)


def run_rollback(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    audit: AuditContext,
    clock: Clock,
    lock_timeout: timedelta,
) -> list[str]:
    """Run the manifest's rollback actions in order, each an ordinary audited action."""
    actions = spec_of(manifest).actions
    if not actions:
        raise UsageError("rollback pending, but the manifest's rollback.actions is empty")
    done = []
    for spec in actions:
        outcome = execute(
            conn, rollback_action(manifest, spec, clock), audit, confirm=None, lock_timeout=lock_timeout
        )
        done.append(spec.describe() + ("" if outcome.applied else f" ({outcome.plan.noop})"))
    return done


def tick(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    clock: Clock,
    audit: AuditContext,
    *,
    auto: bool,
    lock_timeout: timedelta = timedelta(seconds=5),
    watched_since: datetime | None = None,
) -> Tick:
    """Evaluate the guardrails, advance the machine, and (``auto``) roll back.
    ``watched_since``: the caller was blind until then (see ``rules.rollback.next_state``)."""
    now = clock()
    spec = spec_of(manifest)
    names = spec.guardrails if spec.guardrails is not None else list(manifest.model.guardrails)
    if not names:
        raise UsageError("watch needs guardrails: the manifest has none (or rollback.guardrails is empty)")
    results = [guard_mod.evaluate(conn, name, manifest.model.guardrails[name]) for name in names]
    failed = [r for r in results if r.failed]
    unsure = [r for r in results if r.inconclusive]
    worst = "P1" if any(r.severity == "P1" for r in failed) else ("P2" if failed else None)
    current = read_state(conn, manifest)
    new = next_state(
        current,
        worst,
        {k: str(v) for k, v in spec.on.items()},
        now,
        parse_duration(spec.recovery),
        watched_since,
        unsure=bool(unsure),
    )
    result = Tick(now, current.state, new.state, results)
    if new.state == "ROLLBACK_PENDING" and auto:
        why = "; ".join(r.describe() for r in failed) or "rollback pending"
        acting = replace(audit, reason=f"{audit.reason}: {why}".strip(": "), action="rollback.auto")
        try:
            result.actions = run_rollback(conn, manifest, acting, clock, lock_timeout)
            new = MachineState("ROLLED_BACK", now, None)
            result.after = new.state
        except FlagctlError as exc:
            result.errors.append(exc.message)
    if new != current or current.since is None:
        reason = "; ".join(r.describe() for r in failed + unsure) or "all guardrails green"
        context = replace(audit, reason=f"{current.state} → {new.state}: {reason}", action="rollback.state")
        with transaction(conn, context) as tx:
            store_state(tx, manifest, new, result.to_json())
    return result


@dataclass
class OverridePlan(Plan):
    from_state: str = ""


@dataclass
class OverrideNormal(Action[OverridePlan]):
    """The manual override: back to NORMAL from any state."""

    manifest: Manifest
    clock: Clock

    @property
    def name(self) -> str:
        return "rollback.override"

    def honours_freezes(self) -> bool:
        return False  # changes no flag

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> OverridePlan:
        if locked:
            hold_state(conn, self.manifest)
        current = read_state(conn, self.manifest).state
        summary = f"rollback state of {self.manifest.system}: {current} → NORMAL (manual override)"
        if current == "NORMAL":
            return OverridePlan("rollback.override", summary, noop="the rollback state is already NORMAL")
        return OverridePlan(
            "rollback.override", summary,
            checks=["a manual override; the next watch evaluation starts from NORMAL"],
            from_state=current,
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: OverridePlan) -> None:
        state = MachineState("NORMAL", self.clock(), None)
        store_state(conn, self.manifest, state, {"override": True, "from": plan.from_state})
