"""flagctl flags [list] | flags stale — flag metadata and the cleanup policy."""

from __future__ import annotations

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed

app = typer.Typer(help="Flag metadata (owner, dates, plans) and stale flags.")


def _show(ctx: typer.Context, output: Output, stale_only: bool) -> None:
    from flagctl.model.flagtypes import effective_text
    from flagctl.views.lifecycle import flags

    env = env_of(ctx)
    found = flags(connect(env), manifest(env), env.caps.clock())
    if stale_only:
        found = [f for f in found if f.stale]
    if output is Output.json:
        render.emit_json({"flags": [f.to_json() for f in found]})
    else:
        render.out(render.table(
            [(f.name, f.type, f.owner or "", f.created or "", f.remove_by or "", effective_text(f.value),
              "; ".join(f.stale) or ("" if stale_only else "no")) for f in found],
            ["flag", "type", "owner", "created", "remove by", "now", "stale"],
        ))  # fmt: skip
    if stale_only and found:
        raise CheckFailed(
            f"{len(found)} stale flag(s): {', '.join(f.name for f in found)}",
            "remove their code, then the flags",
        )


@app.callback(invoke_without_command=True)
def flags_list(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """List flags with owner, created and removal dates, and whether they are stale."""
    if ctx.invoked_subcommand is None:
        _show(ctx, output, stale_only=False)


@app.command("stale")
def stale(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Flags past their removal date, or at 100% for more than 14 days: exit 1 if any."""
    _show(ctx, output, stale_only=True)
