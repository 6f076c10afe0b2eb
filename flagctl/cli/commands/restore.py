"""flagctl restore --as-of T — the values of a past moment, rebuilt from the audit trail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli.commands.profile import ForceOpt, apply_desired
from flagctl.cli.common import env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest
from flagctl.errors import UsageError

if TYPE_CHECKING:
    pass


@mutating()
def restore(
    ctx: typer.Context,
    as_of: Annotated[str, typer.Option("--as-of", help="ISO time, or a duration ago such as 2h.")],
    flag: Annotated[list[str] | None, typer.Option("--flag", help="Only this flag (repeatable).")] = None,
    force: ForceOpt = False,
    *,
    mutation: Mutation,
) -> None:
    """Restore the values of a past moment, rebuilt from the audit trail, like a profile."""
    from flagctl.actions.profile import state_as_of
    from flagctl.model.durations import parse_since

    env = env_of(ctx)
    loaded = manifest(env)
    try:
        when = parse_since(as_of, env.caps.clock())
    except ValueError as exc:
        raise UsageError(f"--as-of: {exc}") from None
    desired = state_as_of(connect(env), loaded, when, flag)
    apply_desired(env, loaded, desired, force, mutation)
