"""The ``flagctl`` command: global options, command groups, and the one error handler."""

from __future__ import annotations

import traceback
from typing import Annotated, Any

import typer
from typer._click.exceptions import ClickException  # typer bundles its own Click (>= 0.26)
from typer.core import TyperGroup

from flagctl import __version__
from flagctl.cli import render
from flagctl.cli.env import Environment
from flagctl.core.errors import ExitCode, FlagctlError, ManifestError


class FlagctlGroup(TyperGroup):
    """Maps every domain and database error to its exit code, once, for all commands."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, ClickException):
            raise  # parser errors keep Click's own message and exit code 2
        except Exception as exc:  # the single place failures become exit codes
            raise typer.Exit(_report(ctx, exc)) from None
        finally:
            env = ctx.obj
            if isinstance(env, Environment):
                env.close()


def _report(ctx: Any, exc: Exception) -> int:
    env = ctx.obj if isinstance(ctx.obj, Environment) else None
    debug = bool(env and env.debug)
    error = _domain(exc)
    if error is None:
        traceback.print_exception(exc) if debug else None
        render.error(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in flagctl; re-run with --debug for the traceback",
        )
        return int(ExitCode.FAILED)
    if debug:
        traceback.print_exception(exc)
    render.error(error.message, error.hint)
    if isinstance(error, ManifestError):
        for problem in error.problems[1:]:
            render.note(f"  {problem}")
    return int(error.exit_code)


def _domain(exc: Exception) -> FlagctlError | None:
    if isinstance(exc, FlagctlError):
        return exc
    try:
        import psycopg
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, psycopg.Error):
        from flagctl.core.db import translate

        return translate(exc)
    return None


app = typer.Typer(
    cls=FlagctlGroup,
    name="flagctl",
    help="Progressive rollouts and kill switches whose state lives in PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"flagctl {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    target: Annotated[
        str | None,
        typer.Option("--target", "-t", envvar="FLAGCTL_TARGET", help="Named target from the config file."),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn",
            envvar="FLAGCTL_DSN",
            help="libpq DSN or URI of the control database.",
            show_envvar=True,
        ),
    ] = None,
    manifest: Annotated[
        str | None,
        typer.Option("--manifest", envvar="FLAGCTL_MANIFEST", help="Path to flagctl.yaml."),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", envvar="FLAGCTL_CONFIG", help="Path to the config file."),
    ] = None,
    lock_timeout: Annotated[
        str,
        typer.Option("--lock-timeout", envvar="FLAGCTL_LOCK_TIMEOUT", help="How long to wait for row locks."),
    ] = "5s",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Control rollouts (stage set), kill switches (kill/release) and verify them."""
    from flagctl.core.durations import parse_duration
    from flagctl.core.errors import UsageError

    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    ctx.obj = env
    env.target, env.dsn, env.manifest, env.config, env.debug = target, dsn, manifest, config, debug
    try:
        env.lock_timeout = parse_duration(lock_timeout)
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}") from None


def _register() -> None:
    from flagctl.cli.commands import (
        audit,
        db,
        demo,
        evaluate,
        exempt,
        flags,
        kill,
        local,
        profile,
        rollout,
        stage,
        status,
        verify,
        watch,
    )

    app.add_typer(db.app, name="db")
    app.add_typer(stage.app, name="stage")
    app.add_typer(exempt.app, name="exempt")
    app.add_typer(profile.app, name="profile")
    app.add_typer(flags.app, name="flags")
    app.add_typer(verify.app, name="verify")
    app.add_typer(audit.app, name="audit")
    app.add_typer(local.app, name="local")
    app.command("status")(status.status)
    app.command("kill")(kill.kill)
    app.command("release")(kill.release)
    app.command("set")(rollout.set_flag)
    app.command("eval")(evaluate.eval_flag)
    app.command("rollback")(profile.rollback)
    app.command("restore")(profile.restore)
    app.command("watch")(watch.watch)
    app.command("demo")(demo.demo)


_register()
