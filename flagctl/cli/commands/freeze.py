"""flagctl freeze set|clear|list — stop exposure from widening at a scope, for a while."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of, moment, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output

app = typer.Typer(
    help="Freezes: block forward stage moves and widening sets and profile applies (never kills, "
    "releases or rollbacks).",
    no_args_is_help=True,
)

FreezeScopeOpt = Annotated[
    str,
    typer.Option(
        "--scope", help="global, or KIND:VALUE (e.g. workspace:42).", autocompletion=complete.scopes
    ),
]


@app.command("set")
@mutating()
def freeze_set(
    ctx: typer.Context,
    scope: FreezeScopeOpt = "global",
    until: Annotated[
        str | None,
        typer.Option("--until", help="When it ends: a time (2026-12-01T18:00Z) or a duration from now (4h)."),
    ] = None,
    *,
    mutation: Mutation,
) -> None:
    """Freeze SCOPE: nothing may widen exposure there until --until (or until cleared)."""
    from flagctl.actions.freeze import FreezeSet

    env = env_of(ctx)
    now = env.caps.clock()
    ends = moment(until, now, "--until") if until else None
    mutate(env, mutation, FreezeSet(manifest(env), scope, ends, now))


@app.command("clear")
@mutating()
def freeze_clear(
    ctx: typer.Context,
    scope: FreezeScopeOpt = "global",
    freeze_id: Annotated[
        int | None, typer.Option("--id", help="Clear this freeze (see freeze list).")
    ] = None,
    *,
    mutation: Mutation,
) -> None:
    """Clear the freezes in force at --scope (or the one given by --id)."""
    from flagctl.actions.freeze import FreezeClear

    env = env_of(ctx)
    mutate(env, mutation, FreezeClear(manifest(env), scope, freeze_id))


@app.command("list")
def freeze_list(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """The freezes in force."""
    from flagctl.store.freezes import active_freezes

    env = env_of(ctx)
    found = active_freezes(connect(env), manifest(env), env.caps.clock())
    if output is Output.json:
        render.emit_json({"freezes": [f.to_json() for f in found]})
        return
    if not found:
        render.out("no freeze in force")
        return
    rows = [
        (
            f.id,
            f.scope,
            render.when(f.created_at),
            f.actor or f.db_user,
            render.when(f.until) if f.until else "cleared",
            f.reason,
        )
        for f in found
    ]
    render.out(render.table(rows, ["id", "scope", "since", "by", "until", "reason"]))
