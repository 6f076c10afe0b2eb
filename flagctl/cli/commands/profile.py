"""flagctl profile list|show|diff|apply|snapshot|validate|schema — safe-baseline profiles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flagctl.actions.profile import DesiredState
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest

app = typer.Typer(
    help="Safe-baseline profiles: named sets of flag values, applied atomically.", no_args_is_help=True
)

NameArg = Annotated[
    str,
    typer.Argument(
        help="A profile name (in the profiles folder) or a path to one.", autocompletion=complete.profiles
    ),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Raise a ladder flag's exposure (marked in the audit).")
]


@app.command("list")
def list_(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """List the profiles of the manifest's profiles folder."""
    from flagctl.model.profile import list_profiles, profiles_dir

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
    from flagctl.model.flagtypes import describe, to_json
    from flagctl.model.profile import load_profile

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
    from flagctl.model.flagtypes import describe, to_json
    from flagctl.model.profile import load_profile
    from flagctl.views.profile import diff as drift_from

    env = env_of(ctx)
    loaded = manifest(env)
    profile = load_profile(loaded, name)
    drift = drift_from(connect(env), loaded, profile.state)
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
@mutating()
def apply(
    ctx: typer.Context,
    name: NameArg,
    mark_safe: Annotated[bool, typer.Option("--mark-safe", help="Record it as the last safe state.")] = False,
    force: ForceOpt = False,
    *,
    mutation: Mutation,
) -> None:
    """Apply a profile: the diff against the live state, then every change in one transaction."""
    from flagctl.actions.profile import profile_state

    env = env_of(ctx)
    loaded = manifest(env)
    desired = profile_state(loaded, name, mark_safe=mark_safe)
    apply_desired(env, loaded, desired, force, mutation)


@app.command("snapshot")
@mutating(dry_run=False, output=False)
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
    *,
    mutation: Mutation,
) -> None:
    """Write the live state as a profile file (and, with --mark-safe, record it as safe)."""
    from pathlib import Path

    from flagctl.actions.profile import DesiredState
    from flagctl.model.profile import dump_profile, profile_path
    from flagctl.views.profile import live_state

    env = env_of(ctx)
    loaded = manifest(env)
    path = Path(file) if file else profile_path(loaded, name)
    if path.exists() and not overwrite:
        raise UsageError(f"{path} exists", "choose another name, or --overwrite")
    state = live_state(connect(env), loaded)
    if mark_safe:
        desired = DesiredState(f"snapshot:{name}", f"mark the live state safe as snapshot {name}", state,
                               mark_safe="snapshot", name=name)  # fmt: skip
        apply_desired(env, loaded, desired, False, mutation)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        dump_profile(
            loaded, name, state, f"snapshot of the live state ({env.caps.clock():%Y-%m-%d %H:%M %Z})"
        )
    )
    render.note(f"wrote {path}")


@app.command("validate")
def validate(ctx: typer.Context, name: NameArg) -> None:
    """Check a profile file against the manifest, without a database."""
    from flagctl.model.profile import load_profile

    profile = load_profile(manifest(env_of(ctx)), name)
    render.out(f"profile {profile.name} is valid ({len(profile.flags())} flags, {profile.path})")


@app.command("schema")
def schema(ctx: typer.Context) -> None:
    """Print a JSON Schema for this manifest's profile files (for editors)."""
    from flagctl.model.profile import json_schema

    render.emit_json(json_schema(manifest(env_of(ctx))))


def apply_desired(
    env: Environment, loaded: Manifest, desired: DesiredState, force: bool, opts: Mutation
) -> None:
    """Apply a desired state (a profile, a safe point, a past moment) as one action."""
    from flagctl.actions.profile import ApplyState

    mutate(env, opts, ApplyState(loaded, desired, force))
