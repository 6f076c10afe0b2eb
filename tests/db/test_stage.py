"""stage set/show/history: one step forward after the bake with guardrails; backward always."""

from __future__ import annotations

import json

from tests.conftest import Cli, audit_count, p3_state

GO = ("-r", "rollout", "-y")


def test_forward_one_stage_from_dark_to_canary(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "canary", *GO)
    assert result.exit_code == 0, result.stderr
    assert "dark (off) → canary (on 1%)" in result.stdout
    assert p3_state(ws8) == (True, 1)


def test_skipping_a_stage_is_refused_and_changes_nothing(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "limited", *GO)
    assert result.exit_code == 1
    assert "dark → limited skips canary" in result.stderr
    assert p3_state(ws8) == (False, 0)


def test_force_skips_a_stage_and_is_marked_in_the_audit(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "broad", "--force", *GO)
    assert result.exit_code == 0, result.stderr
    assert p3_state(ws8) == (True, 25)
    assert ws8.sql(
        "SELECT action, forced FROM flagctl.audit WHERE action = 'stage.set' AND flag IS NOT NULL"
    ) == [("stage.set", True)]


def entered(cli: Cli) -> None:
    """Set the fake clock to the database time of the last change (bake counts from it)."""
    cli.clock.now = cli.sql("SELECT max(at) FROM flagctl.audit")[0][0]


def test_bake_time_is_enforced_with_the_injected_clock(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    entered(ws8)
    ws8.clock.advance(minutes=29)
    early = ws8("stage", "set", "p3", "limited", *GO)
    assert early.exit_code == 1
    assert "canary has baked 29m" in early.stderr and "of its 30m" in early.stderr
    assert p3_state(ws8) == (True, 1)
    ws8.clock.advance(minutes=2)
    later = ws8("stage", "set", "p3", "limited", *GO)
    assert later.exit_code == 0, later.stderr
    assert "bake: canary for 31m" in later.stdout
    assert p3_state(ws8) == (True, 5)  # a range stage defaults to its low end


def test_force_skips_the_bake_but_never_a_failing_guardrail(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    assert ws8("stage", "set", "p3", "limited", "--force", *GO).exit_code == 0
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    ws8.clock.advance(hours=2)
    refused = ws8("stage", "set", "p3", "broad", "--force", *GO)
    assert refused.exit_code == 1
    assert "guardrail no_contract_violations: 1 (max 0) FAIL" in refused.stderr
    assert p3_state(ws8) == (True, 5)


def test_a_failing_guardrail_refuses_and_the_refusal_is_audited(ws8: Cli) -> None:
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    refused = ws8("stage", "set", "p3", "canary", *GO)
    assert refused.exit_code == 1
    assert p3_state(ws8) == (False, 0)
    row = ws8.sql(
        "SELECT action, target, after->>'refused' FROM flagctl.audit WHERE action <> 'manifest.publish'"
    )
    assert row[0][0] == "stage.set.refused" and row[0][1] == "ladder:p3"
    assert "no_contract_violations" in row[0][2]
    # Old violations (outside the guardrail's hour) do not count.
    ws8.sql("UPDATE p3_events SET at = now() - interval '2 hours'")
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0


def test_a_broken_guardrail_query_fails_closed_with_its_sqlstate(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "ladders:\n  l:\n    flag: f\n    stages: [{name: off, enabled: false, percent: 0}, {name: on, enabled: true, percent: 10}]\n"
        "    require: [g]\n"
        "guardrails:\n  g: {sql: 'select count(*) from no_such_table', max: 0}\n"
    )
    assert cli("db", "init").exit_code == 0
    result = cli("stage", "set", "l", "on", *GO)
    assert result.exit_code == 1
    assert "SQLSTATE 42P01" in result.stderr


def test_a_guardrail_cannot_write(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "ladders:\n  l:\n    flag: f\n    stages: [{name: off, enabled: false, percent: 0}, {name: on, enabled: true, percent: 10}]\n"
        "    require: [g]\n"
        "guardrails:\n  g: {sql: 'with d as (delete from victims returning 1) select count(*) from d', max: 100}\n",
        "CREATE TABLE victims (id int); INSERT INTO victims VALUES (1), (2)",
    )
    assert cli("db", "init").exit_code == 0
    result = cli("stage", "set", "l", "on", *GO)
    assert result.exit_code == 1
    assert "read-only transaction" in result.stderr and "25006" in result.stderr
    assert cli.sql("SELECT count(*) FROM victims") == [(2,)]


def test_percent_within_a_range_stage(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8.clock.advance(hours=1)
    assert ws8("stage", "set", "p3", "limited", "--percent", "8", *GO).exit_code == 0
    assert p3_state(ws8) == (True, 8)
    outside = ws8("stage", "set", "p3", "limited", "--percent", "20", *GO)
    assert outside.exit_code == 2
    assert "outside stage limited of ladder p3 (5–10)" in outside.stderr
    assert p3_state(ws8) == (True, 8)
    # Inside the stage: a decrease needs no checks; an increase needs no bake.
    assert ws8("stage", "set", "p3", "limited", "--percent", "6", *GO).exit_code == 0
    assert ws8("stage", "set", "p3", "limited", "--percent", "10", *GO).exit_code == 0
    assert p3_state(ws8) == (True, 10)


def test_backward_any_distance_needs_no_bake(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "full", "--force", *GO)
    result = ws8("stage", "set", "p3", "dark", *GO)
    assert result.exit_code == 0, result.stderr
    assert p3_state(ws8) == (False, 0)


def test_already_there_is_a_no_op(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "dark", *GO)
    assert result.exit_code == 0
    assert "nothing to do" in result.stdout
    assert audit_count(ws8) == 0


def test_dry_run_changes_nothing_and_needs_no_reason(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "canary", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "p3_advisory: enabled: false → true; percent: 0 → 1" in result.stdout
    assert "dry run: nothing was changed" in result.stdout
    assert p3_state(ws8) == (False, 0) and audit_count(ws8) == 0


def test_without_a_terminal_a_mutation_needs_yes(ws8: Cli) -> None:
    result = ws8("stage", "set", "p3", "canary", "-r", "why")
    assert result.exit_code == 2
    assert "without --yes" in result.stderr
    assert p3_state(ws8) == (False, 0) and audit_count(ws8) == 0


def test_reason_is_required(ws8: Cli) -> None:
    for args in (("-y",), ("-y", "-r", "   ")):
        result = ws8("stage", "set", "p3", "canary", *args)
        assert result.exit_code == 2
        assert "needs --reason" in result.stderr
    assert p3_state(ws8) == (False, 0)


def test_prompt_on_a_terminal_defaults_to_no(ws8: Cli) -> None:
    ws8.tty = True
    declined = ws8("stage", "set", "p3", "canary", "-r", "why", input="\n")
    assert declined.exit_code == 1
    assert "not confirmed" in declined.stderr
    assert p3_state(ws8) == (False, 0)
    eof = ws8("stage", "set", "p3", "canary", "-r", "why", input="")
    assert eof.exit_code == 1 and p3_state(ws8) == (False, 0)  # EOF is a no, never a yes
    accepted = ws8("stage", "set", "p3", "canary", "-r", "why", input="y\n")
    assert accepted.exit_code == 0, accepted.stderr
    assert "dark (off) → canary (on 1%)" in accepted.stderr  # the plan was shown before asking
    assert p3_state(ws8) == (True, 1)


def test_unknown_ladder_and_stage_are_usage_errors(ws8: Cli) -> None:
    unknown_ladder = ws8("stage", "set", "p4", "canary", *GO)
    assert unknown_ladder.exit_code == 2 and "unknown ladder 'p4'" in unknown_ladder.stderr
    unknown_stage = ws8("stage", "set", "p3", "beta", *GO)
    assert (
        unknown_stage.exit_code == 2 and "stages: dark, canary, limited, broad, full" in unknown_stage.stderr
    )


def test_off_ladder_values_refuse_forward_but_allow_down(ws8: Cli) -> None:
    ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 3")
    up = ws8("stage", "set", "p3", "limited", *GO)
    assert up.exit_code == 1 and "off its stages" in up.stderr
    down = ws8("stage", "set", "p3", "canary", *GO)
    assert down.exit_code == 0, down.stderr
    assert p3_state(ws8) == (True, 1)


def test_show_and_history_include_plain_sql_changes(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "go", "--actor", "alice", "-y")
    ws8.sql("UPDATE p3_feature_state SET rollout_percent = 5")
    show = json.loads(ws8("stage", "show", "p3", "-o", "json").stdout)
    assert show["stage"] == "limited" and show["values"]["p3_advisory"] == {"enabled": True, "percent": 5}
    moves = json.loads(ws8("stage", "history", "p3", "-o", "json").stdout)["moves"]
    assert [(m["from"], m["to"], m["action"]) for m in moves] == [
        ("canary", "limited", "sql.update"),
        ("dark", "canary", "stage.set"),
    ]
    assert moves[1]["who"] == "alice (db: postgres)" and moves[1]["reason"] == "go"


def test_bake_counts_from_a_plain_sql_move_too(ws8: Cli) -> None:
    ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 1")  # canary, by hand
    refused = ws8("stage", "set", "p3", "limited", *GO)
    assert refused.exit_code == 1 and "canary has baked" in refused.stderr


def test_stage_next_and_rollback_step_one_stage_from_where_the_ladder_stands(ws8: Cli) -> None:
    assert ws8("stage", "next", "p3", *GO).exit_code == 0
    assert p3_state(ws8) == (True, 1)  # dark → canary
    refused = ws8("stage", "next", "p3", *GO)
    assert refused.exit_code == 1 and "baked" in refused.stderr  # the same bake rule as stage set
    ws8.clock.advance(minutes=31)
    assert ws8("stage", "next", "p3", *GO).exit_code == 0
    assert p3_state(ws8) == (True, 5)  # canary → limited, at its low end
    assert ws8("stage", "rollback", "p3", *GO).exit_code == 0
    assert ws8("stage", "rollback", "p3", *GO).exit_code == 0
    assert p3_state(ws8) == (False, 0)
    at_first = ws8("stage", "rollback", "p3", *GO)
    assert at_first.exit_code == 0 and "at its first stage, dark" in at_first.stdout
    actions = ws8.sql("SELECT action FROM flagctl.audit WHERE flag = 'p3_advisory' ORDER BY seq")
    assert [a for (a,) in actions] == ["stage.set"] * 4


# ------------------------------------------- issue 17, finding 2: stage moves under a kill


def killed_at_limited(cli: Cli) -> None:
    """WS8 at limited (5%), then p3-off engaged: the flag is off, limited is beneath the kill."""
    assert cli("stage", "set", "p3", "limited", "--force", *GO).exit_code == 0
    assert cli("kill", "p3-off", "-r", "INC-17", "-y").exit_code == 0
    assert p3_state(cli) == (False, 0)


def release(cli: Cli) -> tuple[bool, int]:
    result = cli("release", "p3-off", "-r", "INC-17 mitigated", "-y")
    assert result.exit_code == 0, result.stderr
    return p3_state(cli)


def test_a_rollback_under_a_kill_moves_the_stage_beneath_it(ws8: Cli) -> None:
    """Finding 2: `stage rollback` under a kill said "at its first stage, dark" (exit 0) and
    moved nothing, so the release brought back the stage the CI job had rolled back."""
    killed_at_limited(ws8)
    result = ws8("stage", "rollback", "p3", "-o", "json", *GO)
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["applied"] is True and doc["noop"] is None
    assert doc["changes"] == []  # the flag row keeps the kill's values
    assert doc["killed_by"] == ["p3-off"]
    assert [(b["flag"], b["before"], b["after"]) for b in doc["beneath"]] == [
        ("p3_advisory", {"enabled": True, "percent": 5}, {"enabled": True, "percent": 1})
    ]
    assert p3_state(ws8) == (False, 0)  # the kill still holds
    assert release(ws8) == (True, 1)  # and the release lands at the rolled-back stage: canary


def test_stage_set_to_an_earlier_stage_under_a_kill_moves_the_base(ws8: Cli) -> None:
    killed_at_limited(ws8)
    result = ws8("stage", "set", "p3", "dark", *GO)
    assert result.exit_code == 0, result.stderr
    assert "beneath kill switch p3-off" in result.stdout
    assert p3_state(ws8) == (False, 0)
    again = ws8("stage", "rollback", "p3", *GO)  # dark beneath the kill: nothing further back
    assert again.exit_code == 0 and "at its first stage, dark (beneath kill switch p3-off)" in again.stdout
    assert release(ws8) == (False, 0)


def test_a_percent_lowered_within_a_range_stage_under_a_kill(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "limited", "--percent", "9", "--force", *GO).exit_code == 0
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    assert ws8("stage", "set", "p3", "limited", "--percent", "6", *GO).exit_code == 0
    raised = ws8("stage", "set", "p3", "limited", "--percent", "8", *GO)
    assert raised.exit_code == 1 and "p3-off" in raised.stderr
    assert release(ws8) == (True, 6)


def test_a_forward_move_under_a_kill_is_refused_naming_the_switch(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    ws8.clock.advance(hours=1)
    for args in (
        ("stage", "next", "p3"),
        ("stage", "set", "p3", "limited"),
        ("stage", "set", "p3", "full", "--force"),
    ):
        refused = ws8(*args, *GO)
        assert refused.exit_code == 1, args
        assert "kill switch p3-off holds ladder p3" in refused.stderr, refused.stderr
        assert "flagctl release p3-off" in refused.stderr
    assert ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'stage.set.refused'") == [(3,)]
    assert release(ws8) == (True, 1)  # the base did not move


def test_status_and_stage_show_say_what_is_beneath_the_kill(ws8: Cli) -> None:
    killed_at_limited(ws8)
    status = ws8("status")
    assert "p3: dark — killed by p3-off; beneath it: limited" in status.stdout, status.stdout
    show = ws8("stage", "show", "p3")
    assert "ladder p3: dark — killed by p3-off; beneath it: limited" in show.stdout, show.stdout
    flag = json.loads(ws8("status", "-o", "json").stdout)["flags"][0]
    assert flag["stages"] == [
        {"ladder": "p3", "stage": "dark", "beneath": "limited", "killed_by": ["p3-off"]}
    ]
    doc = json.loads(ws8("stage", "show", "p3", "-o", "json").stdout)
    assert doc["stage"] == "dark" and doc["beneath"] == "limited" and doc["killed_by"] == ["p3-off"]
    assert doc["beneath_values"] == {"p3_advisory": {"enabled": True, "percent": 5}}
    assert ws8("stage", "rollback", "p3", *GO).exit_code == 0
    assert "beneath it: canary" in ws8("stage", "show", "p3").stdout
    release(ws8)
    doc = json.loads(ws8("stage", "show", "p3", "-o", "json").stdout)
    assert doc["stage"] == "canary" and doc["beneath"] is None and doc["killed_by"] == []


def test_the_move_beneath_a_kill_is_audited_as_a_stage_change(ws8: Cli) -> None:
    killed_at_limited(ws8)
    assert ws8("stage", "rollback", "p3", "-r", "deploy 41 failed", "--actor", "ci", "-y").exit_code == 0
    rows = ws8.sql(
        "SELECT action, target, actor, reason, before->'prior', after->'prior' FROM flagctl.audit"
        " WHERE reason = 'deploy 41 failed'"
    )
    assert rows == [
        ("stage.set", "kill_switch:p3-off", "ci", "deploy 41 failed",
         {"p3_advisory": {"enabled": True, "percent": 5}}, {"p3_advisory": {"enabled": True, "percent": 1}}),
    ]  # fmt: skip
    log = ws8("audit", "log", "--limit", "1")
    assert "beneath kill switch p3-off: p3_advisory percent: 5 → 1" in log.stdout, log.stdout
    assert ws8("audit", "verify").exit_code == 0
