"""flagctl serve — OFREP, push and the status page over HTTP, one connection per system."""

from __future__ import annotations

from typing import Annotated

import typer

from flagctl.cli.common import env_of
from flagctl.cli.env import Environment
from flagctl.errors import UsageError

SystemsArg = Annotated[
    list[str] | None,
    typer.Argument(
        help="Published systems to serve (flagctl manifest publish); none: the manifest's system, "
        "read from the manifest file (or the published one with --system).",
        show_default=False,
    ),
]


def serve(
    ctx: typer.Context,
    systems: SystemsArg = None,
    host: Annotated[str, typer.Option("--host", help="The address to listen on.", envvar="FLAGCTL_SERVE_HOST")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="The port to listen on.", envvar="FLAGCTL_SERVE_PORT", min=0, max=65535)] = 8080,
    staleness: Annotated[str, typer.Option("--staleness", help="Past this without a confirmed read, /readyz says not ready and answers are stale (reason STALE).")] = "30s",
    check: Annotated[str, typer.Option("--check", help="How often the snapshot is checked against the database (besides every notification).")] = "5s",
    keepalive: Annotated[str, typer.Option("--keepalive", help="How often an idle push stream gets a comment (keeps proxies from closing it).")] = "15s",
) -> None:  # fmt: skip
    """Serve flags over HTTP: OFREP for any OpenFeature SDK, a push stream of changes, the
    read-only status page, /metrics, /healthz and /readyz. One PostgreSQL connection per
    system, whatever the number of clients. Requests need a token (flagctl tokens create)."""
    from flagctl.cli.flow import dsn_of
    from flagctl.model.durations import parse_duration

    try:
        import uvicorn

        from flagctl.serve.app import Settings, build
        from flagctl.serve.relay import Relay
    except ImportError as missing:
        raise UsageError(
            f"flagctl serve needs its optional dependencies ({missing.name} is missing)",
            "pip install 'flagctl[serve]'",
        ) from None
    env = env_of(ctx)
    try:
        stale, every, alive = (parse_duration(v) for v in (staleness, check, keepalive))
    except ValueError as exc:
        raise UsageError(f"--staleness/--check/--keepalive: {exc}") from None
    dsn = dsn_of(env)
    _installed(env)
    if systems:
        relays = [Relay(dsn, system=s, staleness=stale, check=every) for s in dict.fromkeys(systems)]
    elif env.options.system is not None:
        relays = [Relay(dsn, system=env.options.system, staleness=stale, check=every)]
    else:
        from flagctl.cli.flow import manifest

        relays = [Relay(dsn, manifest=manifest(env), staleness=stale, check=every)]
    app = build(relays, Settings(keepalive=alive.total_seconds()))
    names = ", ".join(r.system for r in relays)
    typer.echo(f"flagctl serve: {names} on http://{host}:{port}/ (ctrl-c stops)", err=True)
    # Push streams never end on their own: past 5 s of shutdown they are closed.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, timeout_graceful_shutdown=5)


def _installed(env: Environment) -> None:
    """Before serving: the database is reachable and holds flagctl's current schema (a relay
    on an older one would retry a missing table forever instead of saying so)."""
    from flagctl.cli.flow import connect
    from flagctl.store.schema import status

    found = status(connect(env))
    if not found.installed or found.version < found.latest:
        state = "not installed" if not found.installed else f"at version {found.version} of {found.latest}"
        raise UsageError(f"flagctl's schema is {state} in this database", "run: flagctl db init")
