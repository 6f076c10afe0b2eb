"""Rollouts that run themselves: a ladder walked to a target stage by a runner.

``flagctl rollout start LADDER [--to STAGE]`` records the rollout; a runner (``flagctl
run``, or ``run_once`` from Python) then, for each rollout in flight:

- analyses the current stage every ``interval`` with its ``analysis`` guardrails (the
  ladder's ``analysis:``, overridden per stage), each analysis recorded with every
  guardrail's verdict and sample count;
- **advances** one stage once the stage's bake is over and ``passes`` consecutive analyses
  passed — through the very ``StageStep`` a person's ``stage next`` runs, so bakes,
  required guardrails, freezes, kills and approvals hold it exactly as they hold a person
  (a frozen or killed ladder waits; a move that needs approval waits for its request);
- **rolls back** to the stage the rollout started from once ``failures`` analyses of the
  stage failed (a backward move, which no freeze or kill blocks);
- **pauses** — never advances — on an inconclusive analysis, until ``rollout resume``.

Every decision is a write of the rollout's row inside a declared ``rollout.*`` change (the
database audits it; ``routines/98_rollouts.sql``), and the row is the state: a runner that
restarts picks up where the last one was. One runner acts on a ladder at a time: it holds a
session advisory lock on it, and a second runner leaves the ladder alone while it is held.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan, execute, one_line
from flagctl.actions.stage import refuser
from flagctl.errors import (
    ConflictError,
    FlagctlError,
    NeedsApproval,
    PermissionDenied,
    PolicyRefused,
    UsageError,
)
from flagctl.model.durations import format_duration
from flagctl.store import rollouts as store
from flagctl.store.db import AuditContext, transaction, translate
from flagctl.store.rollouts import RolloutRow
from flagctl.verify import guardrails
from flagctl.verify.guardrails import GuardrailResult, Verdict
from flagctl.views.stage import position

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest, ResolvedLadder

Clock = Callable[[], datetime]
SCHEDULES = "#schedules"  # the lock the runner that applies a system's scheduled changes holds


def in_flight_of(conn: psycopg.Connection[Any], manifest: Manifest, ladder: str) -> RolloutRow | None:
    found = [row for row in store.latest(conn, manifest.system, ladder) if row.in_flight]
    return found[0] if found else None


# ---------------------------------------------------------------- start, pause, resume, abort


@dataclass
class RolloutPlan(Plan):
    ladder: str = ""
    target: str = ""
    origin: str | None = None
    rollout: int | None = None
    state: str | None = None  # the state a control moves the rollout to


@dataclass
class RolloutStart(Action[RolloutPlan]):
    """Start a rollout of ``ladder`` to stage ``to`` (its last stage when None)."""

    manifest: Manifest
    ladder: str
    to: str | None = None

    @property
    def name(self) -> str:
        return "rollout.start"

    def honours_freezes(self) -> bool:
        return False  # it changes no flag; the runner's moves meet the freezes

    def validate(self) -> None:
        resolved = self.manifest.ladder(self.ladder)
        resolved.analysis_of(resolved.stages[0].name)  # a ladder that says how it advances
        if self.to is not None:
            resolved.stage(self.to)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> RolloutPlan:
        self.validate()
        resolved = self.manifest.ladder(self.ladder)
        where = position(conn, self.manifest, resolved)
        refuse = refuser(self.manifest, resolved)
        if where.engaged:
            raise refuse(
                f"ladder {resolved.name} is held by kill switch {', '.join(where.engaged)}",
                f"release it first (flagctl release {where.engaged[0]} -r …), then start the rollout",
            )
        if where.stage is None:
            raise refuse(
                f"ladder {resolved.name} is off its stages: a runner cannot tell which move is forward",
                f"move it to a stage first: flagctl stage set {resolved.name} STAGE -r …",
            )
        target = resolved.stage(self.to) if self.to else resolved.stages[-1]
        summary = (
            f"rollout of ladder {resolved.name}: {where.stage.name} → {target.name}, advanced by flagctl run"
        )
        if target.index <= where.stage.index:
            return RolloutPlan(self.name, summary, noop=f"ladder {resolved.name} is already at "
                               f"{where.stage.name}, at or past {target.name}")  # fmt: skip
        running = in_flight_of(conn, self.manifest, resolved.name)
        if running is not None:
            raise refuse(
                f"rollout {running.id} of ladder {resolved.name} is already {running.state} "
                f"(to {running.target})",
                f"see it: flagctl rollout status {resolved.name}; or end it: flagctl rollout abort "
                f"{resolved.name} -r …",
            )
        checks = [
            f"{stage.name}: bake {_bake(resolved, stage.name)}; analysis {resolved.analysis_of(stage.name).describe()}"
            for stage in resolved.stages[where.stage.index : target.index]
        ]
        return RolloutPlan(self.name, summary, checks=checks, ladder=resolved.name, target=target.name,
                           origin=where.stage.name)  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: RolloutPlan) -> None:
        store.start(conn, self.manifest.system, plan.ladder, plan.target, plan.origin)


# What each control does: the states it acts from, the state it leaves, and its note.
CONTROLS = {
    "pause": (("running",), "paused", "paused by hand: the runner analyses nothing and moves nothing"),
    "resume": (("paused",), "running", "resumed: the passes count again from 0"),
    "abort": (("running", "paused"), "aborted", "aborted: the ladder stays where it is"),
}


@dataclass
class RolloutControl(Action[RolloutPlan]):
    """Pause, resume or abort the rollout in flight on ``ladder``."""

    manifest: Manifest
    ladder: str
    verb: str

    @property
    def name(self) -> str:
        return f"rollout.{self.verb}"

    def honours_freezes(self) -> bool:
        return False

    def validate(self) -> None:
        self.manifest.ladder(self.ladder)
        if self.verb not in CONTROLS:
            raise UsageError(f"unknown rollout control {self.verb!r}", "pause, resume or abort")

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> RolloutPlan:
        self.validate()
        row = in_flight_of(conn, self.manifest, self.ladder)
        if row is None:
            raise UsageError(
                f"no rollout of ladder {self.ladder} is in flight",
                f"start one: flagctl rollout start {self.ladder} -r …",
            )
        if locked:
            row = store.lock(conn, row.id) or row
        states, after, _ = CONTROLS[self.verb]
        summary = f"rollout {row.id} of ladder {self.ladder}: {row.state} → {after}"
        if row.state not in states:
            return RolloutPlan(
                self.name, summary, noop=f"rollout {row.id} of ladder {self.ladder} is already {row.state}"
            )
        return RolloutPlan(
            self.name, summary, ladder=self.ladder, target=row.target, rollout=row.id, state=after
        )

    def apply(self, conn: psycopg.Connection[Any], plan: RolloutPlan) -> None:
        row = store.lock(conn, plan.rollout) if plan.rollout is not None else None
        assert row is not None and plan.state is not None
        note = CONTROLS[self.verb][2]
        if self.verb == "resume":
            row = replace(row, passes=0, next_at=None)
        store.update(conn, replace(row, state=plan.state, note=note))


# ---------------------------------------------------------------- the runner


@dataclass(frozen=True)
class Decision:
    """What a runner did about one rollout in one pass."""

    ladder: str
    rollout: int
    did: str  # analysed, advanced, rolled_back, paused, waiting, done, held, idle
    note: str
    at: datetime
    verdict: str | None = None
    results: tuple[GuardrailResult, ...] = ()
    next_at: datetime | None = None
    # or schedule (``ladder`` names it; ``did`` is applied, refused or pending), or notify
    # (``did`` is delivered or failed, the note counts them)
    kind: str = "rollout"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "ladder": self.ladder, "rollout": self.rollout, "did": self.did, "note": self.note,
            "at": self.at.isoformat(), "verdict": self.verdict, "guardrails": [r.to_json() for r in self.results],
            "next_at": self.next_at.isoformat() if self.next_at else None,
        }  # fmt: skip


@dataclass
class Runner:
    """One runner of one system: the ladders it holds, and its own identity.

    ``run_once`` is one pass over the rollouts in flight; ``run`` loops on the caller's
    clock and sleeper. ``audit`` says who the runner acts as (its actor and reason head each
    decision's own reason)."""

    conn: psycopg.Connection[Any]
    manifest: Manifest
    audit: AuditContext
    clock: Clock
    lock_timeout: timedelta = timedelta(seconds=5)
    every: timedelta = timedelta(seconds=30)
    holding: set[str] = field(default_factory=set)
    runner_id: int | None = None
    # Where the notification sinks' URLs and keys are read (None: the runner delivers none).
    environ: Mapping[str, str] | None = None

    def beat(self) -> None:
        """Say this runner is alive (``flagctl rollout status`` shows it)."""
        self.runner_id = store.beat(
            self.conn, self.manifest.system, socket.gethostname(), os.getpid(), self.every
        )

    def stop(self) -> None:
        """Let go of every ladder and say the runner is gone."""
        for ladder in sorted(self.holding):
            store.let_go(self.conn, self.manifest.system, ladder)
        self.holding.clear()
        if self.runner_id is not None:
            store.gone(self.conn, self.runner_id)
            self.runner_id = None

    def run_once(self) -> list[Decision]:
        decisions = []
        for row in store.in_flight(self.conn, self.manifest.system):
            if row.ladder not in self.holding:
                if not store.try_hold(self.conn, self.manifest.system, row.ladder):
                    pid = store.holder(self.conn, self.manifest.system, row.ladder)
                    who = f" (backend pid {pid})" if pid else ""
                    decisions.append(Decision(row.ladder, row.id, "held",
                                              f"another runner{who} holds ladder {row.ladder}", self.clock()))  # fmt: skip
                    continue
                self.holding.add(row.ladder)
            if row.state == "paused":
                decisions.append(Decision(row.ladder, row.id, "paused", row.note or "paused", self.clock()))
                continue
            decisions.append(self._guarded(row))
        return decisions + self._schedules() + self._notifications()

    def _notifications(self) -> list[Decision]:
        """Deliver what the manifest's sinks are due (``actions.notify``): never holds a change up."""
        if self.environ is None or self.manifest.model.notifications is None:
            return []
        from flagctl.actions.notify import deliver_once

        report = deliver_once(
            self.conn, self.manifest, environ=self.environ, actor=self.audit.actor, clock=self.clock
        )
        if not report.delivered and not report.failed:
            return []
        note = f"{report.delivered} delivered, {report.failed} failed"
        return [Decision("notify", 0, "delivered" if not report.failed else "failed", note, self.clock(),
                         next_at=report.next_due(), kind="notify")]  # fmt: skip

    def _guarded(self, row: RolloutRow) -> Decision:
        """One rollout's pass; a refusal by the database ends that pass, not the runner."""
        import psycopg

        try:
            return self.tick(row)
        except psycopg.Error as failed:
            if self.conn.broken:
                raise
            return Decision(row.ladder, row.id, "error", translate(failed).message, self.clock())
        except FlagctlError as failed:
            return Decision(row.ladder, row.id, "error", failed.message, self.clock())

    def _schedules(self) -> list[Decision]:
        """The scheduled changes whose time has come (one runner of the system applies them)."""
        from flagctl.actions.schedule import apply_due

        if SCHEDULES not in self.holding:
            if not store.try_hold(self.conn, self.manifest.system, SCHEDULES):
                return []
            self.holding.add(SCHEDULES)
        settled = apply_due(self.conn, self.manifest, self.audit, self.clock, self.lock_timeout)
        now = self.clock()
        return [
            Decision(
                f"schedule {s.schedule.id}",
                s.schedule.id,
                s.state,
                f"{s.schedule.summary}: {s.outcome}",
                now,
                kind="schedule",
            )
            for s in settled
        ]

    def run(self, sleep: Callable[[float], None], count: int | None = None) -> Iterator[list[Decision]]:
        """Pass after pass (``count`` of them; None: until the caller stops), each followed
        by a sleep until the next thing is due, at most ``every``."""
        done = 0
        try:
            while count is None or done < count:
                self.beat()
                decisions = self.run_once()
                yield decisions
                done += 1
                if count is not None and done >= count:
                    break
                sleep(self._pause(decisions))
        finally:
            if not self.conn.broken:  # a lost connection already let go of everything
                self.stop()

    def _pause(self, decisions: list[Decision]) -> float:
        now = self.clock()
        due = [d.next_at for d in decisions if d.next_at is not None]
        wait = min([self.every, *[max(t - now, timedelta(seconds=1)) for t in due]])
        return wait.total_seconds()

    # -------------------------------------------------------------- one rollout

    def tick(self, row: RolloutRow) -> Decision:
        ladder = self.manifest.ladder(row.ladder)
        now = self.clock()
        where = position(self.conn, self.manifest, ladder)
        target = ladder.stage(row.target)
        if where.engaged:
            note = (
                f"waiting: kill switch {', '.join(where.engaged)} holds the ladder; it moves on once released"
            )
            return self._wait(row, ladder, note, now)
        current = where.stage
        if current is None:
            return self._pause_with(row, "paused: the ladder is off its stages (moved by hand?)", now)
        if current.index >= target.index:
            self._write(replace(row, state="done", stage=current.name, note=f"done: ladder at {current.name}"),
                        "rollout.done", f"reached {current.name}")  # fmt: skip
            return Decision(row.ladder, row.id, "done", f"ladder {ladder.name} reached {current.name}", now)
        analysis = ladder.analysis_of(current.name)
        if row.stage != current.name:  # a move since the last pass (the runner's, an approval's, a person's)
            row = replace(row, stage=current.name, stage_since=where.entered_at or now, passes=0, failures=0,
                          analysed_at=None, verdict=None, request=None)  # fmt: skip
        if row.failures >= analysis.failures:  # a rollback that did not get through last time
            return self._roll_back(row, ladder, now, "the failure limit was reached")
        results: tuple[GuardrailResult, ...] = ()
        verdict = None
        if row.analysed_at is None or now >= row.analysed_at + analysis.interval:
            results = self._analyse(analysis.guardrails)
            unreadable = [r for r in results if r.sqlstate == "42501"]
            if unreadable:  # the runner's user may not read the metrics: no verdict on the stage at all
                names = ", ".join(r.name for r in unreadable)
                note = (f"waiting: the runner's database user may not read what guardrail {names} reads "
                        f"({unreadable[0].error}); grant it SELECT on those tables")  # fmt: skip
                return self._wait(row, ladder, note, now)
            verdict = _verdict(results)
            row = replace(
                row, analysed_at=now, verdict=verdict.value,
                passes=row.passes + 1 if verdict is Verdict.PASS else 0,
                failures=row.failures + (verdict is Verdict.FAIL),
            )  # fmt: skip
            if verdict is Verdict.FAIL and row.failures >= analysis.failures:
                self._record(
                    row, results, f"analysis of {current.name}: fail ({row.failures} of {analysis.failures})"
                )
                why = "; ".join(r.describe() for r in results if r.failed)
                return self._roll_back(row, ladder, now, why, results)
            if verdict is Verdict.INCONCLUSIVE:
                why = "; ".join(r.describe() for r in results if r.inconclusive)
                row = replace(row, state="paused", next_at=None,
                              note=f"paused: inconclusive analysis of {current.name}: {why}; "
                              f"resume with flagctl rollout resume {ladder.name}")  # fmt: skip
                self._record(
                    row, results, f"analysis of {current.name}: inconclusive, paused", "rollout.pause"
                )
                return Decision(row.ladder, row.id, "paused", row.note or "", now, verdict.value, results)
        # The runner's own clock for the bake (the move itself checks it again, from the audit).
        bake = ladder.bake.get(current.name)
        baked = bake is None or now >= (bake_end := (row.stage_since or where.entered_at or now) + bake)
        ready = row.passes >= analysis.passes and baked
        next_at = max(row.analysed_at + analysis.interval, now) if row.analysed_at else now
        if not ready:
            wants = []
            if row.passes < analysis.passes:
                wants.append(f"{row.passes} of {analysis.passes} passes")
            if not baked:
                wants.append(f"baked until {bake_end:%Y-%m-%d %H:%M:%S %Z}")
                if row.passes >= analysis.passes:
                    next_at = bake_end
            note = f"{current.name}: {', '.join(wants)}; next analysis {next_at:%H:%M:%S %Z}"
            row = replace(row, next_at=next_at, note=note)
            if verdict is not None:
                self._record(row, results, f"analysis of {current.name}: {verdict.value}")
                return Decision(row.ladder, row.id, "analysed", note, now, verdict.value, results, next_at)
            return Decision(row.ladder, row.id, "idle", note, now, None, (), next_at)
        if verdict is not None:
            self._record(replace(row, note=f"{current.name}: ready to advance"), results,
                         f"analysis of {current.name}: {verdict.value}")  # fmt: skip
        return self._advance(row, ladder, current.name, now, results)

    def _analyse(self, names: tuple[str, ...]) -> tuple[GuardrailResult, ...]:
        with transaction(self.conn, read_only=True) as tx:
            return tuple(
                guardrails.evaluate(tx, name, self.manifest.model.guardrails[name]) for name in names
            )

    def _advance(
        self,
        row: RolloutRow,
        ladder: ResolvedLadder,
        stage: str,
        now: datetime,
        results: tuple[GuardrailResult, ...],
    ) -> Decision:
        from flagctl.actions.stage import StageStep

        if row.request is not None and self._pending(row.request):
            return self._wait(row, ladder, f"waiting: the move from {stage} waits for approval of request "
                              f"{row.request} (flagctl approve {row.request})", now)  # fmt: skip
        step = StageStep(self.manifest, ladder.name, 1, clock=self.clock, action="rollout.advance")
        context = self._context("rollout.advance", f"rollout {row.id}: {stage} passed its analysis and bake")
        try:
            outcome = execute(self.conn, step, context, confirm=None, lock_timeout=self.lock_timeout)
        except NeedsApproval as needed:
            row = replace(row, request=needed.request_id)
            note = (
                f"waiting: the move from {stage} needs approval: request {needed.request_id} ({needed.why})"
            )
            return self._wait(row, ladder, note, now)
        except (PolicyRefused, ConflictError, PermissionDenied) as refused:
            # a freeze, a kill, a required guardrail, locks held, a role it lacks: wait and look again
            return self._wait(row, ladder, f"waiting: {refused.message}", now)
        if not outcome.applied:  # someone moved it first: the next pass starts from there
            return self._wait(row, ladder, f"waiting: {outcome.plan.noop or 'the move did nothing'}", now)
        moved_to = getattr(outcome.plan, "stage", None) or stage
        done = moved_to == row.target
        note = f"advanced {stage} → {moved_to}" + ("; done" if done else "")
        self._write(
            replace(row, state="done" if done else row.state, stage=moved_to, stage_since=now, passes=0, failures=0,
                    analysed_at=None, verdict=None, request=None, next_at=None, note=note),
            "rollout.done" if done else "rollout.advance", note,
        )  # fmt: skip
        return Decision(row.ladder, row.id, "advanced", note, now, None, results)

    def _roll_back(
        self,
        row: RolloutRow,
        ladder: ResolvedLadder,
        now: datetime,
        why: str,
        results: tuple[GuardrailResult, ...] = (),
    ) -> Decision:
        from flagctl.actions.stage import StageSet

        origin = row.origin or ladder.stages[0].name
        reason = f"rollout {row.id}: {row.failures} failed analyses of {row.stage}: {why}"
        move = StageSet(self.manifest, ladder.name, origin, clock=self.clock, action="rollout.rollback")
        try:
            execute(self.conn, move, self._context("rollout.rollback", reason), confirm=None,
                    lock_timeout=self.lock_timeout)  # fmt: skip
        except (PolicyRefused, ConflictError, PermissionDenied) as refused:
            return self._wait(
                row, ladder, f"rollback to {origin} refused, will retry: {refused.message}", now
            )
        note = f"rolled back to {origin}: {row.failures} failed analyses of {row.stage}: {why}"
        self._machine_rolled_back(row, now, note)
        self._write(replace(row, state="rolled_back", note=note, next_at=None), "rollout.rolled_back", note)
        return Decision(row.ladder, row.id, "rolled_back", note, now, Verdict.FAIL.value, results)

    def _machine_rolled_back(self, row: RolloutRow, now: datetime, note: str) -> None:
        """A system with a rollback state machine (``rollback:``) records the runner's
        rollback in it: ROLLED_BACK, so ``flagctl watch`` verifies the recovery and
        ``rollback --status`` shows it, as after the watchdog's own."""
        if self.manifest.model.rollback is None:
            return
        from flagctl.rules.rollback import MachineState
        from flagctl.store.rollback_state import hold_state, read_state, store_state

        with transaction(self.conn, self._context("rollback.runner", note), self.lock_timeout) as tx:
            hold_state(tx, self.manifest)
            before = read_state(tx, self.manifest)
            if before.state != "ROLLED_BACK":
                detail = {"rollout": row.id, "ladder": row.ladder, "from": before.state, "why": note}
                store_state(tx, self.manifest, MachineState("ROLLED_BACK", now, None), detail)

    def _wait(self, row: RolloutRow, ladder: ResolvedLadder, note: str, now: datetime) -> Decision:
        known = any(stage.name == row.stage for stage in ladder.stages)
        interval = ladder.analysis_of(row.stage).interval if row.stage and known else self.every
        next_at = now + interval
        if note != row.note or row.next_at is None or row.next_at < now:
            self._write(replace(row, note=note, next_at=next_at), "rollout.wait", note)
        return Decision(row.ladder, row.id, "waiting", note, now, None, (), next_at)

    def _pause_with(self, row: RolloutRow, note: str, now: datetime) -> Decision:
        self._write(replace(row, state="paused", note=note, next_at=None), "rollout.pause", note)
        return Decision(row.ladder, row.id, "paused", note, now)

    def _pending(self, request: int) -> bool:
        from flagctl.store.requests import request as read_request

        try:
            return read_request(self.conn, self.manifest, request).status == "pending"
        except UsageError:
            return False

    def _context(self, action: str, why: str) -> AuditContext:
        reason = f"{self.audit.reason}: {why}" if self.audit.reason else why
        return replace(self.audit, action=action, reason=one_line(reason))

    def _write(self, row: RolloutRow, action: str, why: str) -> None:
        with transaction(self.conn, self._context(action, why), self.lock_timeout) as tx:
            store.update(tx, row)

    def _record(
        self,
        row: RolloutRow,
        results: tuple[GuardrailResult, ...],
        why: str,
        action: str = "rollout.analysis",
    ) -> None:
        """An analysis and the row it leaves, in one declared change (``rollout.pause`` when
        it paused the rollout)."""
        verdict = row.verdict or Verdict.INCONCLUSIVE.value
        with transaction(self.conn, self._context(action, why), self.lock_timeout) as tx:
            store.record_analysis(
                tx, row.id, row.stage or "", verdict, [r.to_json() for r in results], row.analysed_at
            )
            store.update(tx, row)


def _verdict(results: tuple[GuardrailResult, ...]) -> Verdict:
    """An analysis fails if any guardrail counts as a failure; else it is inconclusive if
    any is; else it passed."""
    if any(r.failed for r in results):
        return Verdict.FAIL
    if any(r.inconclusive for r in results):
        return Verdict.INCONCLUSIVE
    return Verdict.PASS


def _bake(ladder: ResolvedLadder, stage: str) -> str:
    bake = ladder.bake.get(stage)
    return format_duration(bake) if bake else "none"
