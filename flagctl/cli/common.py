"""The options every command shares (CONTRACT §2), as typer declares them.

The flow they feed (validate, connect, mutate, render) is ``flagctl.cli.flow``, which does
not import typer: the kill's fast path runs it without the parser.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from flagctl.cli import complete
from flagctl.cli.env import Environment
from flagctl.cli.flow import Mutation
from flagctl.cli.render import Output
from flagctl.errors import UsageError

if TYPE_CHECKING:
    from datetime import datetime

F = TypeVar("F", bound=Callable[..., Any])


def _remember_output(ctx: typer.Context, value: Output) -> Output:
    """Note the output format on the Environment, so an error is printed in it too."""
    env = ctx.find_root().obj
    if isinstance(env, Environment):
        env.options.output = value
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
ScopeOpt = Annotated[
    str, typer.Option("--scope", help="global, or KIND:VALUE.", autocompletion=complete.scopes)
]

# The options of every change, in the order help lists them (after the command's own),
# with their defaults; --dry-run only where the command can show a plan without applying.
_MUTATION = (
    ("reason", ReasonOpt, None),
    ("yes", YesOpt, False),
    ("actor", ActorOpt, None),
    ("dry_run", DryRunOpt, False),
    ("output", OutputOpt, Output.table),
)


def mutating(*, dry_run: bool = True, output: bool = True) -> Callable[[F], F]:
    """A command that changes something: it takes --reason, --yes, --actor, --dry-run and
    --output (each declared here once; ``dry_run=False`` or ``output=False`` for a command
    that has no such option), as one keyword-only ``mutation: Mutation`` parameter."""

    def declare(command: F) -> F:
        signature = inspect.signature(command, eval_str=True)
        own = [p for name, p in signature.parameters.items() if name != "mutation"]
        if len(own) == len(signature.parameters):
            raise TypeError(f"{command.__name__} is @mutating: it needs a `mutation: Mutation` parameter")
        left_out = {name for name, given in (("dry_run", dry_run), ("output", output)) if not given}
        taken = [(name, kind, default) for name, kind, default in _MUTATION if name not in left_out]
        added = [inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=kind)
                 for name, kind, default in taken]  # fmt: skip

        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name, default) for name, _, default in _MUTATION}
            mutation = Mutation(
                given["reason"], given["yes"], given["actor"], given["dry_run"], Output(given["output"])
            )
            return command(*args, mutation=mutation, **kwargs)

        parameters = [*own, *added]
        run.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        run.__annotations__ = {p.name: p.annotation for p in parameters}
        return run  # type: ignore[return-value]

    return declare


def env_of(ctx: typer.Context) -> Environment:
    env = ctx.find_root().obj
    assert isinstance(env, Environment)
    return env


def moment(text: str, now: datetime, option: str) -> datetime:
    """A time given on the command line: ISO (UTC if it names no zone) or a duration from
    ``now``; a usage error naming ``option`` otherwise."""
    from flagctl.model.durations import parse_until

    try:
        return parse_until(text, now)
    except ValueError as exc:
        raise UsageError(f"{option} {exc}", f"e.g. {option} 2026-12-01T18:00Z or {option} 4h") from None
