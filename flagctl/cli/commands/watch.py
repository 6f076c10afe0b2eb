"""flagctl watch — evaluate guardrails, advance the rollback state machine, roll back."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flagctl.cli import render
from flagctl.cli.common import env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, NotConfirmed, UsageError

if TYPE_CHECKING:
    from flagctl.actions.rollback import Tick
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest


@mutating(dry_run=False)
def watch(
    ctx: typer.Context,
    interval: Annotated[str, typer.Option("--interval", help="Time between evaluations.")] = "30s",
    once: Annotated[
        bool, typer.Option("--once", help="Evaluate once (cron, CI): exit 1 if a rollback was needed.")
    ] = False,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="Stop after this many evaluations.")
    ] = None,
    auto: Annotated[
        bool, typer.Option("--auto", help="Run the rollback actions when a rollback is pending.")
    ] = False,
    *,
    mutation: Mutation,
) -> None:
    """Evaluate the guardrails every --interval and advance the rollback state machine
    (NORMAL → DEGRADED → ROLLBACK_PENDING → ROLLED_BACK → RECOVERY_VERIFY → NORMAL);
    with --auto, apply the manifest's rollback actions. Every transition is audited."""
    from flagctl.actions.rollback import Tick
    from flagctl.actions.watchdog import Lost, StillDown
    from flagctl.actions.watchdog import watch as watchdog
    from flagctl.model.durations import format_duration, parse_duration
    from flagctl.store.db import AuditContext

    env = env_of(ctx)
    loaded = manifest(env)
    try:
        pause = parse_duration(interval).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--interval: {exc}") from None
    if pause <= 0 and not once and count != 1:
        raise UsageError(
            f"--interval {interval} would evaluate in a tight loop against the database",
            "give a positive interval, e.g. --interval 30s (or --once for a single evaluation)",
        )
    if auto and not mutation.yes:
        if not env.is_interactive():
            raise UsageError("watch --auto changes flags by itself: it needs --yes without a terminal")
        if not typer.confirm(
            "watch will apply the rollback actions by itself. Continue?", default=False, err=True
        ):
            raise NotConfirmed("not confirmed; nothing was changed")
    audit = AuditContext.given(
        "watch", reason=(mutation.reason or "").strip() or "watch", actor=mutation.actor, command=env.command_line(),
        request_id=env.options.request_id,
    )  # fmt: skip
    events = watchdog(
        lambda: connect(env), loaded, audit, clock=env.caps.clock, sleep=env.caps.sleep, interval=pause,
        ticks=1 if once else count, auto=auto, lock_timeout=env.options.lock_timeout, reconnect=not once,
    )  # fmt: skip
    live = _live_display(mutation.output)
    needed = False
    result = None
    try:
        for event in events:
            if isinstance(event, Tick):
                result = event
                needed |= result.rollback_needed
                _show(result, mutation.output, live, loaded, env)
            elif isinstance(event, Lost):
                render.error(f"watch lost the connection to the database: {event.reason}; reconnecting")
            elif isinstance(event, StillDown):
                render.error(f"still no database: {event.message}; next try in {event.next_delay:g}s")
            else:
                render.note(f"watch reconnected to the database after {format_duration(event.blind)} blind")
    except KeyboardInterrupt:
        pass
    finally:
        if live is not None:
            live.stop()
    if once and needed and result is not None:
        if result.actions:
            raise CheckFailed(
                f"rollback needed and done: state {result.after}",
                "see flagctl rollback --status; the next evaluations verify the recovery",
            )
        raise CheckFailed(
            f"rollback needed: state {result.after}", "run with --auto to roll back, or act by hand"
        )


def _live_display(output: Output) -> Any:
    if output is not Output.table or not render.console().stdout_is_terminal():
        return None
    from rich.console import Console
    from rich.live import Live

    live = Live(console=Console(file=render.console().out()), refresh_per_second=4, transient=False)
    live.start()
    return live


def _show(result: Tick, output: Output, live: Any, loaded: Manifest, env: Environment) -> None:
    if output is Output.json:
        typer.echo(json.dumps(result.to_json()))  # one line per evaluation
        return
    if live is not None:
        live.update(_rich_table(result, loaded))
        return
    moved = f"{result.before} → {result.after}" if result.before != result.after else result.after
    render.out(f"{result.at:%Y-%m-%d %H:%M:%S %Z}  state {moved}")
    for guard in result.results:
        render.out(f"  {guard.shown():<12}  [{guard.severity}] {guard.describe()}")
    for action in result.actions:
        render.out(f"  rolled back: {action}")
    for error in result.errors:
        render.error(f"rollback action failed: {error}")


def _rich_table(result: Tick, loaded: Manifest) -> Any:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"flagctl watch — {loaded.system}: {result.after}  ({result.at:%H:%M:%S %Z})")
    for column in ("guardrail", "severity", "value", "bound", "verdict"):
        table.add_column(column)
    for guard in result.results:
        shown = escape(guard.shown())
        verdict = shown if guard.passed else f"[{'red' if guard.failed else 'yellow'}]{shown}[/]"
        table.add_row(guard.name, guard.severity, guard.value_text(), guard.bound, verdict)
    for action in result.actions:
        table.add_row("rolled back", "", action, "", "")
    return table
