"""Drills: rehearse a kill or a rollback for real, prove it worked, and put everything back.

A drill changes the live state through the same actions an incident would (``Kill``,
``Release``, ``StageSet``, ``ApplyState``), audited as ``drill.*``, and times each step:
command start → change committed → effect proved. Whatever happens — a step fails, a
proof fails, the operator presses Ctrl-C — it restores the state it found (releasing the
switch it engaged, re-applying the values it moved) and checks that the flag tables are
back row for row. Every drill is recorded in ``flagctl.drills`` with its steps, timings,
verdict and Markdown report.

It refuses to start while a real kill switch is engaged or the rollback state machine is
not NORMAL (unless forced): a drill must never hide or undo a real mitigation. Once it has
started it always returns its result (verdict passed, failed or interrupted) rather than
raising, so the caller can report how far it got and what was restored.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Outcome, execute
from flagctl.actions.kill import Kill, Release
from flagctl.actions.profile import ApplyState, DesiredState
from flagctl.actions.rollback import read_state
from flagctl.actions.stage import StageSet
from flagctl.errors import CheckFailed, FlagctlError, PolicyRefused, UsageError
from flagctl.model.flagtypes import describe
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.rules.kills import overlay
from flagctl.store import drills
from flagctl.store.db import AuditContext
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged
from flagctl.verify import proofs

if TYPE_CHECKING:
    import psycopg

Clock = Callable[[], datetime]
Timer = Callable[[], float]


@dataclass
class Step:
    """One step of a drill, with its timings in milliseconds from the step's start."""

    name: str
    ok: bool = False
    committed_ms: float | None = None  # the change committed
    proved_ms: float | None = None  # its effect proved
    detail: list[str] = field(default_factory=list)
    began: float = field(default=0.0, repr=False)  # the timer when the step's command started

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "ok": self.ok,
            "committed_ms": _round(self.committed_ms),
            "proved_ms": _round(self.proved_ms),
            "detail": self.detail,
        }


@dataclass
class DrillResult:
    id: int
    kind: str
    subject: str
    scope: str
    system: str
    started_at: datetime
    actor: str
    reason: str
    verdict: str = "running"
    steps: list[Step] = field(default_factory=list)
    restored: bool | None = None
    differences: list[str] = field(default_factory=list)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "system": self.system,
            "kind": self.kind,
            "subject": self.subject,
            "scope": self.scope,
            "started_at": self.started_at.isoformat(),
            "actor": self.actor,
            "reason": self.reason,
            "verdict": self.verdict,
            "restored": self.restored,
            "differences": self.differences,
            "error": self.error,
            "steps": [s.to_json() for s in self.steps],
        }


@dataclass
class Drill:
    """What a drill needs from its caller: the connection, the audit context, the clock,
    the sleeper and timer (injected in tests), and a progress callback for the display."""

    conn: psycopg.Connection[Any]
    manifest: Manifest
    audit: AuditContext
    clock: Clock
    sleep: Callable[[float], None] = time.sleep
    timer: Timer = time.perf_counter
    lock_timeout: timedelta = timedelta(seconds=5)
    force: bool = False
    window: timedelta = timedelta(seconds=10)  # the kill proof's observation window
    stats_lag: timedelta = timedelta(seconds=11)
    progress: Callable[[str], None] = lambda text: None

    # ------------------------------------------------------------------ entry points

    def kill(self, switch: str, scope: str = GLOBAL) -> DrillResult:
        """Engage the switch, prove its effect, release it, prove the state is back."""
        self.manifest.switch(switch)
        for flag in self.manifest.switches[switch]:
            check_scope(self.manifest, flag, scope)
        self._preflight()
        result = self._start("kill", switch, scope)
        before = self._state()
        engaged = False
        try:
            step = self._run(result, f"engage {switch} (scope {scope})", Kill(self.manifest, switch, scope))
            engaged = step.ok
            self._prove(step, lambda: self._prove_kill(switch, scope))
            step = self._run(result, f"release {switch}", Release(self.manifest, switch, scope))
            engaged = not step.ok
            self._prove(step, lambda: self._prove_same(before))
        except BaseException as exc:  # a failed step, a failed proof, Ctrl-C: restore, then report
            self._fail(result, exc)
            if engaged:
                self._undo(result, Release(self.manifest, switch, scope, force=True), "release (restoring)")
        finally:
            self._finish(result, before)
        return result

    def rollback(self, ladder: str) -> DrillResult:
        """Step the ladder back one stage at a time to its first, checking each, then put
        every one of its values back as they were."""
        resolved = self.manifest.ladder(ladder)
        self._preflight()
        values = FlagStore(self.conn, self.manifest).snapshot(resolved.flags)
        current = resolved.position(values.globals)
        if current is None:
            raise PolicyRefused(
                f"ladder {ladder} is off its stages: there is nothing to step back from",
                "put it on a stage with flagctl stage set first",
                system=self.manifest.system,
            )
        result = self._start("rollback", ladder, GLOBAL)
        before = self._state()
        start = {flag: values.globals[flag] if flag in values.stored else None for flag in resolved.flags}
        moved = False
        try:
            for stage in reversed(resolved.stages[: current.index]):
                step = self._run(
                    result, f"step back to {stage.name}",
                    StageSet(self.manifest, ladder, stage=stage.name, clock=self.clock, action="drill.stage"),
                )  # fmt: skip
                moved = True
                self._prove(step, lambda s=stage.name: self._prove_stage(ladder, s))  # type: ignore[misc]
            if moved:
                step = self._run(result, f"return to {current.name}", self._restore(ladder, start))
                moved = not step.ok
                self._prove(step, lambda: self._prove_same(before))
            else:
                result.steps.append(Step(f"{ladder} is at its first stage ({current.name})", ok=True))
        except BaseException as exc:  # a failed step, a failed check, Ctrl-C: restore, then report
            self._fail(result, exc)
            if moved:
                self._undo(result, self._restore(ladder, start), f"return to {current.name} (restoring)")
        finally:
            self._finish(result, before)
        return result

    # ------------------------------------------------------------------ steps

    def _run(self, result: DrillResult, name: str, action: Action[Any]) -> Step:
        """Run one change and time it to its commit."""
        step = Step(name)
        result.steps.append(step)
        self.progress(name)
        audit = AuditContext(
            self.audit.actor, f"[drill {result.id}] {self.audit.reason}",
            _drill_action(action), self.audit.command, self.audit.request_id,
        )  # fmt: skip
        step.began = began = self.timer()
        outcome: Outcome = execute(self.conn, action, audit, confirm=None, lock_timeout=self.lock_timeout)
        step.committed_ms = (self.timer() - began) * 1000
        step.detail.append(
            outcome.plan.summary if outcome.applied else (outcome.plan.noop or "nothing to do")
        )
        step.ok = True
        return step

    def _prove(self, step: Step, proof: Callable[[], tuple[bool, list[str]]]) -> None:
        self.progress(f"proving: {step.name}")
        ok, evidence = proof()
        step.proved_ms = (self.timer() - step.began) * 1000
        step.detail.extend(evidence)
        step.ok = ok
        if not ok:
            raise CheckFailed(f"drill step failed: {step.name}: {evidence[0] if evidence else 'not proved'}")

    def _prove_kill(self, switch: str, scope: str) -> tuple[bool, list[str]]:
        """The manifest's kill proof when it defines one (no write to the phase tables in a
        window), else: every flag the switch sets holds its kill value at the scope."""
        settings = self.manifest.switches[switch]
        if self.manifest.model.proofs.phase_tables and scope == GLOBAL:
            self.progress(f"observing the phase tables for {self.window.total_seconds():g}s")
            observed = proofs.observe(self.conn, self.window, self.stats_lag, sleep=self.sleep)
            proof = proofs.prove_kill(self.conn, self.manifest, observed, required=True)
            return bool(proof.passed), [proof.summary, *proof.evidence]
        snapshot = FlagStore(self.conn, self.manifest).snapshot(settings)
        record = next(
            e for e in list_engaged(self.conn, self.manifest) if e.switch == switch and e.scope == scope
        )
        evidence, loose = [], []
        for flag in sorted(settings):
            value = snapshot.at(flag, scope)
            held = value is not None and overlay(value, [record], flag) == value
            if not held:
                loose.append(flag)
            evidence.append(f"{flag} at {scope}: {describe(value)} ({'held' if held else 'NOT held'})")
        summary = (
            f"not held by {switch}: {', '.join(loose)}"
            if loose
            else f"every flag {switch} sets holds its kill value"
        )
        return not loose, [summary, *evidence]

    def _prove_stage(self, ladder: str, stage: str) -> tuple[bool, list[str]]:
        resolved = self.manifest.ladder(ladder)
        values = FlagStore(self.conn, self.manifest).values(resolved.flags)
        at = resolved.position(values)
        found = at.name if at else "off its stages"
        return at is not None and at.name == stage, [f"ladder {ladder} reads {found}"]

    def _prove_same(self, before: dict[str, Any]) -> tuple[bool, list[str]]:
        differences = _differences(before, self._state())
        return not differences, differences or ["the flag tables are back exactly as before the drill"]

    def _restore(self, ladder: str, start: dict[str, Any]) -> ApplyState:
        desired = DesiredState(
            "drill.restore", f"ladder {ladder}: its values from before the drill", {GLOBAL: start}
        )
        return ApplyState(self.manifest, desired, force=True)

    def _undo(self, result: DrillResult, action: Action[Any], name: str) -> None:
        """Restore after a failure or an interruption; a failure to restore is recorded
        (and left for the operator, with the exact command) rather than hidden."""
        try:
            self._run(result, name, action)
        except BaseException as exc:  # recorded; then the original error goes on
            result.steps[-1].detail.append(f"could not restore: {_message(exc)}")

    # ------------------------------------------------------------------ bookkeeping

    def _preflight(self) -> None:
        if self.force:
            return
        engaged = list_engaged(self.conn, self.manifest)
        if engaged:
            names = ", ".join(f"{e.switch} ({e.scope})" for e in engaged)
            raise PolicyRefused(
                f"a real kill switch is engaged ({names}): a drill now could hide or undo it",
                "drill once it is released, or pass --force to drill anyway",
                system=self.manifest.system,
            )
        machine = read_state(self.conn, self.manifest).state
        if machine != "NORMAL":
            raise PolicyRefused(
                f"the rollback state machine is {machine}, not NORMAL: a drill now would get in its way",
                "drill once it is back to NORMAL (flagctl rollback --status), or pass --force",
                system=self.manifest.system,
            )

    def _start(self, kind: str, subject: str, scope: str) -> DrillResult:
        drill_id, started = drills.start(self.conn, self.manifest, kind, subject, scope, self.audit)
        return DrillResult(
            drill_id, kind, subject, scope, self.manifest.system, started, self.audit.actor, self.audit.reason
        )

    def _state(self) -> dict[str, Any]:
        """The flag tables as rows: flagctl's own rows of the system, every bound flag's
        stored value, and the engaged switches."""
        own = drills.own_rows(self.conn, self.manifest)
        bound = [name for name, spec in self.manifest.flags.items() if spec.bound]
        values = FlagStore(self.conn, self.manifest).values(bound) if bound else {}
        switches = sorted((e.switch, e.scope) for e in list_engaged(self.conn, self.manifest))
        return {
            "rows": {(flag, scope): value for flag, scope, value in own},
            "bound": {name: describe(value) for name, value in values.items()},
            "engaged": switches,
        }

    def _fail(self, result: DrillResult, exc: BaseException) -> None:
        result.verdict = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        result.error = _message(exc)

    def _finish(self, result: DrillResult, before: dict[str, Any]) -> None:

        result.differences = _differences(before, self._state())
        result.restored = not result.differences
        if result.verdict == "running":
            result.verdict = "passed" if result.restored else "failed"
        report = markdown(result, self.manifest)
        drills.finish(
            self.conn,
            result.id,
            result.verdict,
            [st.to_json() for st in result.steps],
            result.restored,
            report,
        )


def _differences(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    found = []
    for key in sorted(set(before["rows"]) | set(after["rows"])):
        was, now = before["rows"].get(key), after["rows"].get(key)
        if was != now:
            found.append(f"flagctl.flag_state {key[0]} ({key[1]}): {was or 'no row'} → {now or 'no row'}")
    for name in sorted(before["bound"]):
        if before["bound"][name] != after["bound"].get(name):
            found.append(f"{name} (bound): {before['bound'][name]} → {after['bound'].get(name)}")
    if before["engaged"] != after["engaged"]:
        found.append(f"engaged kill switches: {before['engaged']} → {after['engaged']}")
    return found


def _drill_action(action: Action[Any]) -> str:
    """How a drill's changes are named in the audit trail: drill.kill, drill.release, …"""
    name = action.name
    return name if name.startswith("drill.") else f"drill.{name.split('.')[0]}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, FlagctlError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"{type(exc).__name__}: {exc}"


def _round(ms: float | None) -> float | None:
    return None if ms is None else round(ms, 1)


def markdown(result: DrillResult, manifest: Manifest) -> str:
    """The report a person attaches to a change ticket."""
    what = (
        f"kill switch `{result.subject}` (scope `{result.scope}`)"
        if result.kind == "kill"
        else f"rollback of ladder `{result.subject}`"
    )
    lines = [
        f"# Drill {result.id}: {what} — {result.verdict.upper()}",
        "",
        f"- System: `{result.system}` ({manifest.model.description or 'no description'})",
        f"- Started: {result.started_at:%Y-%m-%d %H:%M:%S %Z}",
        f"- Run by: {result.actor}",
        f"- Reason: {result.reason}",
        f"- State restored exactly: {'yes' if result.restored else 'NO'}",
    ]
    if result.error:
        lines.append(f"- Stopped by: {result.error}")
    lines += [
        "",
        "## Steps",
        "",
        "| # | step | result | committed (ms) | effect proved (ms) |",
        "| ---: | --- | --- | ---: | ---: |",
    ]
    for number, step in enumerate(result.steps, 1):
        lines.append(
            f"| {number} | {step.name} | {'ok' if step.ok else 'FAILED'} | {_ms(step.committed_ms)} | {_ms(step.proved_ms)} |"
        )
    lines += ["", "## Evidence", ""]
    for number, step in enumerate(result.steps, 1):
        lines.append(f"{number}. **{step.name}**")
        lines += [f"   - {line}" for line in step.detail]
    if result.differences:
        lines += ["", "## Left different from before the drill", ""]
        lines += [f"- {d}" for d in result.differences]
    lines += [
        "",
        "Time-to-mitigate per step: command start → change committed → effect proved, measured",
        f"by flagctl (`flagctl drill show {result.id}`); every change is in the audit trail as `drill.*`.",
        "",
    ]
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def list_drills(conn: psycopg.Connection[Any], manifest: Manifest, limit: int = 20) -> list[dict[str, Any]]:
    return [_drill_json(row) for row in drills.recent(conn, manifest, limit)]


def show_drill(conn: psycopg.Connection[Any], manifest: Manifest, drill_id: int) -> dict[str, Any]:
    row = drills.one(conn, manifest, drill_id)
    if row is None:
        raise UsageError(f"no drill {drill_id} for system {manifest.system}", "flagctl drill list shows them")
    return {**_drill_json(row[:-1]), "report": row[-1]}


def _drill_json(row: tuple[Any, ...]) -> dict[str, Any]:
    drill_id, kind, subject, scope, started, finished, db_user, actor, reason, verdict, steps, restored = row
    return {
        "id": drill_id,
        "kind": kind,
        "subject": subject,
        "scope": scope,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat() if finished else None,
        "db_user": db_user,
        "actor": actor,
        "reason": reason,
        "verdict": verdict,
        "restored": restored,
        "steps": steps,
    }
