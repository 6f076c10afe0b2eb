"""The options every command shares (CONTRACT §2), as typer declares them.

The flow they feed (validate, connect, mutate, render) is ``flagctl.cli.flow``, which does
not import typer: the kill's fast path runs it without the parser.
"""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli.env import Environment
from flagctl.cli.render import Output


def _remember_output(ctx: typer.Context, value: Output) -> Output:
    """Note the output format on the Environment, so an error is printed in it too."""
    env = ctx.find_root().obj
    if isinstance(env, Environment):
        env.output = value
    return value


OutputOpt = Annotated[
    Output,
    typer.Option(
        "--output",
        "-o",
        help="table for people, json for scripts (one document; an error is a JSON error object).",
        callback=_remember_output,
    ),
]
YesOpt = Annotated[
    bool,
    typer.Option("--yes", "-y", help="Do not prompt. Without a terminal, required to change anything."),
]
ReasonOpt = Annotated[
    str | None, typer.Option("--reason", "-r", help="Why (required; recorded in the audit trail).")
]
ActorOpt = Annotated[
    str | None,
    typer.Option("--actor", help="Who, as recorded in the audit (default: the OS user)."),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Show the plan and the diff; change nothing.")]
ScopeOpt = Annotated[str, typer.Option("--scope", help="global, or KIND:VALUE.")]


def env_of(ctx: typer.Context) -> Environment:
    env = ctx.find_root().obj
    assert isinstance(env, Environment)
    return env
