"""flagctl set FLAG VALUE [--scope S] — set one typed flag directly."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete
from flagctl.cli.common import ScopeOpt, env_of, mutating
from flagctl.cli.flow import Mutation, manifest, mutate
from flagctl.errors import UsageError


@mutating()
def set_flag(
    ctx: typer.Context,
    flag: Annotated[str, typer.Argument(help="The flag to set.", autocompletion=complete.flags)],
    value: Annotated[
        str | None,
        typer.Argument(
            help="Parsed by the flag's type: rollout N% / internal / off; bool on/off/true/false; "
            "int/float a number; enum one of its values; list comma-separated."
        ),
    ] = None,
    scope: ScopeOpt = "global",
    unset: Annotated[bool, typer.Option("--unset", help="Remove the override at --scope.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Raise exposure of a ladder's flag outside the ladder.")
    ] = False,
    *,
    mutation: Mutation,
) -> None:
    """Set one flag, globally or for one scope. Refused while a kill switch holds it; on
    a ladder's flag only lowering exposure is allowed without --force (use `stage set`)."""
    from flagctl.actions.set import SetFlag
    from flagctl.model.scopes import check_scope

    env = env_of(ctx)
    loaded = manifest(env)
    spec = loaded.flag(flag)
    check_scope(loaded, flag, scope)
    if unset == (value is not None):
        raise UsageError("give a VALUE, or --unset with --scope", f"e.g. flagctl set {flag} VALUE -r …")
    if unset and scope == "global":
        raise UsageError("--unset removes a scoped override; the global value cannot be unset")
    try:
        new_value = None if value is None else spec.parse(value)
    except ValueError as exc:
        raise UsageError(f"{flag} ({spec.type}): {exc}") from None
    mutate(env, mutation, SetFlag(loaded, flag, new_value, scope, force))
