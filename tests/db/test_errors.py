"""Error paths: one or two plain lines on stderr, the contract's exit code, nothing changed."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import WS8_MANIFEST, Cli, audit_count, p3_state

FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def run(*args: str, dsn: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(WS8_MANIFEST)}
    return subprocess.run(
        [FLAGCTL, *args],
        env=env,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_unreachable_database_is_exit_3_naming_the_target_not_the_password() -> None:
    dsn = "host=127.0.0.1 port=1 user=ops password=hunter2 dbname=flags connect_timeout=3"
    result = run("status", dsn=dsn)
    assert result.returncode == 3
    assert "cannot connect to target host=127.0.0.1 port=1 dbname=flags user=ops" in result.stderr
    assert "hunter2" not in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) <= 2


def test_permission_denied_is_exit_5_and_changes_nothing(ws8: Cli) -> None:
    role = f"reader_{uuid.uuid4().hex[:8]}"
    ws8.sql(
        f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA flagctl TO {role};"
        f" GRANT SELECT ON ALL TABLES IN SCHEMA flagctl TO {role}; GRANT SELECT ON p3_feature_state TO {role}"
    )
    try:
        reader = Cli(ws8.dsn.replace("user=postgres", f"user={role}"), ws8.manifest)
        shown = reader("status")
        assert shown.exit_code == 0, shown.stderr  # reading is allowed
        result = reader("stage", "set", "p3", "canary", "-r", "r", "-y")
        assert result.exit_code == 5
        assert "permission denied" in result.stderr and "42501" in result.stderr
        assert p3_state(ws8) == (False, 0) and audit_count(ws8) == 0
    finally:
        ws8.sql(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_schema_not_installed_says_to_run_db_init(ws8_db: str) -> None:
    result = Cli(ws8_db, WS8_MANIFEST)("status")
    assert result.exit_code == 2
    assert "flagctl db init" in result.stderr


def test_invalid_manifest_is_exit_2_with_every_problem(ws8: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout, colour: red}\nladders:\n  l: {flag: g, stages: []}\n"
    )
    result = ws8("--manifest", str(bad), "status")
    assert result.exit_code == 2
    assert f"invalid manifest {bad}:" in result.stderr
    assert "flags.f.colour: unknown key" in result.stderr
    assert "ladders.l.stages" in result.stderr


def test_installed_console_script_end_to_end(ws8: Cli) -> None:
    assert run("--help", dsn=ws8.dsn).returncode == 0
    refused = run("kill", "p3-off", "-r", "INC-9", dsn=ws8.dsn)  # no terminal, no --yes
    assert refused.returncode == 2 and "without --yes" in refused.stderr
    assert p3_state(ws8) == (False, 0)
    ws8("stage", "set", "p3", "canary", "-r", "r", "-y")
    killed = run("kill", "p3-off", "-r", "INC-9", "-y", dsn=ws8.dsn)
    assert killed.returncode == 0, killed.stderr
    assert p3_state(ws8) == (False, 0)


@pytest.mark.parametrize("debug", [False, True])
def test_tracebacks_only_with_debug(ws8: Cli, debug: bool) -> None:
    args = ["--debug"] if debug else []
    result = run(*args, "stage", "set", "p3", "full", "-r", "r", "-y", dsn=ws8.dsn)
    assert result.returncode == 1
    assert ("Traceback" in result.stderr) is debug
    assert "skips canary, limited, broad" in result.stderr


def test_usage_errors_from_the_parser_are_exit_2(ws8: Cli) -> None:
    assert run("stage", "set", "p3", "limited", "--percent", "abc", dsn=ws8.dsn).returncode == 2
    assert run("no-such-command", dsn=ws8.dsn).returncode == 2
    assert run("--lock-timeout", "forever", "status", dsn=ws8.dsn).returncode == 2


def test_a_refused_connection_is_retried_three_times_with_backoff() -> None:
    cli = Cli("host=127.0.0.1 port=1 dbname=flags user=ops connect_timeout=2", WS8_MANIFEST)
    result = cli("status")
    assert result.exit_code == 3 and "(tried 3 times)" in result.stderr, result.stderr
    assert cli.sleeper.slept == [0.1, 0.2]  # injected: no real sleep


def test_a_database_that_does_not_exist_is_not_retried(ws8: Cli) -> None:
    cli = Cli(ws8.dsn.rsplit("dbname=", 1)[0] + "dbname=no_such_db", ws8.manifest)
    result = cli("status")
    assert result.exit_code == 3 and "does not exist" in result.stderr, result.stderr
    assert cli.sleeper.slept == [] and "tried" not in result.stderr


def test_sessions_bound_every_statement(ws8: Cli) -> None:
    """A statement that hangs (a server that stops answering) is cut off by the session's
    statement_timeout, and a dead peer by tcp_user_timeout."""
    from flagctl.config import Target
    from flagctl.store.db import connect

    with connect(Target("t", ws8.dsn, "test")) as conn:
        timeouts = "SELECT current_setting('statement_timeout'), current_setting('idle_in_transaction_session_timeout')"
        assert conn.execute(timeouts).fetchone() == ("1min", "1min")
        assert "tcp_user_timeout=10000" in conn.info.dsn
