"""verify: guardrails, gating, kill and isolation proofs — each failing for a real reason
and passing on a clean system, on a live database."""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest

from tests.conftest import WS8_MANIFEST, Cli

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
GO = ("-r", "verify", "-y")


def report(cli: Cli, *args: str) -> tuple[int, dict[str, object]]:
    result = cli("verify", *args, "-o", "json")
    return result.exit_code, json.loads(result.stdout)


def test_guardrails_pass_then_fail_with_evidence(ws8: Cli) -> None:
    code, doc = report(ws8, "guardrails")
    assert code == 0 and doc["passed"] is True
    names = [g["name"] for g in doc["guardrails"]]  # type: ignore[index, union-attr]
    assert names == ["no_contract_violations", "budget_within_bounds", "cache_hit_rate_stable"]
    first = doc["guardrails"][0]  # type: ignore[index]
    assert first["value"] == 0 and first["bound"] == "max 0" and first["seconds"] >= 0
    ws8.sql("INSERT INTO p3_events (kind) SELECT 'phase3.budget_exhausted' FROM generate_series(1, 6)")
    code, doc = report(ws8, "guardrails")
    assert code == 1
    failed = [g for g in doc["guardrails"] if not g["passed"]]  # type: ignore[union-attr]
    assert [(g["name"], g["value"], g["severity"]) for g in failed] == [("budget_within_bounds", 6, "P2")]


def test_a_guardrail_error_or_timeout_is_its_own_failure(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "guardrails:\n"
        "  slow: {sql: 'select pg_sleep(5)::text::int', max: 0, timeout: 200ms}\n"
        "  broken: {sql: 'select nope from nowhere', max: 0}\n"
        "  fine: {sql: 'select 1', min: 1}\n"
    )
    cli("db", "init")
    started = time.monotonic()
    code, doc = report(cli, "guardrails")
    assert time.monotonic() - started < 4  # the timeout held; the operator is not hung
    assert code == 1
    by_name = {g["name"]: g for g in doc["guardrails"]}  # type: ignore[union-attr]
    assert "57014" in by_name["slow"]["error"]
    assert "42P01" in by_name["broken"]["error"]
    assert by_name["fine"]["passed"] is True


def test_gating_proof_passes_on_a_clean_system(ws8: Cli) -> None:
    code, doc = report(ws8, "gating", "--sample", "5000")
    assert code == 0, doc
    proof = doc["proofs"][0]  # type: ignore[index]
    assert proof["passed"] is True
    assert "Python vs SQL buckets: 5000/5000 identical" in proof["evidence"]


def test_gating_proof_fails_when_sql_disagrees_with_python(ws8: Cli) -> None:
    ws8.sql("CREATE OR REPLACE FUNCTION flagctl.bucket(salt text, id text) RETURNS integer"
            " LANGUAGE sql IMMUTABLE AS 'SELECT length(id) % 100'")  # fmt: skip
    code, doc = report(ws8, "gating", "--sample", "1000")
    assert code == 1
    assert "bucket differently in SQL" in doc["proofs"][0]["summary"]  # type: ignore[index]


def test_gating_proof_fails_when_the_share_is_off_target(ws8: Cli) -> None:
    code, doc = report(
        ws8, "gating", "--subjects-sql", "select 'same-' || (g % 3) from generate_series(1, 3000) g"
    )
    assert code == 1
    assert "outside" in doc["proofs"][0]["summary"]  # type: ignore[index]


class IdleWriter:
    """Another session that writes once at the start of the proof's window, then sits idle.

    Like any backend that wrote less than a second after its last statistics flush, its
    counters stay pending until PostgreSQL's idle flush (10 s) — which the fake sleeper
    reproduces: once the proof has slept 10 s since the write, the writer's pending
    counters are flushed (``pg_stat_force_next_flush``). A proof that does not wait out
    the statistics lag never sees them."""

    IDLE_FLUSH = 10.0

    def __init__(self, dsn: str, statement: str) -> None:
        self.conn = psycopg.connect(dsn, autocommit=True)
        self.conn.execute("SELECT 1")  # its first flush is behind it: the write below stays pending
        self.statement = statement
        self.since_write: float | None = None
        self.flushed = False

    def __call__(self, seconds: float) -> None:
        if self.since_write is None:
            self.conn.execute(self.statement.encode())
            self.since_write = 0.0
        self.since_write += seconds
        if self.since_write >= self.IDLE_FLUSH and not self.flushed:
            self.conn.execute("SELECT pg_stat_force_next_flush()")
            self.flushed = True

    def close(self) -> None:
        self.conn.close()


def write_during_window(cli: Cli, statement: str) -> IdleWriter:
    writer = IdleWriter(cli.dsn, statement)
    cli.sleeper.hooks.append(writer)
    return writer


def test_kill_proof_refuses_when_not_killed(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    code, doc = report(ws8, "kill", "--window", "0s", "--stats-lag", "0s")
    assert code == 1
    assert "not killed" in doc["proofs"][0]["summary"]  # type: ignore[index]


def test_kill_proof_passes_when_nothing_writes(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", *GO)
    code, doc = report(ws8, "kill", "--window", "1s")
    assert code == 0, doc
    evidence = doc["proofs"][0]["evidence"]  # type: ignore[index]
    assert any("waited 11s for statistics" in line for line in evidence)
    assert ws8.sleeper.slept == [1.0, 11.0]  # the window, then the statistics lag


def test_kill_proof_fails_on_a_write_by_an_idle_session_whose_counters_arrive_late(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", *GO)
    writer = write_during_window(
        ws8, "INSERT INTO p3_advisories (resume_id, advice) VALUES ('r-1', 'leaked')"
    )
    try:
        code, doc = report(ws8, "kill", "--window", "2s")  # the writer stays open and idle throughout
    finally:
        writer.close()
    assert code == 1, doc
    assert writer.flushed  # its counters arrived only because the proof waited out the lag
    assert "public.p3_advisories" in doc["proofs"][0]["summary"]  # type: ignore[index]
    assert "public.p3_advisories: +1 rows written" in doc["proofs"][0]["evidence"]  # type: ignore[index]


def test_kill_proof_does_not_count_the_flags_own_table_as_a_phase_write(ws8: Cli) -> None:
    """p3_feature_state matches "p3_%" but is the control plane: the kill (or a drill's
    kill, whose counters arrive during the window) writes it. Before, that failed the proof."""
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", *GO)
    writer = write_during_window(
        ws8, "UPDATE p3_feature_state SET enabled = enabled"
    )  # counted, changes nothing
    try:
        code, doc = report(ws8, "kill", "--window", "2s")
    finally:
        writer.close()
    assert writer.flushed
    assert code == 0, doc


ROLE_MANIFEST = WS8_MANIFEST.read_text().replace(
    'phase_tables: "p3_%"    # written only by Phase 3 (kill and isolation proofs)',
    'phase_tables: "p3_%"\n  phase_role: PHASE_ROLE',
)


@pytest.fixture
def phase(make_cli, ws8_db: str):  # type: ignore[no-untyped-def]
    """WS8 with a phase role that may write only its own tables."""
    role = f"p3_app_{uuid.uuid4().hex[:6]}"
    cli = make_cli(ROLE_MANIFEST.replace("PHASE_ROLE", role))
    cli.dsn = ws8_db
    cli.sql(f"CREATE ROLE {role}; GRANT INSERT, UPDATE ON p3_advisories, p3_events TO {role}")
    assert cli("db", "init").exit_code == 0
    yield cli, role
    cli.sql(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_isolation_passes_against_a_dark_baseline(phase) -> None:  # type: ignore[no-untyped-def]
    cli, role = phase
    code, dark = report(cli, "isolation", "--window", "1s", "--stats-lag", "0s")
    assert code == 0 and dark["proofs"][0]["passed"] is None  # type: ignore[index]
    assert "baseline recorded" in dark["proofs"][0]["summary"]  # type: ignore[index]
    cli("stage", "set", "p3", "canary", *GO)
    code, active = report(cli, "isolation", "--window", "1s")
    assert code == 0, active
    evidence = active["proofs"][0]["evidence"]  # type: ignore[index]
    assert f"role {role}: no write privilege outside 'p3_%'" in evidence


def test_isolation_fails_on_a_write_privilege_outside_the_phase(phase) -> None:  # type: ignore[no-untyped-def]
    cli, role = phase
    cli.sql(f"GRANT UPDATE ON resumes TO {role}")
    code, doc = report(cli, "isolation", "--window", "0s", "--stats-lag", "0s")
    assert code == 1
    assert f"role {role} may write outside 'p3_%': public.resumes" in doc["proofs"][0]["summary"]  # type: ignore[index]


def test_isolation_fails_when_other_tables_move_more_than_in_the_baseline(phase) -> None:  # type: ignore[no-untyped-def]
    cli, _ = phase
    assert (
        report(cli, "isolation", "--window", "1s", "--stats-lag", "0s")[0] == 0
    )  # dark baseline: nothing moves
    cli("stage", "set", "p3", "canary", *GO)
    writer = write_during_window(
        cli, "INSERT INTO resumes (id, body) SELECT 'r' || g, 'x' FROM generate_series(1, 50) g"
    )
    try:
        code, doc = report(cli, "isolation", "--window", "2s")
    finally:
        writer.close()
    assert code == 1, doc
    summary = doc["proofs"][0]["summary"]  # type: ignore[index]
    assert "public.resumes moved 50 rows, above its baseline allowance of 5" in summary


def test_isolation_without_a_baseline_fails_while_active(phase) -> None:  # type: ignore[no-untyped-def]
    cli, _ = phase
    cli("stage", "set", "p3", "canary", *GO)
    code, doc = report(cli, "isolation", "--window", "0s", "--stats-lag", "0s")
    assert code == 1 and "no baseline" in doc["proofs"][0]["summary"]  # type: ignore[index]


def test_verify_all_shares_one_window_and_marks_the_kill_proof_not_applicable(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    code, doc = report(ws8, "all", "--window", "0s", "--stats-lag", "0s", "--sample", "1000")
    verdicts = {p["proof"]: p["verdict"] for p in doc["proofs"]}  # type: ignore[union-attr]
    assert verdicts["kill"] == "n/a"
    assert verdicts["gating p3_advisory"] == "pass"
    assert verdicts["isolation"] == "FAIL"  # active, and no dark baseline yet
    assert code == 1


def test_per_stage_required_guardrail(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "ladders:\n  l:\n    flag: f\n    stages:\n"
        "      - {name: off, enabled: false, percent: 0}\n"
        "      - {name: some, enabled: true, percent: 5}\n"
        "      - {name: most, enabled: true, percent: 50, require: [approved]}\n"
        "guardrails:\n  approved: {sql: 'select count(*) from approvals', min: 1}\n",
        "CREATE TABLE approvals (who text)",
    )
    cli("db", "init")
    assert cli("stage", "set", "l", "some", *GO).exit_code == 0  # no requirement to enter 'some'
    refused = cli("stage", "set", "l", "most", *GO)
    assert refused.exit_code == 1 and "guardrail approved: 0 (min 1) FAIL" in refused.stderr
    cli.sql("INSERT INTO approvals VALUES ('release-manager')")
    assert cli("stage", "set", "l", "most", *GO).exit_code == 0


def test_kill_proof_fails_on_an_open_transaction_that_wrote_a_phase_table(ws8: Cli) -> None:
    """A write made in a transaction still open (begun before the kill) is in no counter yet:
    it would land after the window. The proof must not pass over it."""
    ws8("stage", "set", "p3", "canary", *GO)
    with psycopg.connect(ws8.dsn, application_name="p3-worker") as worker:  # not autocommit: stays open
        worker.execute("INSERT INTO p3_advisories (resume_id, advice) VALUES ('r-9', 'in flight')")
        ws8("kill", "p3-off", *GO)
        code, doc = report(ws8, "kill", "--window", "1s")
        worker.commit()
    assert code == 1, doc
    proof = doc["proofs"][0]  # type: ignore[index]
    assert "open transaction" in proof["summary"]
    assert any("p3-worker" in line and "public.p3_advisories" in line for line in proof["evidence"])


def test_verify_all_lists_the_proofs_it_could_not_run_and_why(groups: Cli) -> None:
    """Without `proofs:` in the manifest, `verify all` left the kill and isolation proofs out
    and said `"passed": true`, as if they had run. They are listed as skipped, with why, in
    JSON and in the table."""
    code, doc = report(groups, "all", "--window", "0s", "--stats-lag", "0s", "--sample", "100")
    by_name = {p["proof"]: p for p in doc["proofs"]}  # type: ignore[union-attr]
    for name in ("kill", "isolation"):
        assert by_name[name]["verdict"] == "skip" and by_name[name]["skipped"] is True
        assert by_name[name]["passed"] is None and "proofs.phase_tables" in by_name[name]["summary"]
    assert by_name["gating F1"]["skipped"] is False
    table = groups("verify", "all", "--window", "0s", "--stats-lag", "0s", "--sample", "100")
    assert table.exit_code == code
    assert any(
        line.startswith("skip  kill: skipped: the manifest has no proofs.phase_tables")
        for line in table.stdout.splitlines()
    )
