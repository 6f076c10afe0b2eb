"""flagctl run — the long-running runner: advances the rollouts in flight."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import NotConfirmed, UsageError

if TYPE_CHECKING:
    from flagctl.actions.rollout import Decision


@mutating(dry_run=False)
def run(
    ctx: typer.Context,
    interval: Annotated[str, typer.Option("--interval", help="The longest time between two passes.")] = "30s",
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (cron, CI, a test).")] = False,
    count: Annotated[int | None, typer.Option("--count", min=1, help="Stop after this many passes.")] = None,
    *,
    mutation: Mutation,
) -> None:
    """The runner, as a service: the rollouts in flight (analyse each stage, advance after its
    bake and passes, pause on an inconclusive analysis, roll back on failures), the scheduled
    changes whose time has come, and the notification sinks' deliveries — every decision
    audited. One runner acts on a ladder at a time."""
    from flagctl.actions.rollout import Runner
    from flagctl.model.durations import parse_duration
    from flagctl.store.db import AuditContext

    env = env_of(ctx)
    loaded = manifest(env)
    try:
        every = parse_duration(interval)
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if every.total_seconds() <= 0 and not once:
        raise UsageError(f"--interval {interval}: give a positive interval, e.g. --interval 30s")
    if not mutation.yes:
        if not env.is_interactive():
            raise UsageError("flagctl run moves ladders by itself: it needs --yes without a terminal")
        if not typer.confirm("flagctl run will advance and roll back ladders by itself. Continue?",
                             default=False, err=True):  # fmt: skip
            raise NotConfirmed("not confirmed; nothing was changed")
    if loaded.model.notifications is not None:
        from flagctl.actions.notify import resolve_sinks

        resolve_sinks(loaded, env.caps.environ)  # a sink's unset secret: exit 2 before anything runs
    audit = AuditContext.given(
        "rollout.run", reason=(mutation.reason or "").strip() or "flagctl run", actor=mutation.actor,
        command=env.command_line(), request_id=env.options.request_id,
    )  # fmt: skip
    runner = Runner(connect(env), loaded, audit, env.caps.clock, env.options.lock_timeout, every,
                    environ=env.caps.environ)  # fmt: skip
    try:
        for decisions in runner.run(env.caps.sleep, 1 if once else count):
            for decision in decisions:
                _show(decision, mutation.output)
            if not decisions and mutation.output is not Output.json:
                render.out(f"{env.caps.clock():%Y-%m-%d %H:%M:%S %Z}  no rollout in flight")
    except KeyboardInterrupt:
        pass


def _show(decision: Decision, output: Output) -> None:
    if output is Output.json:
        render.out(json.dumps(decision.to_json()))  # one line per decision
        return
    render.out(
        f"{decision.at:%Y-%m-%d %H:%M:%S %Z}  {decision.ladder}: {decision.did}: {render.safe(decision.note)}"
    )
    for result in decision.results:
        render.out(f"    {result.shown():<12}  {result.describe()}")
