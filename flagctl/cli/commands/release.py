"""flagctl release SWITCH — restore exactly the values a kill switch replaced."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete
from flagctl.cli.common import ScopeOpt, env_of, mutating
from flagctl.cli.flow import Mutation, manifest, mutate


@mutating()
def release(
    ctx: typer.Context,
    switch: Annotated[
        str, typer.Argument(help="The engaged kill switch to release.", autocompletion=complete.switches)
    ],
    scope: ScopeOpt = "global",
    force: Annotated[
        bool,
        typer.Option("--force", help="Restore the prior values even if the flags changed since the kill."),
    ] = False,
    *,
    mutation: Mutation,
) -> None:
    """Release a kill switch: restore exactly the values it replaced. Refused (exit 4)
    if someone changed those flags in between, unless --force."""
    from flagctl.actions.kill import Release

    env = env_of(ctx)
    mutate(env, mutation, Release(manifest(env), switch, scope, force))
