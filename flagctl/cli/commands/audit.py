"""flagctl audit log | audit verify — read the trail; check it was not rewritten."""

from __future__ import annotations

import contextlib
import json
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import audit_key, connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flagctl.cli.env import Environment
    from flagctl.model.manifest import Manifest
    from flagctl.store.audit import AuditRow, LogFilter

app = typer.Typer(help="Read and verify the audit trail.", no_args_is_help=True)


class LogFormat(StrEnum):
    table = "table"
    json = "json"
    orca = "orca"


@app.command("log")
def log(
    ctx: typer.Context,
    flag: Annotated[list[str] | None, typer.Option("--flag", help="Only this flag (repeatable).")] = None,
    actor: Annotated[
        list[str] | None, typer.Option("--actor", help="Only this actor or database user (repeatable).")
    ] = None,
    action: Annotated[
        list[str] | None,
        typer.Option(
            "--action", help="Only this action (repeatable); a trailing * matches a prefix: stage.*"
        ),
    ] = None,
    since: Annotated[str | None, typer.Option("--since", help="ISO time, or a duration such as 2h.")] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this ISO time, or this long ago.")
    ] = None,
    limit: Annotated[int, typer.Option("--limit", min=1, help="At most this many rows.")] = 50,
    all_systems: Annotated[
        bool, typer.Option("--all-systems", help="Not only the manifest's system.")
    ] = False,
    output: OutputOpt = Output.table,
    log_format: Annotated[
        LogFormat | None,
        typer.Option("--format", help="orca: one JSON line per flag change in the ORCA audit fields."),
    ] = None,
) -> None:
    """Show the audit trail, newest first: who changed what, when, and why."""
    from flagctl.store import audit
    from flagctl.views.audit import orca_record

    env = env_of(ctx)
    loaded = manifest(env)
    where = _filter(env, loaded, flag, actor, action, since, until, all_systems)
    rows = audit.iter_log(connect(env), where, limit)
    chosen = log_format or LogFormat(output.value)
    if chosen is LogFormat.orca:
        for row in rows:
            record = orca_record(loaded, row)
            if record is not None:
                render.out(json.dumps(record, default=str))
        return
    if chosen is LogFormat.json:
        render.emit_json({"rows": [r.to_json() for r in rows]})
        return
    table = []
    for row in rows:
        table.append(
            (
                row.seq,
                render.when(row.at),
                row.who,
                row.action + (" (forced)" if row.forced else ""),
                row.flag or row.target,
                _change(loaded, row),
                row.reason or "",
            )
        )
    render.out(render.table(table, ["#", "at", "who", "action", "flag", "change", "reason"]))


@app.command("export")
def export(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option("--since", help="From this ISO time, or this long ago.")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="Before this ISO time, or this long ago.")
    ] = None,
    file: Annotated[str | None, typer.Option("--file", help="Write here instead of stdout.")] = None,
    all_systems: Annotated[
        bool, typer.Option("--all-systems", help="Not only the manifest's system.")
    ] = False,
) -> None:
    """Every audit row in a time range, oldest first, as JSON Lines (every column, with its
    digest), streamed — for archiving outside the database."""
    from flagctl.store import audit

    env = env_of(ctx)
    loaded = manifest(env)
    where = _filter(env, loaded, None, None, None, since, until, all_systems)
    rows = audit.iter_log(connect(env), where, limit=None, oldest_first=True)
    count = 0
    with contextlib.ExitStack() as stack:
        sink = stack.enter_context(Path(file).open("w", encoding="utf-8")) if file else render.console().out()
        for row in rows:
            sink.write(json.dumps(row.to_json(), default=str) + "\n")
            count += 1
    if file:
        render.note(f"exported {count} audit rows to {file}")


def _filter(
    env: Environment,
    loaded: Manifest,
    flags: list[str] | None,
    actors: list[str] | None,
    actions: list[str] | None,
    since: str | None,
    until: str | None,
    all_systems: bool,
) -> LogFilter:
    from flagctl.model.durations import parse_since
    from flagctl.store.audit import LogFilter

    for name in flags or []:
        loaded.flag(name)
    bounds = []
    for option, text in (("--since", since), ("--until", until)):
        try:
            bounds.append(parse_since(text, env.caps.clock()) if text else None)
        except ValueError as exc:
            raise UsageError(f"{option}: {exc}") from None
    return LogFilter(
        system=None if all_systems else loaded.system,
        flags=flags, actors=actors, actions=actions, since=bounds[0], until=bounds[1],
    )  # fmt: skip


def _change(loaded: Manifest, row: AuditRow) -> str:
    """One readable line for what an audit row records."""
    from flagctl.model.flagtypes import change_text
    from flagctl.store.audit import value_from_row

    if row.target.startswith("kill_switch:"):
        switch = row.target.split(":", 1)[1]
        if row.before is not None and row.after is not None:
            return _engagement_change(loaded, switch, row.before, row.after)
        return ("engaged " if row.after is not None else "released ") + switch
    if row.target.startswith("exemption:"):
        effect = (row.after or row.before or {}).get("effect", "")
        return f"{effect} exemption {'added' if row.after is not None else 'removed'}"
    after = value_from_row(loaded, row, "after")
    before = value_from_row(loaded, row, "before")
    if after is not None or before is not None:
        text = change_text(before, after)
        return text if row.scope in (None, "global") else f"[{row.scope}] {text}"
    if (
        isinstance(row.after, dict)
        and isinstance(row.after.get("guardrails"), list)
        and "refused" not in row.after
    ):
        verdicts = [
            f"{g.get('name')} {g.get('verdict')}" for g in row.after["guardrails"] if isinstance(g, dict)
        ]
        text = "guardrails: " + ", ".join(verdicts)
        return text if len(text) <= 70 else text[:69] + "…"
    if isinstance(row.after, dict) and "refused" in row.after:
        refused = str(row.after["refused"])
        return "refused: " + (refused if len(refused) <= 70 else refused[:69] + "…")
    return "deleted" if row.after is None else ""


def _engagement_change(loaded: Manifest, switch: str, before: Any, after: Any) -> str:
    """An engaged switch's record rewritten: the base beneath it moved (a backward stage
    move under the kill), or the overrides it covers (a kill engaged again)."""
    from flagctl.model.flagtypes import change_text

    def value(flag: str, data: Any) -> Any:
        spec = loaded.flags.get(flag)
        try:
            return data if spec is None or data is None else spec.from_db(data)
        except (TypeError, ValueError, UsageError):
            return data

    was, now = before.get("prior") or {}, after.get("prior") or {}
    moved = [
        f"{flag} {change_text(value(flag, was.get(flag)), value(flag, now[flag]))}"
        for flag in sorted(now)
        if was.get(flag) != now[flag]
    ]
    if moved:
        return f"beneath kill switch {switch}: " + "; ".join(moved)
    return f"kill switch {switch} engaged again: the overrides it covers recorded"


@app.command("verify")
def verify(
    ctx: typer.Context,
    against: Annotated[
        str | None,
        typer.Option("--against", help="A checkpoint (POS:HASH from `audit checkpoint`, or its JSON file)."),
    ] = None,
    since_checkpoint: Annotated[
        str | None,
        typer.Option(
            "--since-checkpoint",
            help="Check only what came after this checkpoint (POS:HASH, or its JSON file), which an "
            "earlier verify covered; the chain must still hold it.",
        ),
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Recompute the audit hash chain: exit 1 if any row was changed, removed or forged
    (or, --against a checkpoint, if the chain was rewritten or cut back since)."""
    from flagctl.store.audit import verify_chain

    env = env_of(ctx)
    checkpoint = _checkpoint(against, "--against") if against else None
    since = _checkpoint(since_checkpoint, "--since-checkpoint") if since_checkpoint else None
    conn = connect(env)
    report = verify_chain(
        conn, against=checkpoint, key=audit_key(env), lock_timeout=env.options.lock_timeout, since=since
    )
    drifted = _drift(env, conn)
    problems = report.problems + [f"drift: {d.describe()}" for d in drifted]
    signatures = {"checked": report.signed, "unchecked": report.unchecked}
    if output is Output.json:
        render.emit_json(
            {
                "ok": not problems,
                "rows": report.rows,
                "sealed_now": report.sealed_now,
                "problems": problems,
                "signatures": signatures,
            }
        )
    elif not problems:
        signed = f"; {report.signed} signatures valid" if report.signed else ""
        since_text = f" since seal {since.pos}" if since else ""
        render.out(
            f"audit chain intact{since_text}: {report.rows} rows, head at row {report.head_seq}{signed}"
        )
        if report.sealed_now:
            render.out(
                f"sealed {report.sealed_now} rows whose at-commit seal had been skipped (the seal was held)"
            )
    if report.unchecked:
        render.note(
            f"{report.unchecked} signatures not checked: give the key that made them "
            "(FLAGCTL_AUDIT_KEY or FLAGCTL_AUDIT_KEY_FILE)"
        )
    if problems and report.ok:
        for problem in problems[1:]:
            render.note(f"  {problem}")
        raise CheckFailed(
            f"the live values differ from the audit trail: {problems[0]}",
            "someone changed them around the audit trigger (session_replication_role, a disabled trigger)",
        )
    if not report.ok:
        for problem in report.problems[1:]:
            render.note(f"  {problem}")
        raise CheckFailed(
            f"audit chain broken: {report.problems[0]}",
            "the trail was rewritten outside flagctl (triggers disabled?); investigate before trusting it",
        )


def _drift(env: Environment, conn: Any) -> list[Any]:
    """Drift of the manifest's flags, when there is a manifest to say which flags (the chain
    itself needs none)."""
    from flagctl.errors import InvalidFile
    from flagctl.views.drift import drift

    try:
        loaded = manifest(env)
    except InvalidFile:
        return []
    return drift(conn, loaded)


@app.command("checkpoint")
def checkpoint(
    ctx: typer.Context,
    file: Annotated[
        str | None, typer.Option("--file", help="Also write the checkpoint to this file (JSON).")
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Print the chain's head to keep outside the database; `audit verify --against` it
    later finds the chain rewritten or cut back since, even by a superuser."""
    from pathlib import Path

    from flagctl.store.audit import checkpoint as head
    from flagctl.store.audit import sign

    env = env_of(ctx)
    key = audit_key(env)
    found = head(connect(env)) if key is None else sign(connect(env), key)
    if found is None:
        raise CheckFailed("nothing is audited yet: there is no chain to checkpoint")
    document = {"pos": found.pos, "seq": found.seq, "hash": found.hash, "checkpoint": found.token()}
    if file:
        Path(file).write_text(json.dumps(document, indent=2) + "\n")
    if output is Output.json:
        render.emit_json(document)
        return
    render.out(found.token())
    render.note(f"keep this outside the database; later: flagctl audit verify --against {found.token()}")


def _checkpoint(text: str, option: str) -> Any:
    from pathlib import Path

    from flagctl.store.audit import Checkpoint

    path = Path(text)
    try:
        if path.exists():
            data = json.loads(path.read_text())
            return Checkpoint.parse(str(data["checkpoint"]))
        return Checkpoint.parse(text)
    except (ValueError, KeyError, TypeError) as exc:
        raise UsageError(f"{option}: {exc}") from None
