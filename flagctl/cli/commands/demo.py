"""flagctl demo [ws8|recsys] — an example system, end to end, on the embedded PostgreSQL.

Every step is a real flagctl command, run in-process against a fresh demo database; the
only pretence is the clock, fast-forwarded past a bake time or a recovery period.

The database cannot be fast-forwarded: it stamps every audit row, kill and state with its
own ``now()``. So the demo shows the database on its simulated clock too: each connection a
step opens reads a timestamp as the simulated clock read it when the database wrote it (a
row written after "31 minutes pass" shows 31 minutes later) and writes one back as the
wall-clock time it stands for. One timeline: a promotion is recorded after the time its
refusal said it was allowed from, and a state entered just now is "for 0s". The database
itself keeps the true times (``audit verify`` passes; `try it yourself` shows them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import resources
from typing import Annotated, Any

import typer

from flagctl.cli import render
from flagctl.cli.common import env_of
from flagctl.cli.env import Capabilities, Environment, utc_now
from flagctl.errors import CheckFailed

DATABASE = "flagctl_demo"


@dataclass
class SimulatedClock:
    """The wall clock, fast-forwarded by ``advance`` — and the map between the two."""

    jumps: list[tuple[datetime, timedelta]] = field(default_factory=list)  # (wall clock, forward by)

    @property
    def offset(self) -> timedelta:
        return sum((by for _, by in self.jumps), timedelta())

    def __call__(self) -> datetime:
        return utc_now() + self.offset

    def advance(self, by: timedelta) -> None:
        self.jumps.append((utc_now(), by))

    def shown(self, real: datetime) -> datetime:
        """A wall-clock time (the database's) as this clock read it then."""
        return real + sum((by for at, by in self.jumps if real >= at), timedelta())

    def real(self, shown: datetime) -> datetime:
        """The wall-clock time this clock's reading stands for (the skipped time: its start)."""
        offset = timedelta()
        for at, by in self.jumps:
            if shown < at + offset:
                break
            if shown < at + offset + by:
                return at
            offset += by
        return shown - offset

    def lens(self, conn: Any) -> None:
        """Make ``conn`` read and write timestamps on this clock (see the module)."""
        from psycopg.adapt import Loader
        from psycopg.pq import Format
        from psycopg.types.datetime import DatetimeDumper

        clock = self

        class Real(DatetimeDumper):
            def dump(self, obj: datetime) -> Any:
                return super().dump(clock.real(obj) if obj.tzinfo is not None else obj)

        conn.adapters.register_dumper(datetime, Real)
        oid = conn.adapters.types["timestamptz"].oid
        for fmt in (Format.TEXT, Format.BINARY):
            base = conn.adapters.get_loader(oid, fmt)
            if base is None:
                continue

            class Shown(Loader):
                format = fmt
                wrapped = base

                def __init__(self, oid: int, context: Any = None) -> None:
                    super().__init__(oid, context)
                    self.inner = self.wrapped(oid, context)

                def load(self, data: Any) -> Any:
                    value = self.inner.load(data)
                    return clock.shown(value) if isinstance(value, datetime) else value

            conn.adapters.register_loader(oid, Shown)


@dataclass(frozen=True)
class Step:
    say: str
    argv: list[str] | None = None
    expect: int = 0
    sql: str | None = None
    advance: timedelta | None = None


def ws8_steps() -> list[Step]:
    why = ["--yes", "--actor", "demo"]
    return [
        Step("Install flagctl's schema and bind WS8's p3_feature_state (the seed's table, "
             "still the single source of truth).", ["db", "init"]),
        Step("Phase 3 starts fully dark.", ["status"]),
        Step("Stage 1 — canary: ~1% of resumes.",
             ["stage", "set", "p3", "canary", "-r", "WS8 stage 1: internal validation", *why]),
        Step("Straight on to limited? The canary must bake 30 minutes first: refused (exit 1).",
             ["stage", "set", "p3", "limited", "-r", "expand", *why], expect=1),
        Step("[simulated clock: 31 minutes pass — every time shown from here on, the database's too, is "
             "31 minutes ahead of the wall clock]", advance=timedelta(minutes=31)),
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
        Step("While killed, no stage moves forward (exit 1): the kill beats everything. "
             "(A rollback would move the stage beneath the kill, which the release restores.)",
             ["stage", "next", "p3", "-r", "expand", *why], expect=1),
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


HEALTHY = (
    "INSERT INTO ranking_events (request_id, bucket, k, k_returned, coverage, latency_ms, cache_hit)"
    " SELECT 'req-' || g, g % 100, 10, 10, 0.99, 60 + g % 40, g % 10 <> 0 FROM generate_series(1, 2000) g"
)
SPIKE = (
    "INSERT INTO ranking_events (request_id, bucket, k, k_returned, coverage, latency_ms, cache_hit)"
    " SELECT 'slow-' || g, g % 100, 10, 9, 0.97, 450, false FROM generate_series(1, 800) g"
)


def recsys_steps() -> list[Step]:
    why = ["--yes", "--actor", "demo"]
    return [
        Step("Install flagctl's schema for the recommender (twelve toggles, constraints, safety profiles).",
             ["db", "init"]),
        Step("Its safety baselines, as profiles.", ["profile", "list"]),
        Step("Synthetic traffic: 2,000 healthy ranking requests.", sql=HEALTHY),
        Step("The guardrails (the query templates, in PostgreSQL) all pass.", ["verify", "guardrails"]),
        Step("The watchdog: NORMAL.", ["watch", "--once"]),
        Step("A bad model push: 800 slow, under-filled requests (p95 latency 450 ms).", sql=SPIKE),
        Step("`watch --auto`: P1 breach → ROLLBACK_PENDING → the emergency baseline is applied → ROLLED_BACK.",
             ["watch", "--once", "--auto", "-r", "watchdog", *why], expect=1),
        Step("The live state now matches the emergency profile exactly.", ["profile", "diff", "emergency"]),
        Step("The cause is fixed; the slow requests age out of the window.",
             sql="DELETE FROM ranking_events WHERE request_id LIKE 'slow-%'"),
        Step("Green again: RECOVERY_VERIFY starts its 15 minutes.", ["watch", "--once"]),
        Step("[simulated clock: 16 minutes pass — every time shown from here on, the database's too, is "
             "16 minutes ahead of the wall clock]", advance=timedelta(minutes=16)),
        Step("Green for 15 minutes: NORMAL.", ["watch", "--once"]),
        Step("Back to normal operation, deliberately.", ["profile", "apply", "normal", "-r", "INC-77 resolved", *why]),
        Step("The trail: every transition and change, with its reason.", ["audit", "log", "--limit", "12"]),
    ]  # fmt: skip


@dataclass(frozen=True)
class Walkthrough:
    title: str
    example: str
    database: str
    steps: Callable[[], list[Step]]
    done: str


WALKTHROUGHS = {
    "ws8": Walkthrough(
        "WS8 Phase 3", "ws8", DATABASE, ws8_steps,
        "rollout, bake refusal, guardrail breach, kill and its proof, release, auto-rollback, audit.",
    ),
    "recsys": Walkthrough(
        "the recommender's rollback system", "recsys", DATABASE + "_recsys", recsys_steps,
        "synthetic traffic, a P1 breach, automatic rollback to the emergency baseline, verified recovery.",
    ),
}  # fmt: skip


def demo(
    ctx: typer.Context,
    system: Annotated[str, typer.Argument(help="Which example: ws8 (default) or recsys.")] = "ws8",
    keep: Annotated[
        bool,
        typer.Option("--keep/--reset", help="Keep an existing demo database instead of recreating it."),
    ] = False,
) -> None:
    """Set up an example in the embedded PostgreSQL and walk it with real commands.

    ws8: a rollout, a bake refusal, a guardrail breach, a kill and its proof, a release, an
    automatic rollback by `watch --auto`, then the audit trail. recsys: synthetic traffic,
    a P1 breach, the emergency baseline applied automatically, verified recovery."""
    from flagctl import local
    from flagctl.errors import UsageError

    if system not in WALKTHROUGHS:
        raise UsageError(f"no demo {system!r}", f"demos: {', '.join(WALKTHROUGHS)}")
    walk = WALKTHROUGHS[system]
    env = env_of(ctx)
    server = local.ensure_running(local.data_dir(dict(env.caps.environ)))
    dsn = server.dsn(walk.database)
    example = resources.files("flagctl").joinpath("examples", walk.example)
    manifest_path = str(example.joinpath("flagctl.yaml"))
    _prepare(server.dsn("postgres"), walk.database, dsn, example.joinpath("schema.sql").read_text(), keep)

    render.out(f"flagctl demo — {walk.title} on the embedded PostgreSQL (database {walk.database})")
    render.out(f"manifest: {manifest_path}")
    render.out(f"try it yourself: export FLAGCTL_DSN='{dsn}' FLAGCTL_MANIFEST='{manifest_path}'")
    clock = SimulatedClock()
    failures = []
    for number, step in enumerate(walk.steps(), start=1):
        render.out("")
        render.out(f"── {number}. {step.say}")
        if step.advance:
            clock.advance(step.advance)
        if step.sql:
            render.out(f'$ psql -c "{step.sql}"')
            _sql(dsn, step.sql)
        if step.argv:
            render.out("$ flagctl " + " ".join(_quote(a) for a in step.argv))
            code = _run(
                ctx.find_root().command,
                step.argv,
                Environment(
                    Capabilities(
                        environ={**env.caps.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": manifest_path},
                        clock=clock,
                        connected=clock.lens,  # the database's times on the same clock
                        sleep=env.caps.sleep,
                        stdin_isatty=False,
                        argv=["flagctl", *step.argv],
                    )
                ),
            )
            if code != step.expect:
                failures.append(f"step {number} exited {code}, expected {step.expect}")
    render.out("")
    if failures:
        raise CheckFailed("the demo did not go as expected: " + "; ".join(failures))
    render.out(f"demo complete: {walk.done}")


def _run(command: Any, argv: list[str], env: Environment) -> int:
    """Run one step with the same root command the demo itself runs under."""
    try:
        result = command.main(args=argv, prog_name="flagctl", standalone_mode=False, obj=env)
    except typer.Exit as exc:
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _prepare(admin_dsn: str, database: str, dsn: str, schema_sql: str, keep: bool) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone()
        if exists and keep:
            return
        if exists:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(database)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
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
