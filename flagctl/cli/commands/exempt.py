"""flagctl exempt add | remove | list — allow/deny exemptions of one scope from a flag."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output
from flagctl.errors import UsageError

app = typer.Typer(
    help="Allow or deny one scope, such as publisher:42, regardless of its bucket.", no_args_is_help=True
)

FlagArg = Annotated[str, typer.Argument(help="The flag.", autocompletion=complete.flags)]
ScopeArg = Annotated[
    str,
    typer.Argument(
        help="The exempted scope, KIND:VALUE (e.g. publisher:42).", autocompletion=complete.scopes
    ),
]


@app.command("add")
@mutating()
def add(
    ctx: typer.Context,
    flag: FlagArg,
    scope: ScopeArg,
    allow: Annotated[
        bool, typer.Option("--allow", help="Eligible whatever its bucket (not when off).")
    ] = False,
    deny: Annotated[bool, typer.Option("--deny", help="Never eligible (beats --allow).")] = False,
    note: Annotated[str | None, typer.Option("--note", help="Kept with the exemption.")] = None,
    *,
    mutation: Mutation,
) -> None:
    """Exempt a scope from a flag's bucketing: --allow or --deny."""
    if allow == deny:
        raise UsageError("give exactly one of --allow and --deny")
    _run(ctx, flag, scope, "allow" if allow else "deny", note, mutation)


@app.command("remove")
@mutating()
def remove(
    ctx: typer.Context,
    flag: FlagArg,
    scope: ScopeArg,
    *,
    mutation: Mutation,
) -> None:
    """Remove a scope's exemption: its bucket decides again."""
    _run(ctx, flag, scope, None, None, mutation)


def _run(
    ctx: typer.Context, flag: str, scope: str, effect: str | None, note: str | None, opts: Mutation
) -> None:
    from flagctl.actions.exempt import Exempt

    env = env_of(ctx)
    mutate(env, opts, Exempt(manifest(env), flag, scope, effect, note))


@app.command("list")
def list_(
    ctx: typer.Context,
    flag: Annotated[str | None, typer.Argument(help="Only this flag.", autocompletion=complete.flags)] = None,
    output: OutputOpt = Output.table,
) -> None:
    """List exemptions."""
    from flagctl.store.exemptions import list_exemptions

    env = env_of(ctx)
    loaded = manifest(env)
    if flag:
        loaded.flag(flag)
    rows = list_exemptions(connect(env), loaded, flag)
    if output is Output.json:
        render.emit_json({"system": loaded.system, "exemptions": rows})
        return
    render.out(render.table(
        [(r["flag"], r["scope"], r["effect"], r["note"] or "", render.when(r["created_at"]), r["actor"] or "")
         for r in rows],
        ["flag", "scope", "effect", "note", "since", "by"],
    ))  # fmt: skip
