"""flagctl tokens create|list|revoke — the bearer tokens flagctl serve accepts."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of, mutating
from flagctl.cli.flow import Mutation, connect, manifest, mutate
from flagctl.cli.render import Output

app = typer.Typer(
    help="Bearer tokens for flagctl serve: one per application of the system, stored as a hash, "
    "read-only by construction (a relay answers reads only). Creating and revoking one needs flagctl_admin.",
    no_args_is_help=True,
)

ApplicationArg = Annotated[
    str, typer.Argument(help="The application the token is for (lower-case letters, digits, '_', '.', '-').")
]


@app.command("create")
@mutating()
def create(ctx: typer.Context, application: ApplicationArg, *, mutation: Mutation) -> None:
    """Create a token for an application; it is printed once, and only its hash is kept."""
    from flagctl.actions.tokens import TokenCreate

    env = env_of(ctx)
    mutate(env, mutation, TokenCreate(manifest(env), application))


@app.command("revoke")
@mutating()
def revoke(ctx: typer.Context, application: ApplicationArg, *, mutation: Mutation) -> None:
    """Revoke an application's token: every relay refuses it from its next reload (at once,
    through the change notification)."""
    from flagctl.actions.tokens import TokenRevoke

    env = env_of(ctx)
    mutate(env, mutation, TokenRevoke(manifest(env), application))


@app.command("list")
def token_list(
    ctx: typer.Context,
    every: Annotated[bool, typer.Option("--all", help="Also the revoked ones.")] = False,
    output: OutputOpt = Output.table,
) -> None:
    """The system's tokens: application, who created it, when and why (never the secret)."""
    from flagctl.store.tokens import listed

    env = env_of(ctx)
    found = listed(connect(env), manifest(env).system, every)
    if output is Output.json:
        render.emit_json({"tokens": [t.to_json() for t in found]})
        return
    if not found:
        render.out("no token" + ("" if every else " is live") + " (flagctl tokens create APPLICATION)")
        return
    rows = [
        (t.name, t.created_by, render.when(t.created_at), render.safe(t.reason or ""),
         f"revoked {render.when(t.revoked_at)} by {t.revoked_by}" if t.revoked_at else "live")
        for t in found
    ]  # fmt: skip
    render.out(render.table(rows, ["application", "created by", "created", "reason", "state"]))
