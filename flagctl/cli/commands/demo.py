"""flagctl demo — the WS8 Phase 3 rollout, end to end, on the embedded PostgreSQL.

Every step is a real flagctl command, run in-process against a fresh ``flagctl_demo``
database; the only pretence is the clock, fast-forwarded past the canary's bake time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any

import typer

from flagctl.cli import render
from flagctl.cli.common import env_of
from flagctl.cli.env import Environment, utc_now
from flagctl.core.errors import CheckFailed

DATABASE = "flagctl_demo"


@dataclass
class SimulatedClock:
    offset: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return utc_now() + self.offset


@dataclass(frozen=True)
class Step:
    say: str
    argv: list[str] | None = None
    expect: int = 0
    sql: str | None = None
    advance: timedelta | None = None


def steps() -> list[Step]:
    why = ["--yes", "--actor", "demo"]
    return [
        Step("Install flagctl's schema and bind WS8's p3_feature_state (the seed's table, "
             "still the single source of truth).", ["db", "init"]),
        Step("Phase 3 starts fully dark.", ["status"]),
        Step("Stage 1 — canary: ~1% of resumes.",
             ["stage", "set", "p3", "canary", "-r", "WS8 stage 1: internal validation", *why]),
        Step("Straight on to limited? The canary must bake 30 minutes first: refused (exit 1).",
             ["stage", "set", "p3", "limited", "-r", "expand", *why], expect=1),
        Step("[simulated clock: 31 minutes pass]", advance=timedelta(minutes=31)),
        Step("A contract violation is logged by Phase 3 …",
             sql="INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')"),
        Step("… so the required guardrail fails and the promotion is refused (exit 1).",
             ["stage", "set", "p3", "limited", "-r", "expand", *why], expect=1),
        Step("The violation is investigated and the test event removed.",
             sql="DELETE FROM p3_events WHERE kind = 'phase3.contract_violation'"),
        Step("Stage 2 — limited, at 5%: bake done, guardrails green.",
             ["stage", "set", "p3", "limited", "--percent", "5", "-r", "WS8 stage 2", *why]),
        Step("Where the ladder stands.", ["stage", "show", "p3"]),
        Step("Incident: kill Phase 3 now. One transaction, no bake, no guardrail.",
             ["kill", "p3-off", "-r", "INC-42: advisory errors spiking", *why]),
        Step("The seed's own check: exactly what WS8 §6's UPDATE gives.",
             sql="SELECT enabled, rollout_percent FROM p3_feature_state WHERE feature_name = 'p3_advisory'"),
        Step("While killed, no stage may move (exit 1): the kill beats everything.",
             ["stage", "set", "p3", "dark", "-r", "tidy up", *why], expect=1),
        Step("Proof (WS8 §9.2): while killed, no p3_* table is written. It watches the write counters "
             "for 2 s, then waits 11 s more, because PostgreSQL flushes an idle session's counters lazily.",
             ["verify", "kill", "--window", "2s"]),
        Step("Mitigated: release restores exactly the values from before the kill.",
             ["release", "p3-off", "-r", "INC-42 mitigated", *why]),
        Step("Proof (WS8 §9.1): gating is deterministic — Python and SQL agree, stable, monotonic, on target.",
             ["verify", "gating", "--sample", "2000"]),
        Step("Another contract violation, and nobody at the keyboard …",
             sql="INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')"),
        Step("… `watch --auto` sees the P1 guardrail fail and rolls back by itself (exit 1: a rollback was needed).",
             ["watch", "--once", "--auto", "-r", "watchdog", *why], expect=1),
        Step("The rollback state machine now.", ["rollback", "--status"]),
        Step("Who did what, when and why — written by the database's own trigger.",
             ["audit", "log", "--limit", "14"]),
        Step("And nobody rewrote it.", ["audit", "verify"]),
    ]  # fmt: skip


def demo(
    ctx: typer.Context,
    keep: Annotated[
        bool,
        typer.Option("--keep/--reset", help="Keep an existing demo database instead of recreating it."),
    ] = False,
) -> None:
    """Set up the WS8 Phase 3 example in the embedded PostgreSQL and walk a rollout, a
    bake refusal, a guardrail breach, a kill and its proof, a release, an automatic
    rollback by `watch --auto`, then the audit trail."""
    from flagctl.core import local

    env = env_of(ctx)
    server = local.ensure_running(local.data_dir(dict(env.environ)))
    dsn = server.dsn(DATABASE)
    example = resources.files("flagctl").joinpath("examples", "ws8")
    manifest_path = str(example.joinpath("flagctl.yaml"))
    _prepare(server.dsn("postgres"), dsn, example.joinpath("schema.sql").read_text(), keep)

    render.out(f"flagctl demo — WS8 Phase 3 on the embedded PostgreSQL (database {DATABASE})")
    render.out(f"manifest: {manifest_path}")
    render.out(f"try it yourself: export FLAGCTL_DSN='{dsn}' FLAGCTL_MANIFEST='{manifest_path}'")
    clock = SimulatedClock()
    failures = []
    for number, step in enumerate(steps(), start=1):
        render.out("")
        render.out(f"── {number}. {step.say}")
        if step.advance:
            clock.offset += step.advance
        if step.sql:
            render.out(f'$ psql -c "{step.sql}"')
            _sql(dsn, step.sql)
        if step.argv:
            render.out("$ flagctl " + " ".join(_quote(a) for a in step.argv))
            code = _run(
                step.argv,
                Environment(
                    environ={**env.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": manifest_path},
                    clock=clock,
                    stdin_isatty=False,
                    argv=["flagctl", *step.argv],
                ),
            )
            if code != step.expect:
                failures.append(f"step {number} exited {code}, expected {step.expect}")
    render.out("")
    if failures:
        raise CheckFailed("the demo did not go as expected: " + "; ".join(failures))
    render.out(
        "demo complete: rollout, bake refusal, guardrail breach, kill and its proof, release, auto-rollback, audit."
    )


def _run(argv: list[str], env: Environment) -> int:
    from flagctl.cli.app import app

    command = typer.main.get_command(app)
    try:
        result = command.main(args=argv, prog_name="flagctl", standalone_mode=False, obj=env)
    except typer.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _prepare(admin_dsn: str, dsn: str, schema_sql: str, keep: bool) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone()
        if exists and keep:
            return
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(DATABASE)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(DATABASE)))
    _sql(dsn, schema_sql)


def _sql(dsn: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement.encode())
        if cur.description:
            names = [c.name for c in cur.description]
            rows: list[Any] = cur.fetchall()
            render.out(render.table(rows, names))


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)
