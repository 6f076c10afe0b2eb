"""flagctl rollout start|status|pause|resume|abort — rollouts that a runner advances."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.commands.stage import LadderArg
from flagctl.cli.common import OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output

app = typer.Typer(
    help="Rollouts that run themselves: a runner (flagctl run) walks a ladder to its target stage, "
    "advancing on passed analyses and bakes, pausing on inconclusive ones, rolling back on failures.",
    no_args_is_help=True,
)


@app.command("start")
@mutating()
def start(
    ctx: typer.Context,
    ladder: LadderArg,
    to: Annotated[
        str | None,
        typer.Option(
            "--to", help="The stage to stop at (default: the ladder's last).", autocompletion=complete.stages
        ),
    ] = None,
    *,
    mutation: Mutation,
) -> None:
    """Start a rollout of LADDER: from now on a runner (flagctl run) advances it stage by stage,
    as the ladder's analysis: says."""
    from flagctl.actions.rollout import RolloutStart

    env = env_of(ctx)
    mutate(env, mutation, RolloutStart(manifest(env), ladder, to))


def _control(verb: str, doc: str):  # type: ignore[no-untyped-def]
    @mutating()
    def control(ctx: typer.Context, ladder: LadderArg, *, mutation: Mutation) -> None:
        from flagctl.actions.rollout import RolloutControl

        env = env_of(ctx)
        mutate(env, mutation, RolloutControl(manifest(env), ladder, verb))

    control.__doc__ = doc
    control.__name__ = f"rollout_{verb}"
    return control


app.command("pause")(
    _control("pause", "Pause the rollout of LADDER: the runner analyses nothing and moves nothing.")
)
app.command("resume")(
    _control("resume", "Resume the paused rollout of LADDER; its passes count again from 0.")
)
app.command("abort")(
    _control("abort", "End the rollout of LADDER where it stands (the ladder is not moved).")
)


@app.command("status")
def status(
    ctx: typer.Context,
    ladder: Annotated[
        str | None,
        typer.Argument(help="One ladder (default: every rollout).", autocompletion=complete.ladders),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Each rollout: its plan, where it is, its last verdicts, what the runner does next and
    when — and whether a runner is alive."""
    from flagctl.views.rollout import rollouts_status

    env = env_of(ctx)
    loaded = manifest(env)
    if ladder is not None:
        loaded.ladder(ladder)
    now = env.caps.clock()
    found = rollouts_status(connect(env), loaded, now, ladder)
    if output is Output.json:
        render.emit_json(found.to_json())
        return
    if not found.rollouts:
        render.out(
            f"no rollout of {ladder or 'any ladder'} yet: start one with flagctl rollout start LADDER -r …"
        )
    for view in found.rollouts:
        row = view.row
        render.out(
            f"rollout {row.id} of ladder {row.ladder}: {row.state.replace('_', ' ')}, "
            f"{row.origin or '?'} → {row.target}; now at {view.where.describe}"
        )
        render.out(f"  started {render.when(row.started_at)} by {row.started_by}")
        stages = []
        for step in view.plan:
            here = "→" if step["stage"] == view.where.stage_name else ""
            stages.append((here, step["stage"], step["values"], step["bake"] or "", step["analysis"] or ""))
        render.out(render.table(stages, ["", "stage", "values", "bake", "analysis"]))
        if row.in_flight and row.stage:
            render.out(f"  {row.stage}: {row.passes} consecutive passes, {row.failures} failures")
        for analysis in view.analyses[:3]:
            verdicts = ", ".join(
                f"{g.get('name')} {g.get('verdict')}"
                + (f" ({g['samples']} samples)" if g.get("samples") is not None else "")
                for g in analysis.results
            )
            render.out(
                f"  {render.when(analysis.at)}  {analysis.stage}: {analysis.verdict.upper()}  {verdicts}"
            )
        if row.note:
            render.out(f"  {render.safe(row.note)}")
        render.out(f"  next: {view.next_step(now, found.alive)}")
    if found.runners:
        for runner in found.runners:
            state = "alive" if runner.alive else "GONE (not seen for a while)"
            render.out(
                f"runner {runner.host} pid {runner.pid} ({runner.db_user}): {state}, last seen {render.when(runner.seen_at)}"
            )
    else:
        render.out("no runner has reported: start one with flagctl run")
