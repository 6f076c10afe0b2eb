"""The kill, and its fast path: ``flagctl kill SWITCH …`` run without the command-line framework.

In the worst hour the kill is the command that must be quick, and importing typer (with
Click) costs more than all of the kill's database work. So the entry point first offers the
command line to ``run``: a kill spelled with the options below is run at once, through the
same flow (``flagctl.cli.flow``) and the same ``engage`` as the typer command. Anything else
— another command, ``--help``, ``--list``, a fan-out over targets, an option not listed
here, a value that looks like an option, text that is not UTF-8 — is left to the full
parser, which runs the same kill or says what is wrong. This reader never reports a usage
error of its own, so the two cannot disagree about what a command line means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flagctl.cli import render
from flagctl.cli.env import Environment
from flagctl.cli.flow import Mutation, aborted, configure, connect, failure_code, manifest, mutate, not_utf8
from flagctl.cli.render import Output

if TYPE_CHECKING:
    from flagctl.model.manifest import Manifest
    from flagctl.views.drift import Drift

# What the fast path reads: option → its parameter (the typer command's names; a test
# checks these against the typer declarations, so the two cannot drift apart).
ROOT_VALUES = {
    "--target": "target", "-t": "target", "--dsn": "dsn", "--manifest": "manifest",
    "--config": "config", "--lock-timeout": "lock_timeout", "--request-id": "request_id",
    "--system": "system",
}  # fmt: skip
ROOT_FLAGS = {"--debug": "debug"}
KILL_VALUES = {
    "--scope": "scope", "--reason": "reason", "-r": "reason", "--actor": "actor",
    "--output": "output", "-o": "output", "--timeout": "timeout", "--live": "live",
}  # fmt: skip
KILL_FLAGS = {
    "--yes": "yes",
    "-y": "yes",
    "--break-locks": "break_locks",
    "--dry-run": "dry_run",
    "--wait-ack": "wait_ack",
}
ROOT_ENVVARS = {"lock_timeout": "FLAGCTL_LOCK_TIMEOUT", "request_id": "FLAGCTL_REQUEST_ID"}
# The defaults of the options above: the one declaration, which the typer commands read
# too (app.py's global options, commands/kill.py); a test compares every default, choice
# and environment variable of the two.
DEFAULTS: dict[str, Any] = {
    "lock_timeout": "5s", "request_id": None, "scope": "global", "output": "table",
    "timeout": "5s", "live": "30s",
}  # fmt: skip
OUTPUTS = tuple(o.value for o in Output)  # --output's choices


@dataclass
class KillLine:
    """A kill command line as the fast path read it: the global options and the kill's."""

    switch: str
    root: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


def read(args: list[str]) -> KillLine | None:
    """``[global options] kill SWITCH [kill options]``, or None for anything else."""
    root: dict[str, Any] = {}
    i = 0
    while i < len(args) and args[i] != "kill":
        i = _option(args, i, ROOT_VALUES, ROOT_FLAGS, root)
        if i < 0:
            return None
    options: dict[str, Any] = {}
    switch = None
    i += 1
    while 0 < i < len(args):
        if not args[i].startswith("-"):
            if switch is not None:
                return None  # a second argument: the parser's to refuse
            switch, i = args[i], i + 1
            continue
        i = _option(args, i, KILL_VALUES, KILL_FLAGS, options)
    if i < 0 or switch is None or options.get("output", DEFAULTS["output"]) not in OUTPUTS:
        return None
    return KillLine(switch, root, options)


def _option(
    args: list[str], i: int, valued: dict[str, str], flags: dict[str, str], into: dict[str, Any]
) -> int:
    """Read the option at ``args[i]`` into ``into``; the index after it, or -1 if it is not
    one the fast path reads plainly (unknown, repeated, missing or option-like value)."""
    word, attached = args[i], None
    if word.startswith("--") and "=" in word:
        word, attached = word.split("=", 1)
    name = valued.get(word) or flags.get(word)
    if name is None or name in into:
        return -1
    if word in flags:
        if attached is not None:
            return -1
        into[name] = True
        return i + 1
    if attached is None:
        if i + 1 >= len(args):
            return -1
        attached, i = args[i + 1], i + 1
    if attached.startswith("-"):
        return -1
    into[name] = attached
    return i + 1


def run(args: list[str], env: Environment | None = None) -> int | None:
    """Run a kill command line on the fast path: its exit code, or None if it is not one
    (the caller hands it to the full parser)."""
    line = read(args)
    if line is None or any(not_utf8(arg) for arg in args) or "," in line.root.get("target", ""):
        return None
    env = env if env is not None else Environment()
    env.activate()
    root, opts = line.root, line.options
    try:
        configure(
            env,
            target=root.get("target"),
            dsn=root.get("dsn"),
            manifest=root.get("manifest"),
            config=root.get("config"),
            debug=bool(root.get("debug")),
            lock_timeout=_given(root, "lock_timeout", env, DEFAULTS["lock_timeout"]),
            request_id=_given(root, "request_id", env, DEFAULTS["request_id"]),
            system=root.get("system"),
        )
        output = Output(opts.get("output", DEFAULTS["output"]))
        env.options.output = output
        mutation = Mutation(
            opts.get("reason"), bool(opts.get("yes")), opts.get("actor"), bool(opts.get("dry_run")), output
        )
        waits = (
            (opts.get("timeout", DEFAULTS["timeout"]), opts.get("live", DEFAULTS["live"]))
            if opts.get("wait_ack")
            else None
        )
        engage(
            env,
            manifest(env),
            line.switch,
            opts.get("scope", DEFAULTS["scope"]),
            mutation,
            bool(opts.get("break_locks")),
            waits,
        )
        return 0
    except (EOFError, KeyboardInterrupt):
        return aborted()
    except Exception as exc:  # the one handler, as for every command
        return failure_code(env, exc)
    finally:
        env.close()


def _given(root: dict[str, Any], name: str, env: Environment, default: Any) -> Any:
    """An option's value as the parser finds it: as given (even empty), else from its
    environment variable if that is set and not empty, else the default."""
    if name in root:
        return str(root[name])
    return env.caps.environ.get(ROOT_ENVVARS[name]) or default


def engage(
    env: Environment,
    loaded: Manifest,
    switch: str,
    scope: str,
    opts: Mutation,
    break_locks: bool,
    waits: tuple[str, str] | None,
) -> None:
    """The kill (``flagctl.actions.engage``, the library's), rendered: the drift it wrote
    over after the COMMIT, then (``waits``: --timeout and --live) the gate clients'
    acknowledgement, exit 1 if one did not apply it."""
    from flagctl.actions.engage import AckWait, await_acks, overwritten_drift
    from flagctl.actions.kill import Kill

    wait = AckWait.parse(*waits) if waits is not None else None
    outcome = mutate(
        env,
        opts,
        Kill(loaded, switch, scope),
        break_locks=break_locks,
        after=lambda conn, outcome: _report_drift(overwritten_drift(conn, loaded, outcome)),
    )
    if wait is None or outcome.dry_run:
        return
    acks = await_acks(connect(env), loaded, wait)
    failure = acks.failure()
    if failure is not None:
        raise failure
    render.note(acks.summary())


def _report_drift(found: list[Drift]) -> None:
    for one in found:
        render.note(
            f"drift before the kill: {one.describe()} (changed around the audit trigger; the kill wrote over it)"
        )
