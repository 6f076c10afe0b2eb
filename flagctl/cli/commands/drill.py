"""flagctl drill kill|rollback|list|show — rehearse a mitigation for real, then put it back."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, ScopeOpt, env_of, mutating
from flagctl.cli.flow import Mutation, audit_context, connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, NotConfirmed, UsageError

if TYPE_CHECKING:
    from flagctl.actions.drill import Drill, DrillResult
    from flagctl.cli.env import Environment

app = typer.Typer(
    help="Drills: engage a kill switch or step a ladder back for real, prove the effect, time each "
    "step, and leave the state exactly as found.",
    no_args_is_help=True,
)

ReportOpt = Annotated[
    str | None,
    typer.Option("--report", help="Where to write the Markdown report (default: ./drill-ID.md)."),
]
ForceOpt = Annotated[
    bool,
    typer.Option(
        "--force", help="Drill even while a real kill switch is engaged or a rollback is under way."
    ),
]
WindowOpt = Annotated[str, typer.Option("--window", help="Kill proof: how long to watch the phase tables.")]
LagOpt = Annotated[
    str, typer.Option("--stats-lag", help="Kill proof: extra wait for PostgreSQL's statistics.")
]


@app.command("kill")
@mutating(dry_run=False)
def drill_kill(
    ctx: typer.Context,
    switch: Annotated[
        str, typer.Argument(help="The kill switch to drill.", autocompletion=complete.switches)
    ],
    scope: ScopeOpt = "global",
    report: ReportOpt = None,
    force: ForceOpt = False,
    window: WindowOpt = "10s",
    stats_lag: LagOpt = "11s",
    *,
    mutation: Mutation,
) -> None:
    """Engage SWITCH, prove its effect (the manifest's kill proof, or every flag it sets
    holding its kill value), release it, and prove the flag tables are back row for row."""
    env = env_of(ctx)
    drill = _drill(ctx, mutation, force, window, stats_lag, f"drill kill {switch}")
    drill.manifest.switch(switch)
    _run(env, drill, lambda: drill.kill(switch, scope), report, mutation.output)


@app.command("rollback")
@mutating(dry_run=False)
def drill_rollback(
    ctx: typer.Context,
    ladder: Annotated[str, typer.Argument(help="The ladder to drill.", autocompletion=complete.ladders)],
    report: ReportOpt = None,
    force: ForceOpt = False,
    *,
    mutation: Mutation,
) -> None:
    """Step LADDER back one stage at a time to its first, checking each, then return it to
    where it started — exactly."""
    env = env_of(ctx)
    drill = _drill(ctx, mutation, force, "0s", "0s", f"drill rollback {ladder}")
    drill.manifest.ladder(ladder)
    _run(env, drill, lambda: drill.rollback(ladder), report, mutation.output)


@app.command("list")
def drill_list(
    ctx: typer.Context,
    limit: Annotated[int, typer.Option("--limit", "-n", min=1, help="How many, newest first.")] = 20,
    output: OutputOpt = Output.table,
) -> None:
    """The drills of this system, newest first."""
    from flagctl.actions.drill import list_drills

    env = env_of(ctx)
    drills = list_drills(connect(env), manifest(env), limit)
    if output is Output.json:
        render.emit_json({"drills": drills})
        return
    if not drills:
        render.out("no drills yet: flagctl drill kill SWITCH or flagctl drill rollback LADDER")
        return
    rows = [
        (d["id"], d["started_at"][:19], d["kind"], d["subject"], d["scope"], d["verdict"],
         {True: "yes", False: "NO", None: "—"}[d["restored"]], d["actor"] or d["db_user"], _worst(d["steps"]))
        for d in drills
    ]  # fmt: skip
    render.out(
        render.table(
            rows, ["id", "started", "kind", "subject", "scope", "verdict", "restored", "by", "slowest step"]
        )
    )


@app.command("show")
def drill_show(
    ctx: typer.Context,
    drill_id: Annotated[int, typer.Argument(help="The drill's id (flagctl drill list).")],
    output: OutputOpt = Output.table,
) -> None:
    """A drill's report (Markdown), or with -o json its record."""
    from flagctl.actions.drill import show_drill

    env = env_of(ctx)
    found = show_drill(connect(env), manifest(env), drill_id)
    if output is Output.json:
        render.emit_json(found)
        return
    render.out(found["report"] or f"drill {drill_id} has no report: it is {found['verdict']}")


def _drill(
    ctx: typer.Context,
    mutation: Mutation,
    force: bool,
    window: str,
    stats_lag: str,
    what: str,
) -> Drill:
    from flagctl.actions.drill import Drill
    from flagctl.model.durations import parse_duration

    env = env_of(ctx)
    loaded = manifest(env)
    try:
        observe, lag = parse_duration(window), parse_duration(stats_lag)
    except ValueError as exc:
        raise UsageError(f"--window/--stats-lag: {exc}") from None
    audit = audit_context(env, mutation, "drill")
    if not mutation.yes and not typer.confirm(
        f"{what} changes the live state for real (and restores it). Continue?", default=False, err=True
    ):
        raise NotConfirmed("not confirmed; nothing was changed")
    return Drill(
        connect(env), loaded, audit, env.caps.clock, sleep=env.caps.sleep, lock_timeout=env.options.lock_timeout, force=force,
        window=observe, stats_lag=lag, progress=_progress(env, mutation.output),
    )  # fmt: skip


def _run(env: Environment, drilling: Drill, run: Any, report: str | None, output: Output) -> None:
    """Run the drill; write its report; say how it went (exit 1 unless it passed)."""
    try:
        drill: DrillResult = run()  # a refusal before it starts raises: nothing recorded or changed
    finally:
        if isinstance(drilling.progress, _Progress):
            drilling.progress.close()
    path = Path(report or f"drill-{drill.id}.md")
    from flagctl.actions.drill import markdown

    try:
        path.write_text(markdown(drill, manifest(env)), encoding="utf-8")
    except OSError as exc:
        render.error(
            f"could not write the report to {path}: {exc.strerror}", f"flagctl drill show {drill.id}"
        )
    if output is Output.json:
        render.emit_json({**drill.to_json(), "report_path": str(path)})
    else:
        _show(drill, path)
    if drill.verdict != "passed":
        restored = "the state was restored exactly" if drill.restored else "THE STATE WAS NOT RESTORED"
        differences = "; ".join(drill.differences)
        raise CheckFailed(
            f"drill {drill.id} {drill.verdict}: {drill.error or 'see the report'}; {restored}"
            + (f": {differences}" if differences else ""),
            f"report: {path} (flagctl drill show {drill.id})",
        )


def _show(drill: DrillResult, path: Path) -> None:
    rows = [
        (n, s.name, "ok" if s.ok else "FAILED", _ms(s.committed_ms), _ms(s.proved_ms))
        for n, s in enumerate(drill.steps, 1)
    ]
    render.out(render.table(rows, ["#", "step", "result", "committed ms", "proved ms"]))
    restored = "restored exactly" if drill.restored else "NOT restored"
    render.out(f"drill {drill.id}: {drill.verdict}, state {restored}; report {path}")


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _worst(steps: list[dict[str, Any]]) -> str:
    timed = [s for s in steps if s.get("proved_ms") is not None]
    if not timed:
        return "—"
    slowest = max(timed, key=lambda s: s["proved_ms"])
    return f"{slowest['name']} ({slowest['proved_ms']:.0f} ms)"


class _Progress:
    """On a terminal: a line per step as it starts, and a live spinner with the step under
    way (the kill proof's window, a lock wait), on stderr — a wait is never silent. Off a
    terminal, or with -o json: nothing."""

    def __init__(self, live: bool) -> None:
        self.live = live
        self.status: Any = None

    def __call__(self, text: str) -> None:
        if not self.live:
            return
        if self.status is None:
            from rich.console import Console

            self.status = Console(stderr=True).status(f"drill: {text}")
            self.status.start()
        else:
            self.status.update(f"drill: {text}")
        self.status.console.log(text)

    def close(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None


def _progress(env: Environment, output: Output) -> _Progress:
    return _Progress(output is Output.table and bool(env.caps.stderr_isatty))
