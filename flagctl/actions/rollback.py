"""The recommender's six-state rollback machine, driven by guardrails.

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

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Plan
from flagctl.errors import FlagctlError, UsageError
from flagctl.model.durations import format_duration, parse_duration
from flagctl.model.manifest import Manifest, RollbackAction, RollbackSpec
from flagctl.store.db import AuditContext, transaction
from flagctl.verify import guardrails as guard_mod

if TYPE_CHECKING:
    import psycopg

    from flagctl.verify.guardrails import GuardrailResult


@dataclass(frozen=True)
class MachineState:
    state: str
    since: datetime | None
    green_since: datetime | None


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


def read_state(conn: psycopg.Connection[Any], manifest: Manifest) -> MachineState:
    row = conn.execute(
        "SELECT state, since, green_since FROM flagctl.rollback_state WHERE system = %s", (manifest.system,)
    ).fetchone()
    return MachineState("NORMAL", None, None) if row is None else MachineState(*row)


# A recorded time is never later than the database's own clock: a simulated clock (the
# demo's, running ahead past a recovery period) decides transitions but cannot write the future.
STORE_STATE = """
INSERT INTO flagctl.rollback_state (system, state, since, green_since, detail)
VALUES (%s, %s, least(%s::timestamptz, now()), least(%s::timestamptz, now()), %s)
    ON CONFLICT (system) DO UPDATE SET state = excluded.state, since = excluded.since,
       green_since = excluded.green_since, detail = excluded.detail
"""


def store_state(
    conn: psycopg.Connection[Any], manifest: Manifest, state: MachineState, detail: dict[str, Any]
) -> None:
    """Write the machine's state (inside the caller's audited transaction)."""
    from psycopg.types.json import Jsonb

    conn.execute(STORE_STATE, (manifest.system, state.state, state.since, state.green_since, Jsonb(detail)))


def next_state(
    current: MachineState, worst: str | None, on: dict[str, str], now: datetime, recovery: Any
) -> MachineState:
    """The machine's transition function (no side effects)."""
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
    # all green (or a breach whose severity maps to nothing)
    if state == "DEGRADED":
        return MachineState("NORMAL", now, None)
    if state == "ROLLED_BACK":
        return MachineState("RECOVERY_VERIFY", now, now)
    if state == "RECOVERY_VERIFY":
        green_since = current.green_since or now
        if now - green_since >= recovery:
            return MachineState("NORMAL", now, None)
        return MachineState(state, current.since, green_since)
    return MachineState(state, current.since or now, None)


RunActions = Callable[[list[RollbackAction], AuditContext], list[str]]


def tick(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    now: datetime,
    audit: AuditContext,
    run_actions: RunActions | None,
) -> Tick:
    """Evaluate the guardrails, advance the machine, and (given ``run_actions``) roll back."""
    spec = spec_of(manifest)
    names = spec.guardrails if spec.guardrails is not None else list(manifest.model.guardrails)
    if not names:
        raise UsageError("watch needs guardrails: the manifest has none (or rollback.guardrails is empty)")
    results = [guard_mod.evaluate(conn, name, manifest.model.guardrails[name]) for name in names]
    failed = [r for r in results if not r.passed]
    worst = "P1" if any(r.severity == "P1" for r in failed) else ("P2" if failed else None)
    current = read_state(conn, manifest)
    new = next_state(
        current, worst, {k: str(v) for k, v in spec.on.items()}, now, parse_duration(spec.recovery)
    )
    result = Tick(now, current.state, new.state, results)
    if new.state == "ROLLBACK_PENDING" and run_actions is not None:
        why = "; ".join(r.describe() for r in failed) or "rollback pending"
        acting = AuditContext(
            audit.actor, f"{audit.reason}: {why}".strip(": "), "rollback.auto", audit.command
        )
        try:
            result.actions = run_actions(spec.actions, acting)
            new = MachineState("ROLLED_BACK", now, None)
            result.after = new.state
        except FlagctlError as exc:
            result.errors.append(exc.message)
    if new != current or current.since is None:
        reason = "; ".join(r.describe() for r in failed) or "all guardrails green"
        context = AuditContext(
            audit.actor, f"{current.state} → {new.state}: {reason}", "rollback.state", audit.command
        )
        with transaction(conn, context) as tx:
            store_state(tx, manifest, new, result.to_json())
    return result


def plan_override(conn: psycopg.Connection[Any], manifest: Manifest, now: datetime, locked: bool) -> Plan:
    """The manual override: back to NORMAL from any state."""
    if locked:
        conn.execute("SELECT 1 FROM flagctl.rollback_state WHERE system = %s FOR UPDATE", (manifest.system,))
    current = read_state(conn, manifest).state
    summary = f"rollback state of {manifest.system}: {current} → NORMAL (manual override)"
    if current == "NORMAL":
        return Plan("rollback.override", summary, noop="the rollback state is already NORMAL")
    return Plan("rollback.override", summary, checks=["a manual override; the next watch evaluation starts from NORMAL"],
                data={"from": current, "at": now})  # fmt: skip


def apply_override(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    store_state(
        conn,
        manifest,
        MachineState("NORMAL", plan.data["at"], None),
        {"override": True, "from": plan.data["from"]},
    )


def describe(state: MachineState, now: datetime, recovery: Any) -> str:
    text = state.state
    if state.since:
        text += f" for {format_duration(now - state.since)}"
    if state.state == "RECOVERY_VERIFY" and state.green_since:
        left = recovery - (now - state.green_since)
        text += f" (green for {format_duration(now - state.green_since)}; NORMAL in {format_duration(left)})"
    return text
