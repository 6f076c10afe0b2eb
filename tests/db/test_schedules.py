"""Scheduled changes (flagctl schedule, applied by flagctl run) against a real database, on
an injected clock: applied at their time through the same checks as a person's change,
refused when the state they were planned on has changed, held by freezes and roles."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Cli, p3_state
from tests.db.test_role_matrix import as_role

GO = ("-r", "CHG-311", "-y")


def run_once(cli: Cli) -> list[dict[str, Any]]:
    result = cli("run", "--once", "-o", "json", "--actor", "runner-1", "-y")
    assert result.exit_code == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def schedules(cli: Cli) -> list[dict[str, Any]]:
    return json.loads(cli("schedule", "list", "--all", "-o", "json").stdout)["schedules"]  # type: ignore[no-any-return]


def test_a_scheduled_stage_move_applies_at_its_time_and_says_who_did_what(ws8: Cli) -> None:
    added = ws8("schedule", "add", "stage", "p3", "canary", "--at", "1h", "--actor", "alice", *GO)
    assert added.exit_code == 0, added.stderr
    assert "stage set p3 canary" in added.stdout and "planned on p3_advisory" in added.stdout
    assert run_once(ws8) == []  # not yet
    assert p3_state(ws8) == (False, 0)
    ws8.clock.advance(minutes=61)
    (decision,) = run_once(ws8)
    assert (decision["kind"], decision["did"]) == ("schedule", "applied"), decision
    assert p3_state(ws8) == (True, 1)
    (row,) = schedules(ws8)
    assert (row["state"], row["scheduled_by"], row["settled_by"]) == ("applied", "alice", "runner-1")
    # The move itself is audited as the stage move it is, by the runner, saying whose schedule it was.
    move = ws8.sql("SELECT action, actor, reason, request_id FROM flagctl.audit WHERE flag = 'p3_advisory'")
    assert move[-1][:2] == ("stage.set", "runner-1")
    assert f"schedule {row['id']} by alice" in move[-1][2] and "CHG-311" in move[-1][2]
    assert move[-1][3] == f"schedule-{row['id']}"
    actions = [
        r[0]
        for r in ws8.sql("SELECT action FROM flagctl.audit WHERE target = 'flagctl.schedule' ORDER BY seq")
    ]
    assert actions == ["schedule.add", "schedule.settle"]
    # Applied once: the next passes leave it alone.
    ws8.clock.advance(hours=1)
    assert run_once(ws8) == []


def test_a_schedule_whose_planned_on_state_changed_is_refused_not_applied(ws8: Cli) -> None:
    assert ws8("schedule", "add", "stage", "p3", "canary", "--at", "1h", *GO).exit_code == 0
    assert ws8("set", "p3_advisory", "internal", "--force", *GO).exit_code == 0  # someone moved it
    moved = p3_state(ws8)
    ws8.clock.advance(hours=2)
    (decision,) = run_once(ws8)
    assert decision["did"] == "refused"
    assert "the state it was planned on has changed: p3_advisory at global was" in decision["note"]
    assert p3_state(ws8) == moved
    (row,) = schedules(ws8)
    assert row["state"] == "refused" and "planned on has changed" in row["outcome"]
    assert "refused" in ws8("schedule", "list", "--all").stdout


def test_a_freeze_holds_a_scheduled_widening(ws8: Cli) -> None:
    assert ws8("schedule", "add", "stage", "p3", "canary", "--at", "30m", *GO).exit_code == 0
    assert ws8("freeze", "set", "-r", "CAB", "-y").exit_code == 0
    ws8.clock.advance(hours=1)
    (decision,) = run_once(ws8)
    assert decision["did"] == "refused" and "frozen" in decision["note"]
    assert p3_state(ws8) == (False, 0)


def test_a_scheduled_kill_and_release(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    assert ws8("schedule", "add", "kill", "p3-off", "--at", "1h", *GO).exit_code == 0
    assert ws8("schedule", "add", "release", "p3-off", "--at", "3h", *GO).exit_code == 0
    ws8.clock.advance(minutes=61)
    assert [d["did"] for d in run_once(ws8)] == ["applied"]
    assert p3_state(ws8) == (False, 0)
    ws8.clock.advance(hours=2)
    (release,) = run_once(ws8)
    # The release was planned on the flag as it was before the kill: the kill changed it.
    assert release["did"] == "refused" and "planned on has changed" in release["note"]
    assert p3_state(ws8) == (False, 0)


def test_bad_schedules_are_refused_and_a_cancelled_one_never_applies(ws8: Cli) -> None:
    past = ws8("schedule", "add", "stage", "p3", "canary", "--at", "2020-01-01T00:00Z", *GO)
    assert past.exit_code == 2 and "not in the future" in past.stderr
    assert ws8("schedule", "add", "stage", "p3", "nowhere", "--at", "1h", *GO).exit_code == 2
    assert ws8("schedule", "add", "stage", "p3", "canary", "--at", "soon", *GO).exit_code == 2
    assert ws8("schedule", "add", "set", "p3_advisory", "lots", "--at", "1h", *GO).exit_code == 2
    assert schedules(ws8) == []
    assert ws8("schedule", "add", "stage", "p3", "canary", "--at", "1h", *GO).exit_code == 0
    (pending,) = schedules(ws8)
    assert ws8("schedule", "cancel", str(pending["id"]), *GO).exit_code == 0
    assert "already cancelled" in ws8("schedule", "cancel", str(pending["id"]), *GO).stdout
    ws8.clock.advance(hours=2)
    assert run_once(ws8) == []
    assert p3_state(ws8) == (False, 0)
    assert ws8("schedule", "cancel", "999", *GO).exit_code == 2


def test_scheduling_a_change_needs_the_role_the_change_needs(ws8: Cli) -> None:
    with as_role(ws8, "release") as (_, _, release):
        assert release("schedule", "add", "stage", "p3", "canary", "--at", "1h", *GO).exit_code == 0
        refused = release("schedule", "add", "kill", "p3-off", "--at", "1h", *GO)
        assert refused.exit_code == 5 and "security" in refused.stderr
    assert [s["kind"] for s in schedules(ws8)] == ["stage.set"]


def test_a_schedule_cannot_pass_a_kill_off_as_a_stage_move_in_psql(ws8: Cli) -> None:
    """The role checked when scheduling is that of the change the runner will build."""
    import psycopg
    import pytest

    with (
        as_role(ws8, "release") as (_, dsn, _),
        pytest.raises(psycopg.errors.InvalidParameterValue, match="must hold a change of that kind"),
        psycopg.connect(dsn) as conn,
    ):
        conn.execute("SELECT flagctl.begin_change('schedule.add', 'mallory', 'x', NULL, NULL)")
        conn.execute(
            'SELECT flagctl.schedule_add(\'phase3\', \'stage.set\', \'{"kind": "kill", "switch": "p3-off"}\','
            " 'kill p3-off', '{}', now() + interval '1 hour')"
        )
    assert schedules(ws8) == []
