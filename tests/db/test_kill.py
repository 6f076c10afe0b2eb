"""kill / release / kill --list, and `set` against engaged switches and ladders.

The WS8 tests run twice: as the schema's owner, and as a non-owner operator role with only
flagctl_operator and the application-table rights a kill needs (``ws8_as``)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli, audit_count, p3_state

GO = ("-r", "INC-1", "-y")


@pytest.fixture
def ws8(ws8_as: Cli) -> Cli:
    """Every WS8 test here, as the owner and as an operator."""
    return ws8_as


TWO_SWITCHES = """
version: 1
system: groups
flags:
  f1: {type: rollout, default: {enabled: true, percent: 100}}
  f3: {type: rollout, default: {enabled: true, percent: 40}}
kill_switches:
  KS1: {level: 1, set: {f3: {enabled: false}}}
  KS3: {level: 3, set: {f1: {percent: 0}}}
  KS5: {level: 5, includes: [KS1, KS3], set: {f1: {enabled: false}}}
"""


def test_ws8_seed_kill_gives_exactly_the_seeds_update(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    result = ws8("kill", "p3-off", *GO)
    assert result.exit_code == 0, result.stderr
    # WS8 §6: UPDATE p3_feature_state SET enabled = false, rollout_percent = 0 WHERE feature_name = 'p3_advisory'
    assert ws8.sql(
        "SELECT enabled, rollout_percent FROM p3_feature_state WHERE feature_name = 'p3_advisory'"
    ) == [(False, 0)]


def test_kill_bypasses_bake_and_guardrails(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    assert p3_state(ws8) == (False, 0)


def test_release_restores_the_exact_prior_values(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "broad", "--percent", "37", "--force", *GO)
    ws8("kill", "p3-off", *GO)
    result = ws8("release", "p3-off", "-r", "mitigated", "-y")
    assert result.exit_code == 0, result.stderr
    assert p3_state(ws8) == (True, 37)
    assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


def test_kill_is_one_transaction_recorded_with_its_prior_values(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", "-r", "INC-7", "--actor", "bob", "-y")
    rows = ws8.sql("SELECT DISTINCT txid, action, reason, actor FROM flagctl.audit WHERE action = 'kill'")
    assert len(rows) == 1 and rows[0][1:] == ("kill", "INC-7", "bob")  # flag row and switch row: one txid
    engaged = json.loads(ws8("kill", "--list", "-o", "json").stdout)["kill_switches"][0]["engaged"][0]
    assert engaged["prior"] == {"p3_advisory": {"enabled": True, "percent": 1}}
    assert engaged["actor"] == "bob" and engaged["reason"] == "INC-7"


def test_kill_twice_is_idempotent(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", *GO)
    before = audit_count(ws8)
    again = ws8("kill", "p3-off", *GO)
    assert again.exit_code == 0 and "already engaged" in again.stdout
    assert audit_count(ws8) == before
    ws8("release", "p3-off", *GO)
    assert p3_state(ws8) == (True, 1)  # the second kill did not overwrite the prior values


def test_release_refuses_if_the_flag_changed_in_between(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", *GO)
    ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 2")  # someone, by hand
    refused = ws8("release", "p3-off", *GO)
    assert refused.exit_code == 4
    assert "the kills set enabled=false percent=0, it is now enabled=true percent=2" in refused.stderr
    assert "--force" in refused.stderr
    assert p3_state(ws8) == (True, 2)
    forced = ws8("release", "p3-off", "--force", *GO)
    assert forced.exit_code == 0, forced.stderr
    assert p3_state(ws8) == (True, 1)
    assert ws8.sql("SELECT forced FROM flagctl.audit WHERE action = 'release' AND flag = 'p3_advisory'") == [
        (True,)
    ]


def test_release_of_a_switch_not_engaged_changes_nothing(ws8: Cli) -> None:
    result = ws8("release", "p3-off", *GO)
    assert result.exit_code == 0 and "not engaged" in result.stdout
    assert audit_count(ws8) == 0


def test_unknown_switch_is_a_usage_error(ws8: Cli) -> None:
    for args in (("kill", "p4-off", *GO), ("release", "p4-off", *GO), ("kill", *GO)):
        result = ws8(*args)
        assert result.exit_code == 2, args
    assert "kill switches: p3-off" in ws8("kill", "p4-off", *GO).stderr


def test_set_and_forward_stage_moves_are_refused_while_killed(ws8: Cli) -> None:
    """A backward stage move moves the stage beneath the kill (tests/db/test_stage.py); a
    forward one, and any `set`, are refused while the kill holds the flag."""
    ws8("stage", "set", "p3", "canary", *GO)
    ws8("kill", "p3-off", *GO)
    assert ws8("stage", "set", "p3", "limited", "--force", *GO).exit_code == 1
    assert ws8("set", "p3_advisory", "off", *GO).exit_code == 1
    assert ws8("set", "p3_advisory", "50%", "--force", *GO).exit_code == 1
    assert p3_state(ws8) == (False, 0)


def test_set_on_a_ladder_flag_only_lowers_exposure_without_force(ws8: Cli) -> None:
    raised = ws8("set", "p3_advisory", "50%", *GO)
    assert raised.exit_code == 1 and "use: flagctl stage set p3" in raised.stderr
    assert p3_state(ws8) == (False, 0)
    assert ws8("set", "p3_advisory", "50%", "--force", *GO).exit_code == 0
    assert ws8("set", "p3_advisory", "5%", *GO).exit_code == 0
    assert p3_state(ws8) == (True, 5)
    assert ws8("set", "p3_advisory", "off", *GO).exit_code == 0
    assert p3_state(ws8) == (False, 0)
    bad = ws8("set", "p3_advisory", "150%", *GO)
    assert bad.exit_code == 2 and "not a rollout value" in bad.stderr


def test_a_bound_tables_check_constraint_is_a_usage_error(ws8: Cli) -> None:
    ws8.sql("ALTER TABLE p3_feature_state ADD CONSTRAINT at_most_half CHECK (rollout_percent <= 50)")
    result = ws8("set", "p3_advisory", "60%", "--force", *GO)
    assert result.exit_code == 2
    assert "at_most_half" in result.stderr and "23514" in result.stderr
    assert p3_state(ws8) == (False, 0) and audit_count(ws8) == 0


def test_releasing_one_switch_never_undoes_another(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TWO_SWITCHES)
    assert cli("db", "init").exit_code == 0

    def values() -> dict[str, object]:
        return {f["name"]: f["value"] for f in json.loads(cli("status", "-o", "json").stdout)["flags"]}

    original = values()
    assert cli("kill", "KS3", *GO).exit_code == 0
    assert cli("kill", "KS5", *GO).exit_code == 0
    killed = values()
    assert killed == {"f1": {"enabled": False, "percent": 0}, "f3": {"enabled": False, "percent": 40}}
    assert cli("release", "KS3", *GO).exit_code == 0
    assert values() == killed  # KS5 still holds everything it turned off
    assert cli("release", "KS5", *GO).exit_code == 0
    assert values() == original  # the values from before the first kill


def test_release_in_engagement_order_restores_too(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TWO_SWITCHES)
    cli("db", "init")

    def values() -> list[object]:
        return [f["value"] for f in json.loads(cli("status", "-o", "json").stdout)["flags"]]

    before = values()
    cli("kill", "KS3", *GO)
    cli("kill", "KS5", *GO)
    cli("release", "KS5", *GO)
    f1 = next(f for f in json.loads(cli("status", "-o", "json").stdout)["flags"] if f["name"] == "f1")
    assert f1["value"] == {"enabled": True, "percent": 0}  # KS3 still engaged: percent stays 0
    cli("release", "KS3", *GO)
    assert values() == before


def test_kill_list_shows_levels_and_engagement(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TWO_SWITCHES)
    cli("db", "init")
    cli("kill", "KS1", "-r", "adapter down", "--actor", "sec-lead", "-y")
    listing = json.loads(cli("kill", "--list", "-o", "json").stdout)["kill_switches"]
    assert [(s["name"], s["level"], bool(s["engaged"])) for s in listing] == [
        ("KS1", 1, True),
        ("KS3", 3, False),
        ("KS5", 5, False),
    ]
    table = cli("kill", "--list")
    assert "KS1" in table.stdout and "by sec-lead" in table.stdout


def test_dry_run_kill_changes_nothing(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    before = audit_count(ws8)
    result = ws8("kill", "p3-off", "--dry-run", "-o", "json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["dry_run"] is True and doc["applied"] is False
    assert doc["changes"][0]["after"] == {"enabled": False, "percent": 0}
    assert p3_state(ws8) == (True, 1) and audit_count(ws8) == before


def test_set_force_never_skips_a_failing_guardrail(ws8: Cli) -> None:
    """--force skips a ladder's stages and bake; like `stage set --force`, never its guardrails."""
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    refused = ws8("set", "p3_advisory", "50%", "--force", *GO)
    assert refused.exit_code == 1 and "guardrail no_contract_violations" in refused.stderr
    assert p3_state(ws8) == (False, 0)
    ws8.sql("DELETE FROM p3_events")
    forced = ws8("set", "p3_advisory", "50%", "--force", *GO)
    assert forced.exit_code == 0, forced.stderr
    assert "guardrail no_contract_violations: 0 (max 0) pass" in forced.stdout
