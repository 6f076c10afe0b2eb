"""flagctl set FLAG VALUE — set one flag directly."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli.common import (
    ActorOpt,
    DryRunOpt,
    Mutation,
    OutputOpt,
    ReasonOpt,
    ScopeOpt,
    YesOpt,
    env_of,
    manifest,
    mutate,
    validate_scope,
)
from flagctl.cli.render import Output


def set_flag(
    ctx: typer.Context,
    flag: Annotated[str, typer.Argument(help="The flag to set.")],
    value: Annotated[str, typer.Argument(help="For a rollout flag: N% (enabled at N percent) or off.")],
    scope: ScopeOpt = "global",
    force: Annotated[
        bool, typer.Option("--force", help="Raise exposure of a ladder's flag outside the ladder.")
    ] = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Set one flag. Refused while a kill switch holds it; on a ladder's flag only
    lowering exposure is allowed without --force (use `stage set` to go forward)."""
    from flagctl.core.flags import apply_set, plan_set
    from flagctl.core.values import parse_rollout

    env = env_of(ctx)
    loaded = manifest(env)
    loaded.flag(flag)
    new_value = parse_rollout(value)
    scope = validate_scope(scope)
    mutate(
        env,
        Mutation(reason, yes, actor, dry_run, output),
        "set",
        lambda conn, locked: plan_set(conn, loaded, flag, new_value, scope=scope, force=force, locked=locked),
        lambda conn, plan: apply_set(conn, loaded, plan),
    )
