"""The ``flagctl`` command: global options, command groups, and the one error handler."""

from __future__ import annotations

import difflib
import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from flagctl import __version__
from flagctl.cli import complete, render
from flagctl.cli.env import Environment
from flagctl.cli.fastkill import DEFAULTS, ROOT_ENVVARS
from flagctl.cli.flow import aborted, configure, failure_code, not_utf8
from flagctl.errors import ExitCode, UsageError


class FlagctlGroup(TyperGroup):
    """Maps every domain and database error to its exit code, once, for all commands, and
    prints every error (the parser's too) as one plain line plus a hint."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        raw = sys.argv[1:] if args is None else list(args)
        bad = next((i for i, arg in enumerate(raw, start=1) if not_utf8(arg)), None)
        if bad is not None and standalone_mode:
            render.error(
                f"argument {bad} is not valid UTF-8 text",
                "check the terminal's encoding; nothing was changed",
            )
            sys.exit(int(ExitCode.USAGE))
        _no_flag_types(self)
        _examples(self, [])
        self.json_asked = _asks_for_json(raw)
        args = self._output_after_command(raw)
        given = (args, prog_name, complete_var)
        if not standalone_mode:
            return super().main(
                *given, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        try:
            code = super().main(
                *given, standalone_mode=False, windows_expand_args=windows_expand_args, **extra
            )
        except typer.TyperException as exc:  # the parser's errors (typer bundles Click's)
            if type(exc).__name__ == "NoArgsIsHelpError":  # `flagctl verify`: which one? its help
                help_text = exc.format_message()  # (rich help is printed as it is made)
                if help_text:
                    render.note(help_text.rstrip("\n"))
                sys.exit(exc.exit_code)
            render.error(exc.format_message(), _parser_hint(exc))
            if self.json_asked:
                render.error_json(type(exc).__name__, exc.format_message(), _parser_hint(exc), exc.exit_code)
            sys.exit(exc.exit_code)
        except (typer.Abort, EOFError, KeyboardInterrupt):
            sys.exit(aborted())
        sys.exit(code if isinstance(code, int) else 0)

    def _output_after_command(self, args: list[str]) -> list[str]:
        """``--output``/``-o`` is every command's option; given before the command
        (``flagctl -o json status``) it is moved after it, where that command reads it (an
        ``-o`` given after the command too wins, as the later one always does)."""
        takes_value = {
            name for p in self.params
            if p.param_type_name == "option" and not getattr(p, "is_flag", False) and not getattr(p, "count", False)
            for name in [*p.opts, *p.secondary_opts]
        }  # fmt: skip
        moved: list[str] = []
        head: list[str] = []
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in ("-o", "--output") and i + 1 < len(args):
                moved += args[i : i + 2]
                i += 2
            elif arg.startswith("--output=") or (arg.startswith("-o") and len(arg) > 2):
                moved.append(arg)
                i += 1
            elif arg == "--" or not arg.startswith("-"):
                break  # the command, from here on
            else:
                step = 2 if arg in takes_value else 1
                head += args[i : i + step]
                i += step
        if not moved:
            return args
        # after the command's words and arguments, before its first option: where no other
        # option's value can take it (`set FLAG --reason` stays a missing reason)
        rest = args[i:]
        end = next((k for k, arg in enumerate(rest) if arg.startswith("-")), len(rest))
        return [*head, *rest[:end], *moved, *rest[end:]]

    def list_commands(self, ctx: Any) -> list[str]:
        """The commands as an operator meets them (``--help``, completion): look, move, stop,
        check, restore, govern, inspect, set up; any command not placed here comes last."""
        names = super().list_commands(ctx)
        place = {name: i for i, name in enumerate(COMMAND_ORDER)}
        return sorted(names, key=lambda name: (place.get(name, len(place)), name))

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if name and not name.startswith("-") and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=1, cutoff=0.75)
            hint = f"did you mean: flagctl {close[0]}?" if close else "see the commands: flagctl --help"
            raise UsageError(f"no such command {name!r}", hint)
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise  # parser errors: printed by main, exit code 2
        except Exception as exc:  # the single place failures become exit codes
            env = ctx.obj if isinstance(ctx.obj, Environment) else None
            # also before any command parsed its --output (no such command): JSON if asked for
            as_json = True if getattr(self, "json_asked", False) else None
            raise typer.Exit(failure_code(env, exc, as_json)) from None
        finally:
            env = ctx.obj
            if isinstance(env, Environment):
                env.close()


def _no_flag_types(command: Any) -> None:
    """An on/off option takes no value: rich help showed ``--debug <bool>`` as if it did.
    An empty metavar leaves its type column blank (plain help never shows one for a flag)."""
    from types import SimpleNamespace

    # the help option is made on first use, from the context's names: make it now
    helper = command.get_help_option(SimpleNamespace(help_option_names=HELP_NAMES))
    for param in [*getattr(command, "params", []), *([helper] if helper is not None else [])]:
        if getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""
    for sub in getattr(command, "commands", {}).values():
        _no_flag_types(sub)


def _examples(command: Any, path: list[str]) -> None:
    """Every command's help ends with its examples (flagctl.cli.examples)."""
    from flagctl.cli.examples import epilog

    subs = getattr(command, "commands", None)
    if subs:
        for name, sub in subs.items():
            _examples(sub, [*path, name])
    elif command.epilog is None:
        command.epilog = epilog(" ".join(path))


COMMAND_ORDER = (
    "status", "stage", "rollout", "schedule", "run", "set", "eval", "kill", "release", "watch", "verify", "drill",
    "profile", "rollback", "restore", "freeze", "exempt", "requests", "approve", "review",
    "audit", "notify", "serve", "tokens", "clients", "flags", "manifest", "db", "local", "demo",
)  # fmt: skip


def _asks_for_json(args: list[str]) -> bool:
    pairs = zip(args, [*args[1:], ""], strict=False)  # no arguments at all: no pairs
    return any(
        a in ("--output=json", "-ojson") or (a in ("-o", "--output") and b == "json") for a, b in pairs
    )


def _parser_hint(exc: Any) -> str:
    ctx = getattr(exc, "ctx", None)
    path = ctx.command_path if ctx is not None else "flagctl"
    return f"see: {path} --help"


HELP_NAMES = ["-h", "--help"]
# Rich boxes for people at a terminal; plain text for scripts and pipes, which also spares
# them importing rich's help renderer (a third of `flagctl --help`'s start-up).
RICH_HELP = sys.stdout.isatty()


def env_var(name: str) -> str:
    """``[env: NAME]`` for an option's help, as either help renderer shows it (rich reads
    an unescaped ``[...]`` as markup and drops it)."""
    return rf"\[env: {name}]" if RICH_HELP else f"[env: {name}]"


app = typer.Typer(
    cls=FlagctlGroup,
    name="flagctl",
    help="Progressive rollouts and kill switches whose state lives in PostgreSQL.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich" if RICH_HELP else None,
    context_settings={"help_option_names": HELP_NAMES},
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
        typer.Option(
            "--target",
            "-t",
            help="Named target from the config file " + env_var("FLAGCTL_TARGET") + ".",
            autocompletion=complete.targets,
        ),
    ] = None,
    dsn: Annotated[
        str | None,
        typer.Option(
            "--dsn", help="libpq DSN or URI of the control database " + env_var("FLAGCTL_DSN") + "."
        ),
    ] = None,
    manifest: Annotated[
        str | None,
        typer.Option("--manifest", help="Path to flagctl.yaml " + env_var("FLAGCTL_MANIFEST") + "."),
    ] = None,
    config: Annotated[
        str | None,
        typer.Option("--config", help="Path to the config file " + env_var("FLAGCTL_CONFIG") + "."),
    ] = None,
    system: Annotated[
        str | None,
        typer.Option(
            "--system",
            help="Work from the manifest this system published in the database: no local file "
            "needed (e.g. a kill from any machine) " + env_var("FLAGCTL_SYSTEM") + ".",
        ),
    ] = None,
    lock_timeout: Annotated[
        str,
        typer.Option(
            "--lock-timeout",
            envvar=ROOT_ENVVARS["lock_timeout"],
            help="How long to wait for a lock (0: do not wait); then exit 4 naming the holder.",
        ),
    ] = DEFAULTS["lock_timeout"],
    request_id: Annotated[
        str | None,
        typer.Option(
            "--request-id",
            envvar=ROOT_ENVVARS["request_id"],
            help="An id for this change, recorded with its audit rows: a retry with the same id "
            "is not applied twice (a kill always re-runs: it re-asserts). Default: a fresh UUID.",
        ),
    ] = DEFAULTS["request_id"],
    all_targets: Annotated[
        bool,
        typer.Option(
            "--all-targets",
            help="Run on every target of the config file (kill, release, status, verify, stage show).",
        ),
    ] = False,
    per_target_timeout: Annotated[
        str, typer.Option("--per-target-timeout", help="Fan-out: how long each target may take.")
    ] = "30s",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version.")
    ] = False,
) -> None:
    """Control rollouts (stage set), kill switches (kill/release) and verify them."""
    env = ctx.obj if isinstance(ctx.obj, Environment) else Environment()
    ctx.obj = env
    env.activate()
    configure(
        env, target=target, dsn=dsn, manifest=manifest, config=config, debug=debug,
        lock_timeout=lock_timeout, request_id=request_id, system=system,
    )  # fmt: skip
    if all_targets or (target and "," in target):
        _fan_out(ctx, env, target, all_targets, per_target_timeout)


def _fan_out(ctx: typer.Context, env: Environment, target: str | None, every: bool, timeout: str) -> None:
    """--target a,b,c / --all-targets: the command runs once per target (see cli.fanout)."""
    from flagctl.cli import fanout
    from flagctl.model.durations import parse_duration

    name = ctx.invoked_subcommand or ""
    command: tuple[str, ...] = (name,)
    if name == "stage":  # stage show: the word after it
        rest = env.caps.argv[env.caps.argv.index("stage") + 1 :] if "stage" in env.caps.argv else []
        command = (name, next((a for a in rest if not a.startswith("-")), ""))
    if command not in fanout.COMMANDS:
        raise UsageError(
            f"{' '.join(command) or 'this command'} does not fan out over targets",
            "fan-out works for kill, release, status, verify and stage show",
        )
    if command == ("status",) and {"--watch", "-w"} & set(env.caps.argv[env.caps.argv.index("status") + 1 :]):
        raise UsageError("status --watch watches one target", "give one --target; run a watch per target")
    if env.options.dsn:
        raise UsageError("give --dsn or --target/--all-targets, not both")
    try:
        seconds = parse_duration(timeout).total_seconds()
    except ValueError as exc:
        raise UsageError(f"--per-target-timeout: {exc}") from None
    names = fanout.targets_of(env, target, every)
    raise typer.Exit(fanout.run(env, names, env.caps.argv[1:], seconds))


def _register() -> None:
    from flagctl.cli.commands import (
        audit,
        clients,
        db,
        demo,
        drill,
        evaluate,
        exempt,
        flags,
        freeze,
        kill,
        local,
        manifest,
        notify,
        profile,
        release,
        requests,
        restore,
        rollback,
        rollout,
        run,
        schedule,
        serve,
        stage,
        status,
        tokens,
        verify,
        watch,
    )
    from flagctl.cli.commands import set as set_

    app.add_typer(db.app, name="db")
    app.add_typer(stage.app, name="stage")
    app.add_typer(exempt.app, name="exempt")
    app.add_typer(profile.app, name="profile")
    app.add_typer(flags.app, name="flags")
    app.add_typer(verify.app, name="verify")
    app.add_typer(audit.app, name="audit")
    app.add_typer(local.app, name="local")
    app.add_typer(manifest.app, name="manifest")
    app.add_typer(drill.app, name="drill")
    app.add_typer(freeze.app, name="freeze")
    app.add_typer(rollout.app, name="rollout")
    app.add_typer(schedule.app, name="schedule")
    app.add_typer(notify.app, name="notify")
    app.add_typer(requests.review_app, name="review")
    app.add_typer(tokens.app, name="tokens")
    app.command("requests")(requests.list_requests)
    app.command("approve")(requests.approve)
    app.command("clients")(clients.list_clients)
    app.command("status")(status.status)
    app.command("kill")(kill.kill)
    app.command("release")(release.release)
    app.command("set")(set_.set_flag)
    app.command("eval")(evaluate.eval_flag)
    app.command("rollback")(rollback.rollback)
    app.command("restore")(restore.restore)
    app.command("watch")(watch.watch)
    app.command("run")(run.run)
    app.command("serve")(serve.serve)
    app.command("demo")(demo.demo)


_register()
