"""flagctl stage show | set | history — a ladder's position, moves and past moves."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output

app = typer.Typer(help="Show and move a ladder's stage.", no_args_is_help=True)

LadderArg = Annotated[
    str, typer.Argument(help="The ladder (see the manifest's ladders:).", autocompletion=complete.ladders)
]


@app.command("show")
def show(ctx: typer.Context, ladder: LadderArg, output: OutputOpt = Output.table) -> None:
    """Show where a ladder stands: its stages, the current one, and since when."""
    from flagctl.model.durations import format_duration
    from flagctl.model.flagtypes import describe, effective_text
    from flagctl.views.stage import position

    env = env_of(ctx)
    loaded = manifest(env)
    resolved = loaded.ladder(ladder)
    pos = position(connect(env), loaded, resolved)
    now = env.caps.clock()
    if output is Output.json:
        render.emit_json(pos.to_json())
        return
    since = (
        f" since {render.when(pos.entered_at)} ({format_duration(now - pos.entered_at)})"
        if pos.entered_at and not pos.engaged
        else ""
    )
    render.out(f"ladder {resolved.name}: {pos.describe}{since}")
    if pos.engaged:
        render.out(
            f"kill switch engaged: {', '.join(pos.engaged)} (the kill beats every stage; releasing it "
            f"restores {pos.beneath.name if pos.beneath else 'the values beneath it'})"
        )
    rows = []
    for stage in resolved.stages:
        marker = "→" if pos.stage is not None and stage.index == pos.stage.index else ""
        if pos.beneath is not None and stage.index == pos.beneath.index:
            marker = (marker + " beneath").strip()
        bake = resolved.bake.get(stage.name)
        rows.append(
            (
                marker,
                stage.index,
                stage.name,
                stage.describe(),
                format_duration(bake) if bake else "",
            )
        )
    render.out(render.table(rows, ["", "#", "stage", "values", "bake"]))
    for flag, value in pos.values.items():
        render.out(f"{flag}: {describe(value)} ({effective_text(value)})")


@app.command("set")
@mutating()
def set_stage(
    ctx: typer.Context,
    ladder: LadderArg,
    stage: Annotated[str, typer.Argument(help="The stage to move to.", autocompletion=complete.stages)],
    percent: Annotated[
        int | None,
        typer.Option(
            "--percent", min=0, max=100, help="Percent within a range stage (default: its low end)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Skip a stage or the bake time (marked in the audit). Never skips guardrails.",
        ),
    ] = False,
    *,
    mutation: Mutation,
) -> None:
    """Move a ladder to STAGE: forward one stage at a time after the bake, with the
    required guardrails passing; backward any distance, always."""
    from flagctl.actions.stage import StageSet

    env = env_of(ctx)
    action = StageSet(manifest(env), ladder, stage, percent=percent, force=force, clock=env.caps.clock)
    mutate(env, mutation, action)


@app.command("next")
@mutating()
def next_stage(
    ctx: typer.Context,
    ladder: LadderArg,
    force: Annotated[bool, typer.Option("--force", help="Skip the bake time (marked in the audit).")] = False,
    *,
    mutation: Mutation,
) -> None:
    """Move a ladder one stage forward from where it stands (bake and guardrails as for
    `stage set`)."""
    from flagctl.actions.stage import StageStep

    env = env_of(ctx)
    action = StageStep(manifest(env), ladder, +1, force=force, clock=env.caps.clock)
    mutate(env, mutation, action)


@app.command("rollback")
@mutating()
def rollback_stage(
    ctx: typer.Context,
    ladder: LadderArg,
    *,
    mutation: Mutation,
) -> None:
    """Move a ladder one stage back from where it stands (always allowed; what the
    watchdog's step_back does)."""
    from flagctl.actions.stage import StageStep

    env = env_of(ctx)
    action = StageStep(manifest(env), ladder, -1, clock=env.caps.clock)
    mutate(env, mutation, action)


@app.command("history")
def history(
    ctx: typer.Context,
    ladder: LadderArg,
    limit: Annotated[int, typer.Option("--limit", min=1, help="How many moves to show.")] = 20,
    output: OutputOpt = Output.table,
) -> None:
    """Show a ladder's past moves, newest first, including changes made with plain SQL."""
    from flagctl.model.flagtypes import describe
    from flagctl.views.stage import history as ladder_history
    from flagctl.views.stage import position

    env = env_of(ctx)
    loaded = manifest(env)
    resolved = loaded.ladder(ladder)
    conn = connect(env)
    pos = position(conn, loaded, resolved)
    moves = ladder_history(conn, loaded, resolved, pos.values)[:limit]
    if output is Output.json:
        render.emit_json({"ladder": resolved.name, "moves": [m.to_json() for m in moves]})
        return
    rows = [
        (
            render.when(m.at),
            m.from_stage or "(off ladder)",
            m.to_stage or "(off ladder)",
            "; ".join(f"{flag} {describe(value)}" for flag, value in m.after.items()),
            m.who,
            m.action + (" (forced)" if m.forced else ""),
            m.reason or "",
        )
        for m in moves
    ]
    render.out(render.table(rows, ["at", "from", "to", "values", "who", "action", "reason"]))
