"""flagctl clients — the application processes running a gate, and how far behind they are."""

from __future__ import annotations

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output


def list_clients(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Gate clients of this system: host, pid, application, when last seen, and how many
    changes they have not applied yet (lag). A client reading through flagctl serve is
    listed under its relay (its own name, no pid)."""
    from flagctl.store.clients import clients

    env = env_of(ctx)
    found = clients(connect(env), manifest(env))
    now = env.caps.clock()
    if output is Output.json:
        render.emit_json({"clients": [c.to_json(now) for c in found]})
        return
    if not found:
        render.out("no gate client has registered (flagctl.gate.Gate registers itself)")
        return
    rows = [
        (c.id if c.relay is None else f"  └ {c.id}", c.host, c.pid if c.relay is None else f"via {c.relay}",
         c.application, render.when(c.seen_at), c.applied_seq, c.behind)
        for c in found
    ]  # fmt: skip
    render.out(render.table(rows, ["id", "host", "pid", "application", "seen", "applied", "behind"]))
