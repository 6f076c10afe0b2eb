"""Bad input gets a clear error and changes nothing; secrets never reach the audit trail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Cli, audit_count

GO = ("-r", "INC-2", "-y")


def test_a_password_given_in_dsn_is_not_stored_in_the_audit_trail(ws8: Cli) -> None:
    dsn = ws8.dsn + " password=hunter2"
    result = ws8("--dsn", dsn, "stage", "set", "p3", "canary", *GO)
    assert result.exit_code == 0, result.stderr
    parts = psycopg.conninfo.conninfo_to_dict(ws8.dsn)
    port = f"&port={parts['port']}" if parts.get("port") else ""
    uri = f"postgresql://postgres:s3cret@/{parts['dbname']}?host={parts['host']}{port}"
    assert ws8(f"--dsn={uri}", "kill", "p3-off", *GO).exit_code == 0
    commands = [c for (c,) in ws8.sql("SELECT command FROM flagctl.audit WHERE command IS NOT NULL")]
    assert len(commands) >= 2
    assert not any("hunter2" in c or "s3cret" in c for c in commands), commands
    assert any("password=********" in c for c in commands)


@pytest.mark.parametrize(
    "scope", ["workspace:42 ", "workspace:4\n2", "workspace:\t42", "workspace:4\x072", " workspace:42"]
)
def test_a_scope_with_spaces_or_control_characters_is_refused(groups: Cli, scope: str) -> None:
    before = audit_count(groups)
    result = groups("kill", "KS3", "--scope", scope, *GO)
    assert result.exit_code == 2 and "invalid scope" in result.stderr
    assert audit_count(groups) == before
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


def test_a_guardrail_cannot_commit_a_write_by_ending_its_transaction(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "guardrails:\n"
        "  sneaky: {sql: 'select 0; rollback; create table pwned (x int); select 0', max: 0}\n"
    )
    cli("db", "init")
    result = cli("verify", "guardrails", "-o", "json")
    assert result.exit_code == 1
    assert cli.sql("SELECT to_regclass('public.pwned')") == [(None,)]


@pytest.mark.parametrize(
    ("guard", "message"),
    [("{sql: 'select 1', max: .nan}", "not a number"), ("{sql: 'select 1', max: 1, timeout: 0s}", "timeout")],
)
def test_a_nan_bound_or_a_zero_timeout_is_an_invalid_manifest(make_cli, guard: str, message: str) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(f"version: 1\nsystem: s\nflags:\n  f: {{type: rollout}}\nguardrails:\n  g: {guard}\n")
    result = cli("db", "init")
    assert result.exit_code == 2 and message in result.stderr


FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def run_raw(cli: Cli, *args: bytes | str) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "FLAGCTL_DSN": cli.dsn, "FLAGCTL_MANIFEST": str(cli.manifest)}
    return subprocess.run(
        [FLAGCTL, *args], env=env, capture_output=True, stdin=subprocess.DEVNULL, timeout=60
    )


@pytest.mark.parametrize("option", [b"-r", b"--actor", b"--scope"])
def test_invalid_utf8_in_an_argument_is_a_usage_error(groups: Cli, option: bytes) -> None:
    args = [b"kill", b"KS3", b"-r", b"ok", b"-y", option, b"bad\xff"]
    result = run_raw(groups, *args)
    assert result.returncode == 2, result.stderr
    assert b"not valid UTF-8" in result.stderr and b"Traceback" not in result.stderr
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--lock-timeout", "99999999999999d", "status"], "--lock-timeout"),
        (["--lock-timeout", "30d", "status"], "--lock-timeout"),
        (["watch", "--interval", "99999999999999d", "--count", "2"], "--interval"),
        (["verify", "kill", "--window", "99999999999999d"], "--window"),
    ],
)
def test_huge_durations_are_usage_errors(ws8: Cli, args: list[str], message: str) -> None:
    result = ws8(*args)
    assert result.exit_code == 2, result.stderr
    assert message in result.stderr and "internal error" not in result.stderr


def test_a_malformed_dsn_is_a_usage_error_that_hides_the_password(ws8: Cli) -> None:
    result = ws8("--dsn", "host=db password=hunter2 oops", "status")
    assert result.exit_code == 2 and "invalid DSN" in result.stderr
    assert "hunter2" not in result.stderr


def test_a_manifest_that_is_not_utf8_or_nests_too_deeply_is_invalid(ws8: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    latin = tmp_path / "latin1.yaml"
    latin.write_bytes(b"version: 1\nsystem: s\xff\n")
    deep = tmp_path / "deep.yaml"
    deep.write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    for path, message in ((latin, "not UTF-8"), (deep, "nested too deeply")):
        result = ws8("--manifest", str(path), "status")
        assert result.exit_code == 2, result.stderr
        assert message in result.stderr and "internal error" not in result.stderr


def test_a_bound_column_the_table_lacks_is_named_not_an_internal_error(ws8: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    ws8("stage", "set", "p3", "canary", *GO)
    broken = tmp_path / "ws8.yaml"
    broken.write_text(ws8.manifest.read_text().replace("percent: rollout_percent", "percent: rollout_pct"))
    result = ws8("--manifest", str(broken), "manifest", "publish", *GO)
    assert result.exit_code == 2, result.stderr
    assert "rollout_pct" in result.stderr and "internal error" not in result.stderr
    assert ws8.sql("SELECT max(version) FROM flagctl.catalogue") == [(1,)]  # not published
    # a kill from that broken local copy acts on the published definition, and says so
    result = ws8("--manifest", str(broken), "kill", "p3-off", *GO)
    assert result.exit_code == 0, result.stderr
    assert "differs from the published version 1" in result.stderr
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("-r", "INC-1\x1b[2J", "--reason"),
        ("-r", "INC-1\nforged line", "--reason"),
        ("-r", "x" * 2001, "--reason"),
        ("--actor", "alice\r\nbob", "--actor"),
        ("--actor", "a" * 201, "--actor"),
    ],
)
def test_a_reason_or_actor_with_control_characters_or_too_long_is_refused(
    ws8: Cli, option: str, value: str, message: str
) -> None:
    args = ["-r", "INC-1", "-y"] if option != "-r" else ["-y"]
    result = ws8("kill", "p3-off", option, value, *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert audit_count(ws8) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("eu," + "x" * 201, "at most 200"),
        (",".join(f"r{i}" for i in range(1001)), "at most 1000"),
        ("eu,us\x1b[2J", "control character"),
    ],
)
def test_a_list_value_that_is_too_long_or_has_control_characters_is_refused(
    recsys: Cli, value: str, message: str
) -> None:
    before = recsys.sql("SELECT count(*) FROM flagctl.flag_state")
    result = recsys("set", "region_scope", value, "-r", "INC-1", "-y")
    assert result.exit_code == 2 and message in result.stderr, result.stderr
    assert recsys.sql("SELECT count(*) FROM flagctl.flag_state") == before
    assert audit_count(recsys) == 0
