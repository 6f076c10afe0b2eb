"""The mutation flow every command shares, without typer (the kill's fast path uses it too).

A mutating command validates everything it can (reason, confirmation possible, manifest,
arguments) before it connects, then hands an action to ``mutate``; ``failure_code`` turns
any failure into its message and exit code, once for every command.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flagctl.cli import render
from flagctl.cli.env import Environment
from flagctl.cli.render import Output
from flagctl.errors import FlagctlError, PermissionDenied, UsageError

if TYPE_CHECKING:
    from collections.abc import Callable

    import psycopg

    from flagctl.actions.base import Action, Outcome, Plan
    from flagctl.config import Target
    from flagctl.model.manifest import Manifest
    from flagctl.store.audit import AuditKey
    from flagctl.store.db import AuditContext


@dataclass(frozen=True)
class Mutation:
    """The options every mutating command takes."""

    reason: str | None
    yes: bool
    actor: str | None
    dry_run: bool
    output: Output


def _system(env: Environment, system: str | None, manifest: str | None) -> str | None:
    """The system whose published manifest a command works from, if any: the command line
    beats the environment, and the two ways of naming a manifest are never both taken."""
    if system is not None and manifest is not None:
        raise UsageError(
            "--system reads the manifest published in the database, --manifest a local file: give one",
            "flagctl manifest diff compares the two",
        )
    if system is not None:
        return system
    from_env = env.caps.environ.get("FLAGCTL_SYSTEM") or None
    if from_env is None or manifest is not None:
        return None  # --manifest on the command line beats FLAGCTL_SYSTEM
    if env.caps.environ.get("FLAGCTL_MANIFEST"):
        raise UsageError(
            "FLAGCTL_SYSTEM and FLAGCTL_MANIFEST are both set: a published manifest or a local file?",
            "unset one, or say which on the command line: --system NAME or --manifest PATH",
        )
    return from_env


def local_manifest(env: Environment, command: str) -> Manifest:
    """The local manifest file, for the commands that compare or publish it (never the
    published one: --system would make them compare the published text with itself)."""
    if env.options.system is not None:
        raise UsageError(
            f"{command} works on a local manifest file, not the published one (--system / FLAGCTL_SYSTEM)",
            "give --manifest PATH (or FLAGCTL_MANIFEST) instead",
        )
    return manifest(env)


def manifest(env: Environment) -> Manifest:
    """The manifest a command works from: with --system (FLAGCTL_SYSTEM), the one published
    in the target's database; else the local file (--manifest, FLAGCTL_MANIFEST, the
    target's, ./flagctl.yaml)."""
    from flagctl.model.cache import ManifestCache
    from flagctl.model.manifest import load_manifest

    cache = ManifestCache.from_environ(env.caps.environ)
    if env.options.system is not None:
        from flagctl.store.catalogue import published_manifest

        return published_manifest(connect(env), env.options.system, cache)
    return load_manifest(manifest_path(env), cache)


def manifest_path(env: Environment) -> str:
    """The local manifest file's path: --manifest, FLAGCTL_MANIFEST, the target's, ./flagctl.yaml."""
    from flagctl.config import resolve_manifest_path

    return str(resolve_manifest_path(_options(env), env.caps.environ, _target(env)))


def connect(env: Environment) -> psycopg.Connection[Any]:
    from flagctl.store.db import connect as db_connect

    conn = db_connect(_target(env), sleep=env.caps.sleep)
    env.own(conn)
    if env.caps.connected is not None:
        env.caps.connected(conn)
    return conn


def dsn_of(env: Environment) -> str:
    """The target's connection string (the embedded server's, started if it is not running),
    for what opens its own connections (flagctl serve's relays)."""
    target = _target(env)
    if target.dsn is not None:
        return target.dsn
    from flagctl import local

    return local.ensure_running(local.data_dir()).dsn()


def _options(env: Environment) -> Any:
    from flagctl.config import Options

    return Options(
        target=env.options.target,
        dsn=env.options.dsn,
        manifest=env.options.manifest,
        config=env.options.config,
    )


def _target(env: Environment) -> Target:
    from flagctl.config import resolve_target

    if env.resolved_target is None:
        env.resolved_target = resolve_target(_options(env), env.caps.environ)
    target: Target = env.resolved_target
    return target


def mutate(
    env: Environment,
    opts: Mutation,
    action: Action[Any],
    break_locks: bool = False,
    after: Callable[[psycopg.Connection[Any], Outcome], None] | None = None,
    approving: int | None = None,
) -> Outcome:
    """Run one action with the shared rules (reason, confirmation, audit), then render it
    (``after``: first report more about an outcome, on the same connection)."""
    from psycopg import errors as pg_errors

    from flagctl.actions.base import execute
    from flagctl.store.db import GENERIC_PRIVILEGE_HINT, translate

    action.validate()  # unknown names, bad scopes: before anything connects
    audit = audit_context(env, opts, action.name)
    confirm = None
    if not opts.yes and not opts.dry_run:
        confirm = _prompt
    conn = connect(env)
    try:
        outcome = execute(
            conn, action, audit, confirm=confirm, dry_run=opts.dry_run, lock_timeout=env.options.lock_timeout,
            reconnect=lambda: connect(env), break_locks=break_locks,
            idempotent=env.options.request_id is not None, approving=approving,
        )  # fmt: skip
    except pg_errors.InsufficientPrivilege as refused:
        # flagctl's own guards (four eyes, the security role's limits) say what to do themselves
        hint = refused.diag.message_hint or role_hint(action.name, conn.info.user)
        raise PermissionDenied(translate(refused).message, hint) from None
    except PermissionDenied as refused:
        given = refused.hint or ""
        generic = not given or given.startswith(GENERIC_PRIVILEGE_HINT)
        raise PermissionDenied(
            refused.message, role_hint(action.name, conn.info.user) if generic else given
        ) from None
    if outcome.note:
        render.note(outcome.note)
    if outcome.applied and (after is not None or audit_key(env) is not None):
        _report(env, conn, outcome, after)
    show_outcome(outcome, opts.output, _target(env))
    return outcome


def role_hint(action: str, user: str) -> str:
    """What to do about a refusal: the flagctl role the action needs, and how to get it."""
    from flagctl.store.roles import role_for

    role = role_for(action)
    return f"{action} needs the flagctl role {role}; an admin runs: flagctl db grant {role} {user}"


def audit_context(env: Environment, opts: Mutation, action: str) -> AuditContext:
    """The shared rules of every change, checked before anything connects: a usable audit
    key, ``--yes`` without a terminal, and (``AuditContext.given``, the library's one
    constructor) a plain, bounded --reason and --actor. Returns who acts and why, as the
    audit trail records it."""
    from flagctl.store.db import AuditContext

    audit_key(env)  # a bad key: before anything changes
    context = AuditContext.given(
        action, reason=opts.reason, actor=opts.actor, command=env.command_line(),
        request_id=env.options.request_id, required=not opts.dry_run,
    )  # fmt: skip
    if not opts.yes and not opts.dry_run and not env.is_interactive():
        raise UsageError(
            "refusing to change anything without --yes: there is no terminal to confirm on",
            "re-run with --yes (and --dry-run first to see the plan)",
        )
    return context


def audit_key(env: Environment) -> AuditKey | None:
    """The key that signs the audit chain, from FLAGCTL_AUDIT_KEY or FLAGCTL_AUDIT_KEY_FILE
    (None: not given). Errors never show the key."""
    from pathlib import Path

    from flagctl.store.audit import AuditKey

    text = env.caps.environ.get("FLAGCTL_AUDIT_KEY")
    source = "FLAGCTL_AUDIT_KEY"
    path = env.caps.environ.get("FLAGCTL_AUDIT_KEY_FILE")
    if text is None and path:
        source = f"FLAGCTL_AUDIT_KEY_FILE ({path})"
        try:
            text = Path(path).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not UTF-8 text"
            raise UsageError(f"cannot read the audit key from {source}: {reason}", "check the path") from None
    if text is None:
        return None
    if len(text) < 32:
        raise UsageError(
            f"the audit key in {source} is too short ({len(text)} characters; at least 32)",
            "make one with: python -c 'import secrets; print(secrets.token_hex(32))'",
        )
    return AuditKey(text.encode())


def _report(
    env: Environment,
    conn: psycopg.Connection[Any],
    outcome: Outcome,
    after: Callable[[psycopg.Connection[Any], Outcome], None] | None,
) -> None:
    """After a change committed: sign the chain's head (with an audit key) and report what
    the command reports. The change is made either way: a failure here is said, not raised
    (on a new connection if the one that committed was lost)."""
    import psycopg as pg

    from flagctl.store.audit import sign

    key = audit_key(env)
    try:
        live = connect(env) if conn.closed or conn.broken else conn
        if key is not None:
            sign(live, key)
        if after is not None:
            after(live, outcome)
    except (pg.Error, FlagctlError) as exc:
        why = exc.message if isinstance(exc, FlagctlError) else (exc.diag.message_primary or str(exc))
        render.note(f"the change is made, but what follows it failed: {why}")


def _prompt(plan: Plan) -> bool:
    import typer  # only on a terminal, where a person answers: no hurry

    render.note(plan_text(plan))
    try:
        return typer.confirm("Apply this change?", default=False, err=True)
    except (typer.Abort, EOFError):
        return False


def plan_text(plan: Plan) -> str:
    lines = [plan.summary]
    lines += [f"  {c.label}: {c.describe()}" for c in plan.changes]
    lines += plan.detail_lines()
    if plan.checks:
        lines.append("checks:")
        lines += [f"  - {check}" for check in plan.checks]
    return "\n".join(lines)


def show_outcome(outcome: Outcome, output: Output, target: Target) -> None:
    plan = outcome.plan
    if output is Output.json:
        render.emit_json(
            {
                "target": target.name,
                "action": plan.action,
                "summary": plan.summary,
                "applied": outcome.applied,
                "dry_run": outcome.dry_run,
                "noop": plan.noop,
                "forced": plan.forced,
                "changes": [c.to_json() for c in plan.changes],
                "checks": plan.checks,
                **({"broken_locks": [b.as_json() for b in outcome.broken]} if outcome.broken else {}),
                **plan.details(),
            }
        )
        return
    if plan.noop:
        render.out(f"nothing to do: {plan.noop}")
        return
    render.out(plan_text(plan))
    where = f"target {target.name} ({target.origin})"
    if outcome.dry_run:
        render.out(f"dry run: nothing was changed on {where}")
    else:
        render.out(f"applied to {where}" + (" (forced; marked in the audit)" if plan.forced else ""))


MAX_LOCK_TIMEOUT = timedelta(milliseconds=2**31 - 1)  # PostgreSQL's lock_timeout is an int of ms


def configure(
    env: Environment,
    *,
    target: str | None,
    dsn: str | None,
    manifest: str | None,
    config: str | None,
    debug: bool,
    lock_timeout: str,
    request_id: str | None,
    system: str | None = None,
) -> None:
    """The global options, checked and set on the Environment before any command runs."""
    from flagctl.model.durations import parse_duration

    options = env.options
    options.target, options.dsn, options.manifest, options.config, options.debug = (
        target,
        dsn,
        manifest,
        config,
        debug,
    )
    env.options.system = _system(env, system, manifest)
    if request_id is not None:
        text = request_id.strip()
        if not text or len(text) > 200 or any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
            raise UsageError(
                "--request-id must be 1 to 200 plain characters", "e.g. --request-id deploy-841-rollback"
            )
        env.options.request_id = text
    try:
        env.options.lock_timeout = parse_duration(lock_timeout)
    except ValueError as exc:
        raise UsageError(f"--lock-timeout: {exc}") from None
    if env.options.lock_timeout > MAX_LOCK_TIMEOUT:
        raise UsageError(f"--lock-timeout {lock_timeout}: PostgreSQL waits for a lock at most 24d")


def failure_code(env: Environment | None, exc: Exception, as_json: bool | None = None) -> int:
    """The single place a failure becomes a message and an exit code: a domain or database
    error its own (with its hint), anything else an internal error (traceback with --debug).
    ``as_json``: also the error document on stdout (default: when the command's output is
    JSON; a failure before any command ran passes what the command line asked for)."""
    import traceback

    from flagctl.errors import CheckFailed, ExitCode, InvalidFile

    debug = bool(env and env.options.debug)
    json_out = bool(env and env.options.output == "json") if as_json is None else as_json
    if isinstance(exc, BrokenPipeError):  # output written past render (an export to stdout)
        render.reader_gone(render.console().out())
        return 0  # the reader stopped reading; nothing failed
    error = _domain(exc)
    if error is None:
        traceback.print_exception(exc, file=render.console().err()) if debug else None
        render.error(
            f"internal error: {type(exc).__name__}: {exc}",
            "this is a bug in flagctl; re-run with --debug for the traceback",
        )
        if json_out:
            render.error_json("InternalError", f"{type(exc).__name__}: {exc}", None, int(ExitCode.FAILED))
        return int(ExitCode.FAILED)
    if debug:
        traceback.print_exception(exc, file=render.console().err())
    render.error(error.message, error.hint, color=env.color() if env else None)
    problems = error.problems if isinstance(error, InvalidFile) else []
    for problem in problems[1:]:
        render.note(f"  {problem}")
    if json_out and not isinstance(error, CheckFailed):  # a report was the document
        render.error_json(type(error).__name__, error.message, error.hint, int(error.exit_code), problems)
    return int(error.exit_code)


def aborted() -> int:
    """Ctrl-C, or the end of input at a prompt: said the same way on every path."""
    from flagctl.errors import ExitCode

    render.error("aborted; nothing was changed")
    return int(ExitCode.FAILED)


def _domain(exc: Exception) -> FlagctlError | None:
    if isinstance(exc, FlagctlError):
        return exc
    import psycopg

    if isinstance(exc, psycopg.Error):
        from flagctl.store.db import translate

        return translate(exc)
    return None


def not_utf8(arg: str) -> bool:
    """An argument the OS handed over as bytes that are not UTF-8 (surrogate escapes)."""
    try:
        arg.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
