"""flagctl notify deliver | notify log — every audited change to the manifest's sinks."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed

if TYPE_CHECKING:
    from flagctl.actions.notify import DeliveryReport
    from flagctl.cli.env import Environment

app = typer.Typer(
    help="Deliver audited changes to webhooks and Slack; show deliveries.", no_args_is_help=True
)


@app.command("deliver")
def deliver(
    ctx: typer.Context,
    once: Annotated[bool, typer.Option("--once", help="One pass, then exit (the default).")] = False,
    follow_: Annotated[
        bool,
        typer.Option("--follow", help="Keep delivering: woken by each change, retries on their backoff."),
    ] = False,
    sink: Annotated[str | None, typer.Option("--sink", help="Only this sink.")] = None,
    interval: Annotated[
        float, typer.Option("--interval", min=0.1, help="--follow: seconds between passes without a change.")
    ] = 30.0,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="--follow: stop after this many passes.")
    ] = None,
    actor: Annotated[str | None, typer.Option("--actor", help="Who delivers (default: the OS user).")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Send every audited change not yet delivered to each sink, in order; exit 1 when a
    sink failed (it is retried on the next pass, after its backoff)."""
    from flagctl.actions import notify
    from flagctl.store.db import os_user, plain_text

    env = env_of(ctx)
    if once and follow_:
        from flagctl.errors import UsageError

        raise UsageError("give --once or --follow, not both")
    loaded = manifest(env)
    who = plain_text("--actor", actor or "", 200) or os_user()
    notify.resolve_sinks(loaded, env.caps.environ, sink)  # a missing secret: exit 2, before connecting
    conn = connect(env)
    kwargs = {"environ": env.caps.environ, "actor": who, "clock": env.caps.clock, "sink": sink}
    if not follow_:
        report = notify.deliver_once(conn, loaded, **kwargs)  # type: ignore[arg-type]
        _show(report, output)
        if report.failed:
            raise CheckFailed(f"{report.failed} delivery failed; `flagctl notify log --failed` says why")
        return
    wait = _waiter(env, conn, loaded.system)
    try:
        for report in notify.follow(conn, loaded, wait=wait, interval=interval, passes=count, **kwargs):  # type: ignore[arg-type]
            if report.delivered or report.failed or output is Output.json:
                _show(report, output)
    except KeyboardInterrupt:
        pass


def _waiter(env: Environment, conn: Any, system: str) -> Callable[[float], object]:
    """How --follow waits: a change's notification (LISTEN) or the timeout, on a real clock;
    the injected sleeper when the clock is simulated (tests)."""
    if env.caps.listen is not None:
        return env.caps.listen(conn, system).wait  # type: ignore[no-any-return]
    if env.caps.sleep is not time.sleep:
        return env.caps.sleep
    from flagctl.store.changes import Listener

    return Listener(conn, system).wait


def _show(report: DeliveryReport, output: Output) -> None:
    if output is Output.json:
        render.out(json.dumps(report.to_json()))
        return
    if not report.sinks:
        render.out("no sink declared (notifications.sinks in the manifest)")
        return
    for sink in report.sinks:
        if sink.busy:
            render.out(f"{sink.sink}: another deliverer holds it; passed by")
            continue
        line = f"{sink.sink}: {sink.delivered} delivered"
        if sink.failed:
            line += f", failed: {sink.error}; next attempt {render.when(sink.waiting_until)}"
        elif sink.waiting_until is not None:
            line += f", waiting to retry at {render.when(sink.waiting_until)}"
        render.out(line)


@app.command("log")
def log(
    ctx: typer.Context,
    sink: Annotated[str | None, typer.Option("--sink", help="Only this sink.")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Only failed attempts.")] = False,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="At most this many attempts.")] = 50,
    output: OutputOpt = Output.table,
) -> None:
    """Deliveries and failures, newest first: sink, audit row, attempt, outcome, HTTP
    status, error and when the next attempt is due."""
    from flagctl.store import notify

    env = env_of(ctx)
    loaded = manifest(env)
    conn = connect(env)
    rows = notify.log(conn, loaded.system, sink, failed, limit)
    if output is Output.json:
        cursors = notify.cursors(conn, loaded.system)
        render.emit_json(
            {
                "system": loaded.system,
                "deliveries": [d.to_json() for d in rows],
                "sinks": [{"sink": c.sink, "pos": c.pos, "behind": c.behind} for c in cursors],
            }
        )
        return
    if not rows:
        render.out("no delivery recorded" + (" that failed" if failed else "") + " (flagctl notify deliver)")
        return
    table = [
        (
            render.when(d.at),
            d.sink,
            d.event_id,
            d.action or "",
            d.attempt,
            d.outcome,
            d.http_status or "",
            d.error or "",
            render.when(d.next_attempt_at) if d.next_attempt_at else "",
        )
        for d in rows
    ]
    render.out(
        render.table(table, ["at", "sink", "event", "action", "try", "outcome", "http", "error", "next"])
    )
