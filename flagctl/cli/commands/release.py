"""flagctl release SWITCH — restore exactly the values a kill switch replaced."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli.common import ActorOpt, DryRunOpt, OutputOpt, ReasonOpt, ScopeOpt, YesOpt, env_of
from flagctl.cli.flow import Mutation, manifest, mutate
from flagctl.cli.render import Output


def release(
    ctx: typer.Context,
    switch: Annotated[str, typer.Argument(help="The engaged kill switch to release.")],
    scope: ScopeOpt = "global",
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore the prior values even if the flags changed since the kill."),
    ] = False,
    reason: ReasonOpt = None,
    yes: YesOpt = False,
    actor: ActorOpt = None,
    dry_run: DryRunOpt = False,
    output: OutputOpt = Output.table,
) -> None:
    """Release a kill switch: restore exactly the values it replaced. Refused (exit 4)
    if someone changed those flags in between, unless --force."""
    from flagctl.actions.kill import Release

    env = env_of(ctx)
    mutate(env, Mutation(reason, yes, actor, dry_run, output), Release(manifest(env), switch, scope, force))
