"""flagctl schedule add|list|cancel — changes recorded now, applied by the runner at their time."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from flagctl.cli import complete, render
from flagctl.cli.commands.stage import LadderArg
from flagctl.cli.common import OutputOpt, ScopeOpt, env_of, moment, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output
from flagctl.errors import UsageError

app = typer.Typer(
    help="Scheduled changes: a stage move, set, kill, release, freeze or profile apply that the runner "
    "(flagctl run) applies at its time, through the same checks — refused if the state it was planned on changed.",
    no_args_is_help=True,
)
add_app = typer.Typer(help="Schedule a change for --at.", no_args_is_help=True)
app.add_typer(add_app, name="add")

AtOpt = Annotated[
    str,
    typer.Option(
        "--at",
        help="When it applies: a time (2026-12-02T09:00Z; UTC if no zone) or a duration from now (2h).",
    ),
]
SwitchArg = Annotated[str, typer.Argument(help="The kill switch.", autocompletion=complete.switches)]


def _schedule(ctx: typer.Context, spec: dict[str, Any], at: str, mutation: Mutation) -> None:
    from flagctl.actions.schedule import ScheduleAdd

    env = env_of(ctx)
    now = env.caps.clock()
    mutate(env, mutation, ScheduleAdd(manifest(env), spec, moment(at, now, "--at"), now))


@add_app.command("stage")
@mutating()
def add_stage(
    ctx: typer.Context,
    ladder: LadderArg,
    stage: Annotated[str, typer.Argument(help="The stage to move to.", autocompletion=complete.stages)],
    at: AtOpt,
    percent: Annotated[int | None, typer.Option("--percent", help="Within a range stage.")] = None,
    *,
    mutation: Mutation,
) -> None:
    """Schedule a stage move (flagctl stage set LADDER STAGE) for --at."""
    _schedule(ctx, {"kind": "stage.set", "ladder": ladder, "stage": stage, "percent": percent}, at, mutation)


@add_app.command("set")
@mutating()
def add_set(
    ctx: typer.Context,
    flag: Annotated[str, typer.Argument(help="The flag to set.", autocompletion=complete.flags)],
    value: Annotated[str, typer.Argument(help="Parsed by the flag's type, as flagctl set parses it.")],
    at: AtOpt,
    scope: ScopeOpt = "global",
    *,
    mutation: Mutation,
) -> None:
    """Schedule a set of one flag (flagctl set FLAG VALUE) for --at."""
    from flagctl.model.scopes import check_scope

    loaded = manifest(env_of(ctx))
    spec = loaded.flag(flag)
    check_scope(loaded, flag, scope)
    try:
        parsed = spec.parse(value)
    except ValueError as exc:
        raise UsageError(f"{flag} ({spec.type}): {exc}") from None
    stored = spec.to_db(parsed)
    _schedule(ctx, {"kind": "set", "flag": flag, "value": stored, "scope": scope}, at, mutation)


@add_app.command("kill")
@mutating()
def add_kill(
    ctx: typer.Context, switch: SwitchArg, at: AtOpt, scope: ScopeOpt = "global", *, mutation: Mutation
) -> None:
    """Schedule a kill (flagctl kill SWITCH) for --at: e.g. a feature that must be off when a promotion ends."""
    _schedule(ctx, {"kind": "kill", "switch": switch, "scope": scope}, at, mutation)


@add_app.command("release")
@mutating()
def add_release(
    ctx: typer.Context, switch: SwitchArg, at: AtOpt, scope: ScopeOpt = "global", *, mutation: Mutation
) -> None:
    """Schedule a release (flagctl release SWITCH) for --at."""
    _schedule(ctx, {"kind": "release", "switch": switch, "scope": scope}, at, mutation)


@add_app.command("freeze")
@mutating()
def add_freeze(
    ctx: typer.Context,
    at: AtOpt,
    scope: Annotated[
        str, typer.Option("--scope", help="global, or KIND:VALUE.", autocompletion=complete.scopes)
    ] = "global",
    until: Annotated[
        str | None,
        typer.Option("--until", help="When the freeze ends: a time, or a duration from --at (4h)."),
    ] = None,
    *,
    mutation: Mutation,
) -> None:
    """Schedule a freeze (flagctl freeze set) for --at: e.g. a change freeze over a holiday."""
    env = env_of(ctx)
    starts = moment(at, env.caps.clock(), "--at")
    ends = moment(until, starts, "--until") if until is not None else None
    spec = {"kind": "freeze.set", "scope": scope, "until": ends.isoformat() if ends else None}
    _schedule(ctx, spec, at, mutation)


@add_app.command("profile")
@mutating()
def add_profile(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The profile.", autocompletion=complete.profiles)],
    at: AtOpt,
    *,
    mutation: Mutation,
) -> None:
    """Schedule a profile apply (flagctl profile apply NAME) for --at."""
    _schedule(ctx, {"kind": "profile.apply", "profile": name}, at, mutation)


@app.command("list")
def schedule_list(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Also those applied, refused or cancelled.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """The scheduled changes (pending ones; --all for every one)."""
    from flagctl.store.schedules import listed

    env = env_of(ctx)
    found = listed(connect(env), manifest(env).system, every)
    if output is Output.json:
        render.emit_json({"schedules": [s.to_json() for s in found]})
        return
    if not found:
        render.out("no scheduled change" + ("" if every else " pending"))
        return
    rows = [
        (s.id, render.when(s.at), s.summary, s.state, s.scheduled_by, render.safe(s.reason or ""),
         render.safe(s.outcome or "") + (f" (by {s.settled_by})" if s.settled_by else ""))
        for s in found
    ]  # fmt: skip
    render.out(render.table(rows, ["id", "at", "change", "state", "by", "reason", "outcome"]))


@app.command("cancel")
@mutating()
def cancel(
    ctx: typer.Context,
    schedule: Annotated[int, typer.Argument(help="The schedule's id (see flagctl schedule list).")],
    *,
    mutation: Mutation,
) -> None:
    """Cancel a pending scheduled change."""
    from flagctl.actions.schedule import ScheduleCancel

    env = env_of(ctx)
    mutate(env, mutation, ScheduleCancel(manifest(env), schedule))
