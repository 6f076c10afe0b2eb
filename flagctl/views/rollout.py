"""``flagctl rollout status``: each rollout's plan, where it is, its last verdicts, what the
runner will do next and when, and whether a runner is alive to do it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.model.durations import format_duration
from flagctl.store import rollouts as store
from flagctl.store.rollouts import AnalysisRow, RolloutRow, Runner
from flagctl.views.stage import Position, position

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest


@dataclass(frozen=True)
class RolloutView:
    row: RolloutRow
    where: Position
    analyses: list[AnalysisRow]
    plan: list[dict[str, Any]]  # each stage from where it started to its target: bake, analysis

    def next_step(self, now: datetime, alive: bool) -> str:
        """What happens next, in words."""
        row = self.row
        if not row.in_flight:
            return f"nothing: the rollout is {row.state.replace('_', ' ')}"
        if row.state == "paused":
            return f"nothing until resumed: flagctl rollout resume {row.ladder} -r …"
        if not alive:
            return "nothing: no runner is alive (start one: flagctl run)"
        if row.next_at is None or row.next_at <= now:
            return "the runner analyses at its next pass"
        return f"the runner looks again at {row.next_at:%Y-%m-%d %H:%M:%S %Z} (in {format_duration(row.next_at - now)})"

    def to_json(self, now: datetime, alive: bool) -> dict[str, Any]:
        return {
            **self.row.to_json(),
            "current_stage": self.where.stage_name,
            "killed_by": self.where.engaged,
            "plan": self.plan,
            "analyses": [
                {"stage": a.stage, "at": a.at.isoformat(), "verdict": a.verdict, "guardrails": a.results}
                for a in self.analyses
            ],
            "next": self.next_step(now, alive),
        }


@dataclass(frozen=True)
class RolloutsStatus:
    system: str
    rollouts: list[RolloutView]
    runners: list[Runner]
    now: datetime

    @property
    def alive(self) -> bool:
        return any(r.alive for r in self.runners)

    def to_json(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "rollouts": [r.to_json(self.now, self.alive) for r in self.rollouts],
            "runners": [r.to_json() for r in self.runners],
        }


def rollouts_status(
    conn: psycopg.Connection[Any], manifest: Manifest, now: datetime, ladder: str | None = None
) -> RolloutsStatus:
    views = []
    for row in store.latest(conn, manifest.system, ladder):
        if row.ladder not in manifest.ladders:
            continue  # a ladder the manifest no longer has
        resolved = manifest.ladder(row.ladder)
        start = resolved.stage(row.origin).index if row.origin else 0
        end = resolved.stage(row.target).index
        plan = []
        for stage in resolved.stages[start : end + 1]:
            bake = resolved.bake.get(stage.name, timedelta(0))
            analysis = resolved.analysis_of(stage.name) if resolved.analysis else None
            plan.append({
                "stage": stage.name, "values": stage.describe(),
                "bake": format_duration(bake) if bake else None,
                "analysis": None if analysis is None or stage.name == row.target else analysis.describe(),
            })  # fmt: skip
        views.append(RolloutView(row, position(conn, manifest, resolved), store.analyses(conn, row.id), plan))
    return RolloutsStatus(manifest.system, views, store.runners(conn, manifest.system), now)
