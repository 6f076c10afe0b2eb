"""flagctl local start | stop | status — the embedded PostgreSQL."""

from __future__ import annotations

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.render import Output

app = typer.Typer(help="The embedded PostgreSQL in your user data dir.", no_args_is_help=True)


def _show(info: object, output: Output) -> None:
    from flagctl.local import LocalStatus

    assert isinstance(info, LocalStatus)
    if output is Output.json:
        render.emit_json(
            {
                "data_dir": str(info.data_dir),
                "running": info.running,
                "pid": info.pid,
                "socket_dir": info.socket_dir,
                "version": info.version,
                "dsn": info.dsn() if info.running else None,
            }
        )
        return
    if info.running:
        render.out(f"running (pid {info.pid}, PostgreSQL {info.version}) in {info.data_dir}")
        render.out(f"dsn: {info.dsn()}")
    else:
        render.out(f"stopped ({info.data_dir})")


@app.command("start")
def start(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Start the embedded PostgreSQL (it is also started on first use)."""
    from flagctl import local

    _show(local.ensure_running(local.data_dir(dict(env_of(ctx).caps.environ))), output)


@app.command("stop")
def stop(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Stop the embedded PostgreSQL."""
    from flagctl import local

    _show(local.stop(local.data_dir(dict(env_of(ctx).caps.environ))), output)


@app.command("status")
def status(ctx: typer.Context, output: OutputOpt = Output.table) -> None:
    """Show whether the embedded PostgreSQL runs, and how to connect to it."""
    from flagctl import local

    _show(local.status(local.data_dir(dict(env_of(ctx).caps.environ))), output)
