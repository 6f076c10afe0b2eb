"""flagctl profile list|show|diff|apply|snapshot|validate|schema, rollback, restore."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import (
    ActorOpt,
    DryRunOpt,
    Mutation,
    OutputOpt,
    ReasonOpt,
    YesOpt,
    connect,
    env_of,
    manifest,
    mutate,
)
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flagctl.actions.profile import Target
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest

app = typer.Typer(
    help="Safe-baseline profiles: named sets of flag values, applied atomically.", no_args_is_help=True
)

NameArg = Annotated[str, typer.Argument(help="A profile name (in the profiles folder) or a path to one.")]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Raise a ladder flag's exposure (marked in the audit).")
]


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """List the profiles of the manifest's profiles folder."""
    from flagctl.actions.profile import list_profiles, profiles_dir

    loaded = manifest(env_of(ctx))
    found = list_profiles(loaded)
    if output is Output.json:
        render.emit_json({"folder": str(profiles_dir(loaded)), "profiles": [
            {"name": p.name, "path": p.path, "description": p.description, "flags": p.flags()} for p in found
        ]})  # fmt: skip
        return
    render.out(
        render.table(
            [(p.name, len(p.flags()), p.description or "") for p in found],
            ["profile", "flags", "description"],
        )
    )


@app.command("show")
def show(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """Show a profile's values."""
    from flagctl.actions.profile import load_profile
    from flagctl.model.flagtypes import describe, to_json

    profile = load_profile(manifest(env_of(ctx)), name)
    if output is Output.json:
        state = {s: {f: to_json(v) for f, v in vals.items()} for s, vals in profile.state.items()}
        render.emit_json(
            {"name": profile.name, "path": profile.path, "description": profile.description, "state": state}
        )
        return
    render.out(f"profile {profile.name}: {profile.description or ''}".rstrip(": "))
    rows = [(f, s, describe(v)) for s, vals in sorted(profile.state.items()) for f, v in sorted(vals.items())]
    render.out(render.table(rows, ["flag", "scope", "value"]))


@app.command("diff")
def diff(ctx: typer.Context, name: NameArg, output: OutputOpt = Output.table) -> None:
    """Compare a profile with the live state: exit 1 if they differ (drift)."""
    from flagctl.actions import profile as profiles
    from flagctl.model.flagtypes import describe, to_json

    env = env_of(ctx)
    loaded = manifest(env)
    profile = profiles.load_profile(loaded, name)
    drift = profiles.diff(connect(env), loaded, profile.state)
    if output is Output.json:
        render.emit_json({"profile": profile.name, "in_sync": not drift, "drift": [
            {"flag": d.flag, "scope": d.scope, "live": to_json(d.live), "profile": to_json(d.wanted)} for d in drift
        ]})  # fmt: skip
    elif drift:
        render.out(render.table([(d.flag, d.scope, describe(d.live), describe(d.wanted)) for d in drift],
                                ["flag", "scope", "live", "profile"]))  # fmt: skip
    else:
        render.out(f"live state matches profile {profile.name}")
    if drift:
        raise CheckFailed(f"{len(drift)} value(s) differ from profile {profile.name}")


@app.command("apply")
def apply(
    ctx: typer.Context,
    name: NameArg,
    mark_safe: Annotated[bool, typer.Option("--mark-safe", help="Record it as the last safe state.")] = False,
    force: ForceOpt = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Apply a profile: the diff against the live state, then every change in one transaction."""
    from flagctl.actions.profile import Target, load_profile

    env = env_of(ctx)
    loaded = manifest(env)
    profile = load_profile(loaded, name)
    target = Target(f"profile.apply:{profile.name}", f"apply profile {profile.name}", profile.state,
                    mark_safe="profile" if mark_safe else None, name=profile.name)  # fmt: skip
    run_target(env, loaded, target, force, Mutation(reason, yes, actor, dry_run, output))


@app.command("snapshot")
def snapshot(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The new profile's name.")],
    file: Annotated[
        str | None, typer.Option("--file", help="Where to write (default: the profiles folder).")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing file.")] = False,
    mark_safe: Annotated[
        bool, typer.Option("--mark-safe", help="Also record the live state as safe.")
    ] = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
) -> None:
    """Write the live state as a profile file (and, with --mark-safe, record it as safe)."""
    from pathlib import Path

    from flagctl.actions.profile import Target, dump_profile, live_state, profile_path

    env = env_of(ctx)
    loaded = manifest(env)
    path = Path(file) if file else profile_path(loaded, name)
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists", "choose another name, or --overwrite")
    state = live_state(connect(env), loaded)
    if mark_safe:
        target = Target(f"snapshot:{name}", f"mark the live state safe as snapshot {name}", state,
                        mark_safe="snapshot", name=name)  # fmt: skip
        run_target(env, loaded, target, False, Mutation(reason, yes, actor, False, Output.table))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        dump_profile(loaded, name, state, f"snapshot of the live state ({env.clock():%Y-%m-%d %H:%M %Z})")
    )
    render.note(f"wrote {path}")


@app.command("validate")
def validate(ctx: typer.Context, name: NameArg) -> None:
    """Check a profile file against the manifest, without a database."""
    from flagctl.actions.profile import load_profile

    profile = load_profile(manifest(env_of(ctx)), name)
    render.out(f"profile {profile.name} is valid ({len(profile.flags())} flags, {profile.path})")


@app.command("schema")
def schema(ctx: typer.Context) -> None:
    """Print a JSON Schema for this manifest's profile files (for editors)."""
    from flagctl.actions.profile import json_schema

    render.emit_json(json_schema(manifest(env_of(ctx))))


def run_target(env: Environment, loaded: Manifest, target: Target, force: bool, opts: Mutation) -> None:
    from flagctl.actions.profile import apply_state, plan_state

    mutate(
        env,
        opts,
        target.action,
        loaded,
        lambda conn, locked: plan_state(conn, loaded, target, force=force, locked=locked),
        lambda conn, plan: apply_state(conn, loaded, plan),
    )


def rollback(
    ctx: typer.Context,
    to_last_safe: Annotated[
        bool, typer.Option("--to-last-safe", help="Back to the last state marked safe.")
    ] = False,
    status: Annotated[
        bool, typer.Option("--status", help="Show the rollback state machine's state.")
    ] = False,
    override_normal: Annotated[
        bool, typer.Option("--override-normal", help="Manual override: set the state machine back to NORMAL.")
    ] = False,
    force: ForceOpt = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Roll back to the most recent profile or snapshot marked safe (--to-last-safe); show
    the rollback state machine (--status); or override it back to NORMAL."""
    from flagctl.actions.profile import last_safe

    if sum((to_last_safe, status, override_normal)) != 1:
        raise UsageError("give one of --to-last-safe, --status, --override-normal")
    env = env_of(ctx)
    loaded = manifest(env)
    if status or override_normal:
        _machine(env, loaded, override_normal, Mutation(reason, yes, actor, dry_run, output))
        return
    target = last_safe(connect(env), loaded)
    run_target(env, loaded, target, force, Mutation(reason, yes, actor, dry_run, output))


def _machine(env: Environment, loaded: Manifest, override: bool, opts: Mutation) -> None:
    from flagctl.actions import rollback as machine
    from flagctl.model.durations import parse_duration

    now = env.clock()
    if override:
        mutate(
            env, opts, "rollback.override", loaded,
            lambda conn, locked: machine.plan_override(conn, loaded, now, locked),
            lambda conn, plan: machine.apply_override(conn, loaded, plan),
        )  # fmt: skip
        return
    state = machine.read_state(connect(env), loaded)
    recovery = parse_duration(machine.spec_of(loaded).recovery)
    if opts.output is Output.json:
        render.emit_json({"system": loaded.system, "state": state.state, "since": state.since,
                          "green_since": state.green_since})  # fmt: skip
        return
    render.out(f"rollback state of {loaded.system}: {machine.describe(state, now, recovery)}")


def restore(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO time, or a duration ago such as 2h.")],
    flag: Annotated[list[str] | None, typer.Option("--flag", help="Only this flag (repeatable).")] = None,
    force: ForceOpt = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Restore the values of a past moment, rebuilt from the audit trail, like a profile."""
    from flagctl.actions.profile import state_as_of
    from flagctl.model.durations import parse_since

    env = env_of(ctx)
    loaded = manifest(env)
    try:
        when = parse_since(as_of, env.clock())
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None
    target = state_as_of(connect(env), loaded, when, flag)
    run_target(env, loaded, target, force, Mutation(reason, yes, actor, dry_run, output))
