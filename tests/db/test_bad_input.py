"""Bad input gets a clear error and changes nothing; secrets never reach the audit trail."""

from __future__ import annotations

import pytest

from tests.conftest import Cli, audit_count

GO = ("-r", "INC-2", "-y")


def test_a_password_given_in_dsn_is_not_stored_in_the_audit_trail(ws8: Cli) -> None:
    dsn = ws8.dsn + " password=hunter2"
    result = ws8("--dsn", dsn, "stage", "set", "p3", "canary", *GO)
    assert result.exit_code == 0, result.stderr
    uri = (
        "postgresql://postgres:s3cret@/"
        + ws8.dsn.split("dbname=")[1]
        + "?host="
        + ws8.dsn.split("host=")[1].split()[0]
    )
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
