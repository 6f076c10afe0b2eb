"""db init/status, and the audit trail written by the database itself."""

from __future__ import annotations

import json

import psycopg
import pytest

from flagctl.store.schema import migrations
from tests.conftest import WS8_MANIFEST, Cli, audit_count, p3_state

VERSIONS = [m.version for m in migrations()]


def test_db_init_twice_is_a_no_op(ws8_db: str) -> None:
    cli = Cli(ws8_db, WS8_MANIFEST)
    first = cli("db", "init", "-o", "json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout)["applied"] == VERSIONS == list(range(1, len(VERSIONS) + 1))
    second = cli("db", "init", "-o", "json")
    assert second.exit_code == 0, second.stderr
    assert json.loads(first.stdout)["published"]["version"] == 1
    again = json.loads(second.stdout)
    assert again == {
        "version": VERSIONS[-1],
        "applied": [],
        "routines": [],  # all current: nothing re-applied
        "bindings": ["p3_advisory → public.p3_feature_state"],
        "warnings": [],
        "published": {"version": 1, "sha256": again["published"]["sha256"], "new": False},
    }
    assert cli.sql("SELECT count(*) FROM flagctl.schema_migrations") == [(len(VERSIONS),)]
    # installing changes no flag; publishing the manifest is the one change, once
    assert cli.sql("SELECT action, flag FROM flagctl.audit") == [("manifest.publish", None)]


def test_db_status_shows_version_and_bound_tables(ws8: Cli) -> None:
    result = ws8("db", "status", "-o", "json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert (doc["installed"], doc["version"], doc["latest"]) == (True, VERSIONS[-1], VERSIONS[-1])
    assert doc["bindings"][0]["table"] == "public.p3_feature_state"
    assert doc["bindings"][0]["audit_trigger"] is True


def test_db_status_before_init(db: str) -> None:
    result = Cli(db, WS8_MANIFEST)("db", "status")
    assert result.exit_code == 0
    assert "not installed" in result.stdout


def test_missing_bound_table_is_a_usage_error_and_installs_nothing(db: str) -> None:
    cli = Cli(db, WS8_MANIFEST)
    result = cli("db", "init")
    assert result.exit_code == 2
    assert "bound table p3_feature_state (flag p3_advisory) does not exist" in result.stderr
    assert "Traceback" not in result.stderr
    assert cli.sql("SELECT to_regclass('flagctl.audit')") == [(None,)]  # one transaction: all or nothing


def test_missing_bound_column_names_the_column(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout, table: t, key: {name: f},"
        " columns: {enabled: on_, percent: pct}}\n",
        "CREATE TABLE t (name text primary key, on_ boolean, percent int)",
    )
    result = cli("db", "init")
    assert result.exit_code == 2
    assert "has no column 'pct'" in result.stderr


def test_plain_sql_update_of_a_bound_table_is_audited(ws8: Cli) -> None:
    ws8.sql(
        "UPDATE p3_feature_state SET enabled = true, rollout_percent = 3 WHERE feature_name = 'p3_advisory'"
    )
    row = ws8.sql(
        "SELECT action, db_user, actor, reason, flag, before->>'rollout_percent', after->>'rollout_percent'"
        " FROM flagctl.audit ORDER BY seq DESC LIMIT 1"
    )[0]
    assert row == ("sql.update", "postgres", None, None, "p3_advisory", "0", "3")


def test_a_no_op_update_records_nothing(ws8: Cli) -> None:
    ws8.sql("UPDATE p3_feature_state SET enabled = enabled")
    assert audit_count(ws8) == 0


def test_audit_records_actor_reason_and_command_in_the_same_transaction(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "canary", "-r", "canary go", "--actor", "alice", "-y")
    assert result.exit_code == 0, result.stderr
    rows = ws8.sql(
        "SELECT actor, db_user, action, reason, command, txid FROM flagctl.audit WHERE action <> 'manifest.publish'"
    )
    assert len(rows) == 2  # the flag's row and the guardrail verdicts the move was allowed on
    assert len({row[5] for row in rows}) == 1  # one transaction
    for actor, db_user, action, reason, command, _ in rows:
        assert (actor, db_user, action, reason) == ("alice", "postgres", "stage.set", "canary go")
        assert command.startswith("flagctl stage set p3 canary")


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE flagctl.audit SET reason = 'nothing to see'",
        "DELETE FROM flagctl.audit",
        "TRUNCATE flagctl.audit",
    ],
)
def test_the_audit_table_is_append_only(ws8: Cli, statement: str) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "r", "-y")
    written = audit_count(ws8)
    assert written >= 1
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        ws8.sql(statement)
    assert audit_count(ws8) == written


def test_audit_verify_passes_then_catches_a_rewrite(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "first", "-y")
    ws8.sql("UPDATE p3_feature_state SET rollout_percent = 0")
    ok = ws8("audit", "verify")
    assert ok.exit_code == 0, ok.stderr
    # db init's publish, the move and its guardrail verdicts, the UPDATE
    assert "audit chain intact: 4 rows" in ok.stdout
    # A superuser who disables the guard and rewrites history is still caught.
    ws8.sql(
        "ALTER TABLE flagctl.audit DISABLE TRIGGER audit_append_only;"
        " UPDATE flagctl.audit SET reason = 'routine' WHERE seq = 1;"
        " ALTER TABLE flagctl.audit ENABLE TRIGGER audit_append_only"
    )
    broken = ws8("audit", "verify")
    assert broken.exit_code == 1
    assert "row 1: contents changed after it was written" in broken.stderr


def test_audit_verify_catches_a_deleted_row(ws8: Cli) -> None:
    for stage in ("canary", "dark", "canary"):
        ws8("stage", "set", "p3", stage, "-r", "r", "-y", "--force")
    ws8.sql(
        "ALTER TABLE flagctl.audit DISABLE TRIGGER audit_append_only;"
        " DELETE FROM flagctl.audit WHERE seq = 2;"
        " ALTER TABLE flagctl.audit ENABLE TRIGGER audit_append_only"
    )
    result = ws8("audit", "verify", "-o", "json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert any("missing" in p for p in doc["problems"])


def test_audit_log_filters_and_json(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "go canary", "-y")
    ws8("kill", "p3-off", "-r", "INC-1", "-y")
    result = ws8("audit", "log", "--flag", "p3_advisory", "-o", "json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)["rows"]
    assert [r["action"] for r in rows] == ["kill", "stage.set"]
    assert rows[0]["after"]["rollout_percent"] == 0 and rows[0]["reason"] == "INC-1"
    limited = json.loads(ws8("audit", "log", "--limit", "1", "-o", "json").stdout)["rows"]
    assert len(limited) == 1 and limited[0]["target"] == "kill_switch:p3-off"
    assert ws8("audit", "log", "--since", "tomorrow-ish").exit_code == 2
    assert ws8("audit", "log", "--flag", "nope").exit_code == 2


def test_status_shows_value_stage_and_last_change(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "go canary", "--actor", "alice", "-y")
    doc = json.loads(ws8("status", "-o", "json").stdout)
    flag = doc["flags"][0]
    assert flag["value"] == {"enabled": True, "percent": 1}
    assert (flag["effective"], flag["reason"], flag["by"]) == (1, "stage", "p3/canary")  # typed: on for 1%
    assert flag["stages"] == [{"ladder": "p3", "stage": "canary", "beneath": None, "killed_by": []}]
    assert flag["last_change"]["actor"] == "alice" and flag["last_change"]["reason"] == "go canary"
    assert p3_state(ws8) == (True, 1)


def test_enabled_at_zero_percent_shows_as_dark(ws8: Cli) -> None:
    ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 0")
    doc = json.loads(ws8("status", "-o", "json").stdout)
    assert (doc["flags"][0]["effective"], doc["flags"][0]["reason"]) == (0, "stage")  # dark: on for nobody
    assert "dark" in ws8("status").stdout
    assert doc["flags"][0]["stages"] == [{"ladder": "p3", "stage": "dark", "beneath": None, "killed_by": []}]
