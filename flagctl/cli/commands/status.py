"""flagctl status [FLAG…] — every flag: value, effective state, stage, kills, last change.

With ``--watch`` it stays: on a terminal a live table redrawn whenever a change commits
(the audit trigger's notification, not a poll); otherwise the status once, then one plain
line per flag whose effective state changed (JSON Lines with ``-o json``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import ConnectionFailed, UsageError

if TYPE_CHECKING:
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest
    from flagctl.views.status import SystemStatus
    from flagctl.views.watch import FlagChange, Update


def status(
    ctx: typer.Context,
    flags: Annotated[
        list[str] | None, typer.Argument(help="Flags to show (default: all).", autocompletion=complete.flags)
    ] = None,
    output: OutputOpt = Output.table,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            "-w",
            help="Stay and show every change as it commits: a live table on a terminal, else "
            "one line per flag whose effective state changed (-o json: one document per change).",
        ),
    ] = False,
    timeout: Annotated[
        str | None, typer.Option("--timeout", help="With --watch: stop after this long (e.g. 10m).")
    ] = None,
    count: Annotated[
        int | None, typer.Option("--count", min=1, help="With --watch: stop after this many changes.")
    ] = None,
) -> None:
    """Show each flag's stored value, effective state, stage, scoped overrides, kill
    switches and last change."""
    from flagctl.views.status import status as system_status

    env = env_of(ctx)
    if not watch and (timeout is not None or count is not None):
        raise UsageError("--timeout and --count bound a watch", "add --watch (-w)")
    until = _deadline(env, timeout)
    loaded = manifest(env)
    if watch:
        _watch(env, loaded, flags, output, until, count)
        return
    result = system_status(connect(env), loaded, flags)
    if output is Output.json:
        render.emit_json(result.to_json())
        return
    _show(result, render.out)


def _show(result: SystemStatus, out: Callable[[str], None]) -> None:
    """The status as people read it: data through ``out``, drift on stderr."""
    out(f"system {result.system}: {_summary(result)}")
    out(render.table(_rows(result), ["flag", "value", "effective", "stage", "killed by", "last change"]))
    for d in result.drift:
        render.error(
            f"drift: {d.describe()}", "changed around the audit trigger; a kill writes its values back"
        )
    for line in _notes(result):
        out(line)


def _rows(result: SystemStatus) -> list[tuple[str, ...]]:
    from flagctl.model.flagtypes import describe, effective_text

    rows: list[tuple[str, ...]] = []
    for flag in result.flags:
        last = flag.last_change
        killed = ", ".join(sw if sc == "global" else f"{sw} ({sc})" for sw, sc in flag.kill_switches)
        rows.append((
            flag.name,
            describe(flag.value),
            flag.effective.text,
            ", ".join(at.text for at in flag.stages),
            killed,
            f"{render.when(last.at)} {last.who}: {last.reason or last.action}" if last else "",
        ))  # fmt: skip
        for scope, value in flag.overrides.items():
            rows.append((f"  └ {scope}", describe(value), effective_text(value), "", "", ""))
    return rows


def _notes(result: SystemStatus) -> list[str]:
    """The engaged kill switches and the freezes in force, a line each."""
    lines = [
        f"kill switch {e.switch} (level {e.level}, scope {e.scope}) engaged "
        f"{render.when(e.engaged_at)} by {e.actor or e.db_user}: {e.reason}"
        for e in result.engaged
    ]
    return lines + [f"frozen: {f.describe()}" for f in result.freezes]


def _summary(result: SystemStatus) -> str:
    """The system at a glance (the line a fan-out shows per target): flags, what is engaged,
    frozen or drifting."""
    parts = [f"{len(result.flags)} flag{'s' if len(result.flags) != 1 else ''}"]
    if result.engaged:
        parts.append(f"killed by {', '.join(sorted({e.switch for e in result.engaged}))}")
    if result.freezes:
        parts.append("frozen")
    if result.drift:
        parts.append(f"{len(result.drift)} drifted")
    return "; ".join(parts) if len(parts) > 1 else f"{parts[0]}; no kill engaged"


# ---------------------------------------------------------------------- --watch


def _deadline(env: Environment, timeout: str | None) -> Any:
    if timeout is None:
        return None
    from flagctl.model.durations import parse_duration

    try:
        length = parse_duration(timeout)
    except ValueError as exc:
        raise UsageError(f"--timeout: {exc}") from None
    if length.total_seconds() <= 0:
        raise UsageError(f"--timeout {timeout} would stop before watching", "give e.g. --timeout 10m")
    return env.caps.clock() + length


class _ReaderGone(Exception):
    """stdout's reader went away (``status --watch | head``): the watch ends, quietly."""


def _line(text: str) -> None:
    """One line on stdout, now; a reader that went away ends the watch."""
    stream = render.console().out()
    try:
        stream.write(render.safe(text) + "\n")
        stream.flush()
    except BrokenPipeError:
        render.reader_gone(stream)
        raise _ReaderGone from None


def _watch(
    env: Environment, loaded: Manifest, names: list[str] | None, output: Output, until: Any, count: int | None
) -> None:
    """Show the status, then every change as it commits, until Ctrl-C (exit 0), --count
    changes or --timeout; a lost connection is exit 3."""
    import psycopg

    from flagctl.store.changes import Listener
    from flagctl.views.watch import watch

    conn = connect(env)
    target = env.resolved_target.name if env.resolved_target is not None else "?"
    live = _live() if output is Output.table and render.console().stdout_is_terminal() else None
    try:
        changes = (env.caps.listen or Listener)(conn, loaded.system)  # LISTEN, before the first read
        for number, update in enumerate(
            watch(conn, loaded, names, changes, env.caps.clock, until=until, count=count)
        ):
            if output is Output.json:
                _line(json.dumps(update.to_json()))
            elif live is not None:
                live.update(_frame(update, target), refresh=True)
            elif number == 0:
                _show(update.status, _line)
                render.note(f"watching {loaded.system} on target {target} for changes — Ctrl-C to stop")
            else:
                for change in update.changes:
                    _line(_change_line(change))
    except (KeyboardInterrupt, _ReaderGone):
        pass  # Ctrl-C, or nobody reads any more: the watch ends there, exit 0
    except (psycopg.OperationalError, ConnectionFailed) as exc:
        if live is not None:
            live.stop()
            live = None
        _lost(env, target, exc, output)
    finally:
        if live is not None:
            live.stop()


def _lost(env: Environment, target: str, exc: Exception, output: Output) -> None:
    """The database went away under the watch: exit 3 (unreachable), said once; with -o
    json also as one line of its own (the stream stays JSON Lines)."""
    text = exc.message if isinstance(exc, ConnectionFailed) else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    error = ConnectionFailed(
        f"status --watch lost the connection to target {target}: {lines[0] if lines else type(exc).__name__}",
        "the watch has stopped; run it again once the database answers",
    )
    render.error(error.message, error.hint, color=env.color())
    if output is Output.json:
        document: dict[str, Any] = {"kind": "ConnectionFailed", "message": error.message, "hint": error.hint}
        document |= {"exit_code": int(error.exit_code), "problems": []}
        with contextlib.suppress(_ReaderGone):
            _line(json.dumps({"error": document}))
    raise typer.Exit(int(error.exit_code))


def _change_line(change: FlagChange) -> str:
    """``2026-12-03 15:02:12 UTC  p3_advisory: on 5% → off (killed by p3-off)  — kill by
    alice: INC-42``: when, the flag at its scope before → after, and the change that did it."""
    row = change.change
    why = f"  — {row.action} by {row.who}: {row.reason or row.action}" if row is not None else ""
    return f"{render.when(change.at)}  {change.text}{why}"


def _live() -> Any:
    from rich.console import Console
    from rich.live import Live

    live = Live(
        console=Console(file=render.console().out()),
        auto_refresh=False,
        transient=False,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    live.start()
    return live


def _frame(update: Update, target: str) -> Any:
    """The live view: a header (target, the newest change, how to stop), the status table,
    the engaged switches and freezes. Text from the database is shown, never parsed as markup."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    result = update.status
    row = update.newest
    last = (
        f"last change #{row.seq} {render.when(row.at)} ({row.action} by {row.who})"
        if row
        else "no change yet"
    )
    header = Text.assemble(
        (render.safe(f"{result.system} on target {target} — watching — Ctrl-C to stop"), "bold"),
        "\n" + render.safe(last),
    )
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("flag", "value", "effective", "stage", "killed by", "last change"):
        table.add_column(column)
    for cells in _rows(result):
        table.add_row(*(Text(render.safe(cell)) for cell in cells))
    parts: list[Any] = [header, table]
    parts += [Text(render.safe(f"drift: {d.describe()}"), style="red") for d in result.drift]
    parts += [Text(render.safe(line)) for line in [_summary(result), *_notes(result)]]
    return Group(*parts)
