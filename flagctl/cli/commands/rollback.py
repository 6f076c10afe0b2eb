"""flagctl rollback --to-last-safe | --status | --override-normal."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import render
from flagctl.cli.commands.profile import ForceOpt, apply_desired
from flagctl.cli.common import env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output
from flagctl.errors import UsageError

if TYPE_CHECKING:
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest


@mutating()
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
    *,
    mutation: Mutation,
) -> None:
    """Roll back to the most recent profile or snapshot marked safe (--to-last-safe); show
    the rollback state machine (--status); or override it back to NORMAL."""
    from flagctl.actions.profile import last_safe

    if sum((to_last_safe, status, override_normal)) != 1:
        raise UsageError("give one of --to-last-safe, --status, --override-normal")
    env = env_of(ctx)
    loaded = manifest(env)
    if status or override_normal:
        _machine(env, loaded, override_normal, mutation)
        return
    desired = last_safe(connect(env), loaded)
    apply_desired(env, loaded, desired, force, mutation)


def _machine(env: Environment, loaded: Manifest, override: bool, opts: Mutation) -> None:
    from flagctl.actions.rollback import OverrideNormal, read_state, spec_of
    from flagctl.model.durations import parse_duration
    from flagctl.rules.rollback import describe

    if override:
        mutate(env, opts, OverrideNormal(loaded, env.caps.clock))
        return
    now = env.caps.clock()
    state = read_state(connect(env), loaded)
    recovery = parse_duration(spec_of(loaded).recovery)
    if opts.output is Output.json:
        render.emit_json({"system": loaded.system, "state": state.state, "since": state.since,
                          "green_since": state.green_since})  # fmt: skip
        return
    render.out(f"rollback state of {loaded.system}: {describe(state, now, recovery)}")
