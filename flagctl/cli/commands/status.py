"""flagctl status [FLAG…] — every flag: value, effective state, stage, kills, last change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output

if TYPE_CHECKING:
    from flagctl.views.status import SystemStatus


def status(
    ctx: typer.Context,
    flags: Annotated[list[str] | None, typer.Argument(help="Flags to show (default: all).")] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Show each flag's stored value, effective state, stage, scoped overrides, kill
    switches and last change."""
    from flagctl.model.flagtypes import describe, effective_text
    from flagctl.views.status import status as system_status

    env = env_of(ctx)
    loaded = manifest(env)
    result = system_status(connect(env), loaded, flags)
    if output is Output.json:
        render.emit_json(result.to_json())
        return
    rows = []
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
    render.out(f"system {result.system}: {_summary(result)}")
    render.out(render.table(rows, ["flag", "value", "effective", "stage", "killed by", "last change"]))
    for d in result.drift:
        render.error(
            f"drift: {d.describe()}", "changed around the audit trigger; a kill writes its values back"
        )
    for e in result.engaged:
        render.out(
            f"kill switch {e.switch} (level {e.level}, scope {e.scope}) engaged "
            f"{render.when(e.engaged_at)} by {e.actor or e.db_user}: {e.reason}"
        )
    for f in result.freezes:
        render.out(f"frozen: {f.describe()}")


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
