"""flagctl verify gating|kill|isolation|guardrails|all — proofs and guardrails that can fail."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from flagctl.cli import complete, render
from flagctl.cli.common import OutputOpt, env_of
from flagctl.cli.flow import connect, manifest
from flagctl.cli.render import Output
from flagctl.errors import CheckFailed, UsageError

if TYPE_CHECKING:
    from flagctl.cli.env import Environment
    from flagctl.verify.guardrails import GuardrailResult
    from flagctl.verify.proofs import ProofResult

app = typer.Typer(
    help="Run proofs and guardrails against the live database; exit 1 if any fails.", no_args_is_help=True
)

FlagOpt = Annotated[list[str] | None, typer.Option("--flag", help="Only these rollout flags (repeatable).")]
SubjectsOpt = Annotated[
    str | None,
    typer.Option("--subjects-sql", help="Subjects to prove on (first column: id); default: the ladder's."),
]
SampleOpt = Annotated[int, typer.Option("--sample", min=100, help="How many subjects at most.")]
WindowOpt = Annotated[str, typer.Option("--window", help="How long to watch the write counters.")]
LagOpt = Annotated[
    str,
    typer.Option("--stats-lag", help="Extra wait for PostgreSQL's lazily flushed statistics (idle: 10 s)."),
]
ToleranceOpt = Annotated[
    float, typer.Option("--tolerance", min=0.0, help="Isolation: allowed rise over baseline.")
]
SlackOpt = Annotated[int, typer.Option("--slack", min=0, help="Isolation: rows per table always allowed.")]


def _durations(window: str, lag: str) -> tuple[timedelta, timedelta]:
    from flagctl.model.durations import parse_duration

    try:
        return parse_duration(window), parse_duration(lag)
    except ValueError as exc:
        raise UsageError(f"--window/--stats-lag: {exc}") from None


def _report(output: Output, proofs: list[ProofResult], guards: list[GuardrailResult]) -> None:
    failed = [p.name for p in proofs if p.passed is False] + [
        g.name + ("" if g.failed else f" ({g.verdict.value})") for g in guards if not g.passed
    ]
    if output is Output.json:
        render.emit_json({
            "passed": not failed,
            "proofs": [p.to_json() for p in proofs],
            "guardrails": [g.to_json() for g in guards],
        })  # fmt: skip
    else:
        for proof in proofs:
            render.out(f"{proof.verdict:>4}  {proof.name}: {proof.summary}")
            for line in proof.evidence:
                render.out(f"        {line}")
        if guards:
            render.out(render.table(
                [(g.name, g.severity, g.value_text(), g.samples_text(), g.bound, g.shown(),
                  f"{g.seconds * 1000:.0f} ms", _why(g)) for g in guards],
                ["guardrail", "sev", "value", "samples", "bound", "verdict", "took", "why"],
            ))  # fmt: skip
    if failed:
        raise CheckFailed(f"verification failed: {', '.join(failed)}")


def _why(guard: GuardrailResult) -> str:
    """Why a guardrail did not simply pass or fail."""
    if guard.error:
        return guard.error
    if guard.inconclusive and guard.samples is not None:
        return f"{guard.samples:,} samples < min_samples {guard.min_samples:,}"
    return ""


def _gating(
    env: Environment, flags: list[str] | None, subjects_sql: str | None, sample: int
) -> list[ProofResult]:
    from flagctl.model.flagtypes import RolloutFlag
    from flagctl.verify import proofs

    loaded = manifest(env)
    conn = connect(env)
    names = flags or [n for n, f in loaded.flags.items() if isinstance(f, RolloutFlag)]
    if not names:
        raise UsageError("the gating proof needs a rollout flag; the manifest has none")
    results = []
    for name in names:
        loaded.flag(name)
        ids, source = proofs.subjects(conn, loaded, name, subjects_sql, sample)
        results.append(proofs.prove_gating(conn, loaded, name, ids, source))
    return results


@app.command("gating")
def gating(
    ctx: typer.Context, flag: FlagOpt = None, subjects_sql: SubjectsOpt = None, sample: SampleOpt = 10_000,
    output: OutputOpt = Output.table,
) -> None:  # fmt: skip
    """Gating is deterministic: Python = SQL, stable, monotonic, on target (WS8 §9.1)."""
    _report(output, _gating(env_of(ctx), flag, subjects_sql, sample), [])


@app.command("kill")
def kill(
    ctx: typer.Context, window: WindowOpt = "10s", stats_lag: LagOpt = "11s", output: OutputOpt = Output.table
) -> None:
    """With the phase killed, its tables' write counters do not move (WS8 §9.2)."""
    from flagctl.verify import proofs

    env = env_of(ctx)
    loaded = manifest(env)
    conn = connect(env)
    killed, _ = proofs.phase_state(conn, loaded)
    observed = proofs.observe(conn, *_durations(window, stats_lag), sleep=env.caps.sleep) if killed else None
    _report(output, [proofs.prove_kill(conn, loaded, observed, required=True)], [])


@app.command("isolation")
def isolation(
    ctx: typer.Context, window: WindowOpt = "10s", stats_lag: LagOpt = "11s", tolerance: ToleranceOpt = 0.2,
    slack: SlackOpt = 5, output: OutputOpt = Output.table,
) -> None:  # fmt: skip
    """The phase writes nothing outside its tables: privileges, and counters against a
    baseline recorded while it was dark (WS8 §9.3). Run once dark, then active."""
    from flagctl.verify import proofs

    env = env_of(ctx)
    loaded = manifest(env)
    conn = connect(env)
    observed = proofs.observe(conn, *_durations(window, stats_lag), sleep=env.caps.sleep)
    _report(output, [proofs.prove_isolation(conn, loaded, observed, tolerance=tolerance, slack=slack)], [])


@app.command("guardrails")
def guardrails(
    ctx: typer.Context,
    name: Annotated[
        list[str] | None, typer.Argument(help="Only these guardrails.", autocompletion=complete.guardrails)
    ] = None,
    output: OutputOpt = Output.table,
) -> None:
    """Run each guardrail (read-only, with its timeout): value, bound, pass/fail, time taken."""
    _report(output, [], _guardrails(env_of(ctx), name))


def _guardrails(env: Environment, names: list[str] | None) -> list[GuardrailResult]:
    from flagctl.verify.guardrails import evaluate

    loaded = manifest(env)
    chosen = names or list(loaded.model.guardrails)
    for guard in chosen:
        if guard not in loaded.model.guardrails:
            known = ", ".join(loaded.model.guardrails) or "(none)"
            raise UsageError(f"unknown guardrail {guard!r} in {loaded.path}", f"guardrails: {known}")
    conn = connect(env)
    return [evaluate(conn, guard, loaded.model.guardrails[guard], env.caps.environ) for guard in chosen]


@app.command("all")
def all_(
    ctx: typer.Context, window: WindowOpt = "10s", stats_lag: LagOpt = "11s", tolerance: ToleranceOpt = 0.2,
    slack: SlackOpt = 5, sample: SampleOpt = 10_000, output: OutputOpt = Output.table,
) -> None:  # fmt: skip
    """Every proof and guardrail. The kill proof applies while the phase is killed; the
    counter window is shared by the kill and isolation proofs."""
    from flagctl.verify import proofs

    env = env_of(ctx)
    loaded = manifest(env)
    conn = connect(env)
    if any(f.type == "rollout" for f in loaded.flags.values()):
        results = _gating(env, None, None, sample)
    else:
        results = [proofs.skipped("gating", "the manifest has no rollout flag")]
    if loaded.model.proofs.phase_tables:
        observed = proofs.observe(conn, *_durations(window, stats_lag), sleep=env.caps.sleep)
        results.append(proofs.prove_kill(conn, loaded, observed, required=False))
        results.append(proofs.prove_isolation(conn, loaded, observed, tolerance=tolerance, slack=slack))
    else:
        why = "the manifest has no proofs.phase_tables (the tables a killed phase must stop writing)"
        results += [proofs.skipped("kill", why), proofs.skipped("isolation", why)]
    _report(output, results, _guardrails(env, None))
