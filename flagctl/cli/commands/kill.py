"""flagctl kill SWITCH | kill --list — engage a kill switch now, or list them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flagctl.cli import render
from flagctl.cli.common import (
    ActorOpt,
    DryRunOpt,
    Mutation,
    OutputOpt,
    ReasonOpt,
    ScopeOpt,
    YesOpt,
    connect,
    env_of,
    manifest,
    mutate,
)
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError
from flagctl.model.durations import format_duration

if TYPE_CHECKING:
    import psycopg

    from flagctl.actions.base import Outcome
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest

SwitchArg = Annotated[str | None, typer.Argument(help="The kill switch (see the manifest's kill_switches:).")]


def kill(
    ctx: typer.Context,
    switch: SwitchArg = None,
    list_: Annotated[bool, typer.Option("--list", help="List kill switches and which are engaged.")] = False,
    scope: ScopeOpt = "global",
    break_locks: Annotated[
        bool,
        typer.Option(
            "--break-locks",
            help="If the flags stay locked past --lock-timeout: cancel, then terminate, the transactions "
            "holding them (recorded in the audit), and engage.",
        ),
    ] = False,
    wait_ack: Annotated[
        bool,
        typer.Option(
            "--wait-ack",
            help="After the kill: wait until every live gate client (flagctl clients) has applied it; "
            "exit 1 naming the ones that have not (the kill stays engaged).",
        ),
    ] = False,
    timeout: Annotated[str, typer.Option("--timeout", help="--wait-ack: how long to wait.")] = "5s",
    live: Annotated[
        str, typer.Option("--live", help="--wait-ack: a client seen within this long counts as live.")
    ] = "30s",
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Engage a kill switch now: one transaction, no bake, no guardrail, exact prior
    values recorded so `flagctl release` restores them."""
    from flagctl.actions.kill import Kill

    env = env_of(ctx)
    loaded = manifest(env)
    if list_:
        _list(env, loaded, output)
        return
    if switch is None:
        raise UsageError("kill needs a SWITCH (or --list)", "flagctl kill --list shows them")
    waits = _ack_bounds(timeout, live) if wait_ack else None
    outcome = mutate(
        env,
        Mutation(reason, yes, actor, dry_run, output),
        Kill(loaded, switch, scope),
        break_locks=break_locks,
        after=lambda conn, outcome: _report_drift(conn, loaded, outcome),
    )
    if waits is not None and not outcome.dry_run:
        _wait_acks(env, loaded, *waits)


def _ack_bounds(timeout: str, live: str) -> tuple[timedelta, timedelta]:
    from flagctl.model.durations import parse_duration

    try:
        return parse_duration(timeout), parse_duration(live)
    except ValueError as exc:
        raise UsageError(f"--timeout/--live: {exc}") from None


def _wait_acks(env: Environment, loaded: Manifest, timeout: timedelta, live: timedelta) -> None:
    """Wait (on the server) until every live gate client applied the newest change."""
    from flagctl.store.clients import wait_acks

    clients = wait_acks(connect(env), loaded, timeout, live)
    if not clients:
        render.note("no live gate client to confirm the kill (flagctl clients lists them)")
        return
    late = [c for c in clients if not c.acked]
    if late:
        names = "; ".join(f"{c.host} pid {c.pid} ({c.application}, at change {c.applied_seq})" for c in late)
        raise CheckFailed(
            f"{len(late)} of {len(clients)} live gate clients did not apply the kill within "
            f"{format_duration(timeout)}: {names}",
            "the kill is engaged in the database; those processes still decide on the old state — "
            "check them (flagctl clients)",
        )
    slowest = max(clients, key=lambda c: c.after_seconds)
    render.note(
        f"confirmed: all {len(clients)} live gate clients applied the kill; the slowest, {slowest.host} "
        f"pid {slowest.pid}, {slowest.after_seconds * 1000:.0f} ms after the wait began"
    )


def _report_drift(conn: psycopg.Connection[Any], loaded: Manifest, outcome: Outcome) -> None:
    """After the kill committed (so it never waits for this): the values it replaced that
    had been changed around the audit trigger — someone bypassed the trail, and the kill
    wrote over what they did."""
    from flagctl.views.drift import drift

    plan = outcome.plan
    if not outcome.applied or plan.snapshot is None or outcome.txid is None:
        return
    flags = sorted(plan.snapshot.globals)
    for found in drift(conn, loaded, plan.snapshot, flags, before_txid=outcome.txid):
        render.note(
            f"drift before the kill: {found.describe()} (changed around the audit trigger; the kill wrote over it)"
        )


def _list(env: Environment, loaded: Manifest, output: Output) -> None:
    from flagctl.rules.kills import Engaged
    from flagctl.store.switches import engaged_json, list_engaged

    engaged: dict[str, list[Engaged]] = {}
    for record in list_engaged(connect(env), loaded):
        engaged.setdefault(record.switch, []).append(record)
    ordered = sorted(loaded.model.kill_switches.items(), key=lambda kv: (kv[1].level, kv[0]))
    if output is Output.json:
        render.emit_json({
            "system": loaded.system,
            "kill_switches": [
                {
                    "name": name,
                    "level": spec.level,
                    "description": spec.description,
                    "includes": spec.includes,
                    "sets": {f: s.to_json() for f, s in loaded.switches[name].items()},
                    "engaged": [engaged_json(loaded, e) for e in engaged.get(name, [])],
                }
                for name, spec in ordered
            ],
        })  # fmt: skip
        return
    rows = []
    for name, spec in ordered:
        state = "; ".join(
            f"{e.scope} since {render.when(e.engaged_at)} by {e.actor or e.db_user}"
            for e in engaged.get(name, [])
        )
        rows.append(
            (name, f"KS{spec.level}", ", ".join(loaded.switches[name]), state or "no", spec.description or "")
        )
    render.out(render.table(rows, ["switch", "level", "flags", "engaged", "description"]))
