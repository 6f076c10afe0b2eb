"""A write that does not take is never reported as done (issue: the kill that proves it took).

An application's own schema can make an UPDATE a silent no-op: a BEFORE trigger that keeps
the old values, or a rule ``ON UPDATE … DO INSTEAD NOTHING``. Every write flagctl makes is
read back in the same transaction; a row that did not take the value it was given rolls the
whole change back, exits 1 and names the trigger or rule in the way."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli, p3_state

GO = ("-r", "INC-1", "-y")

KEEP_OLD = """
CREATE FUNCTION keep_flags() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.enabled := OLD.enabled;
    NEW.rollout_percent := OLD.rollout_percent;
    RETURN NEW;
END $$;
CREATE TRIGGER keep_flags BEFORE UPDATE ON p3_feature_state FOR EACH ROW EXECUTE FUNCTION keep_flags();
"""
INSTEAD_NOTHING = "CREATE RULE ignore_updates AS ON UPDATE TO p3_feature_state DO INSTEAD NOTHING"
SKIP_ROW = """
CREATE FUNCTION skip_row() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE TRIGGER skip_row BEFORE UPDATE ON p3_feature_state FOR EACH ROW EXECUTE FUNCTION skip_row();
"""


@pytest.mark.parametrize(
    ("blocker", "named"),
    [(KEEP_OLD, "keep_flags"), (INSTEAD_NOTHING, "ignore_updates"), (SKIP_ROW, "skip_row")],
    ids=["trigger-keeps-old", "rule-instead-nothing", "trigger-skips-row"],
)
def test_a_kill_that_does_not_take_fails_and_changes_nothing(ws8: Cli, blocker: str, named: str) -> None:
    assert ws8("stage", "set", "p3", "full", "--force", *GO).exit_code == 0
    ws8.sql(blocker)
    rows = int(ws8.sql("SELECT max(seq) FROM flagctl.audit")[0][0])
    result = ws8("kill", "p3-off", *GO)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert named in result.stderr
    assert "p3_feature_state" in result.stderr
    assert "nothing was changed" in result.stderr
    assert p3_state(ws8) == (True, 100)
    assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
    # Rolled back whole: no engaged switch, no row of the kill; the refusal itself is recorded.
    assert ws8.sql("SELECT action FROM flagctl.audit WHERE seq > %s", (rows,)) == [("kill.refused",)]
    flags = json.loads(ws8("status", "-o", "json").stdout)["flags"]
    assert [f.get("killed_by") for f in flags] == [None]
    again = ws8("kill", "p3-off", *GO)
    assert again.exit_code == 1  # and a second try says so again, never "already engaged"


def test_a_stage_move_that_does_not_take_fails(ws8: Cli) -> None:
    ws8.sql(KEEP_OLD)
    result = ws8("stage", "set", "p3", "canary", *GO)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "keep_flags" in result.stderr
    assert p3_state(ws8) == (False, 0)


def test_a_kill_through_a_harmless_trigger_still_succeeds(ws8: Cli) -> None:
    """A trigger that only stamps the row (as many applications do) is no reason to fail."""
    ws8.sql(
        "ALTER TABLE p3_feature_state ADD COLUMN touched timestamptz;"
        "CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN NEW.touched := now(); RETURN NEW; END $$;"
        "CREATE TRIGGER stamp BEFORE UPDATE ON p3_feature_state FOR EACH ROW EXECUTE FUNCTION stamp();"
    )
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    assert p3_state(ws8) == (False, 0)


def test_a_kill_of_flagctls_own_table_is_read_back_too(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: bool, default: true}\n"
        "kill_switches:\n  off: {level: 5, set: {f: false}}\n"
    )
    assert cli("db", "init").exit_code == 0
    cli.sql(
        "CREATE FUNCTION flagctl_keep() RETURNS trigger LANGUAGE plpgsql AS $$"
        " BEGIN NEW.value := 'true'::jsonb; RETURN NEW; END $$;"
        "CREATE TRIGGER zz_keep BEFORE INSERT OR UPDATE ON flagctl.flag_state"
        " FOR EACH ROW EXECUTE FUNCTION flagctl_keep()"
    )
    result = cli("kill", "off", *GO)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "zz_keep" in result.stderr
    assert cli.sql("SELECT count(*) FROM flagctl.flag_state") == [(0,)]


def test_a_release_whose_removal_is_skipped_fails(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  f: {type: bool, default: true}\n"
        "kill_switches:\n  off: {level: 5, set: {f: false}}\n"
    )
    assert cli("db", "init").exit_code == 0
    assert cli("kill", "off", *GO).exit_code == 0  # creates f's global row; the release removes it
    cli.sql(
        "CREATE FUNCTION flagctl_skip() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;"
        "CREATE TRIGGER zz_skip BEFORE DELETE ON flagctl.flag_state FOR EACH ROW EXECUTE FUNCTION flagctl_skip()"
    )
    result = cli("release", "off", *GO)
    assert result.exit_code == 1, result.stdout + result.stderr
    assert "zz_skip" in result.stderr and "still stored" in result.stderr
    assert cli.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(1,)]  # still engaged


def test_db_init_and_db_status_name_a_foreign_trigger(ws8: Cli) -> None:
    ws8.sql(KEEP_OLD + INSTEAD_NOTHING)
    init = ws8("db", "init")
    assert init.exit_code == 0
    assert "keep_flags" in init.stderr and "ignore_updates" in init.stderr
    status = json.loads(ws8("db", "status", "-o", "json").stdout)
    assert any("keep_flags" in w for w in status["bindings"][0]["in_the_way"])


@pytest.mark.parametrize(
    ("blocker", "named"), [(KEEP_OLD, "keep_flags"), (INSTEAD_NOTHING, "ignore_updates")]
)
def test_the_application_in_the_way_stops_each_role_through_flagctl_and_in_psql(
    ws8: Cli, blocker: str, named: str
) -> None:
    """The same hostile trigger or rule, met by the users who really make these changes: a
    security member's kill and a release member's stage move, through flagctl (exit 1,
    naming it) and in psql (flagctl.kill refuses with FL001; write_bound shows the row as
    the table kept it), each leaving the flag where it was."""
    import psycopg

    from tests.db.test_trust import declared, member

    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    ws8.sql(blocker)
    with member(ws8, "security") as (_, dsn):
        killed = Cli(dsn, ws8.manifest, admin_dsn=ws8.dsn)("kill", "p3-off", *GO)
        assert killed.exit_code == 1 and named in killed.stderr, killed.stderr
        with pytest.raises(psycopg.Error) as refused, psycopg.connect(dsn) as conn:
            conn.execute("SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-1')")
        assert refused.value.sqlstate == "FL001" and named in str(refused.value)
    with member(ws8, "release") as (_, dsn):
        moved = Cli(dsn, ws8.manifest, admin_dsn=ws8.dsn)("stage", "set", "p3", "dark", *GO)
        assert moved.exit_code == 1 and named in moved.stderr, moved.stderr
        with psycopg.connect(dsn) as conn:
            conn.execute(declared("stage.set"))
            try:  # a rule: refused outright; a trigger: the row as it kept it, for the caller to see
                held = conn.execute(
                    "SELECT held FROM flagctl.write_bound('phase3', %s)",
                    ('[{"flag": "p3_advisory", "set": {"enabled": false, "rollout_percent": 0}}]',),
                ).fetchall()
                assert held == [({"feature_name": "p3_advisory", "enabled": True, "rollout_percent": 1},)]
            except psycopg.Error as error:
                assert error.sqlstate == "FL001" and named in str(error)
            conn.rollback()
    assert p3_state(ws8) == (True, 1)
    assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


@pytest.mark.parametrize(
    ("blocker", "named"),
    [(KEEP_OLD, "keep_flags"), (INSTEAD_NOTHING, "ignore_updates"), (SKIP_ROW, "skip_row")],
    ids=["trigger-keeps-old", "rule-instead-nothing", "trigger-skips-row"],
)
def test_a_runners_move_and_a_scheduled_one_that_do_not_take_are_never_reported_as_done(
    ws8: Cli, blocker: str, named: str
) -> None:
    """A release member's runner meets the application's trigger or rule: the rollout waits,
    naming it, and a scheduled move is refused, naming it; the flag stays where it was."""
    from tests.db.test_trust import member

    ws8.sql(blocker)
    with member(ws8, "release") as (name, dsn):
        runner = Cli(dsn, ws8.manifest, admin_dsn=ws8.dsn, clock=ws8.clock)
        assert runner("rollout", "start", "p3", "--to", "canary", *GO).exit_code == 0
        assert runner("schedule", "add", "stage", "p3", "canary", "--at", "25m", *GO).exit_code == 0
        # Not yet allowed to read the metrics: no verdict at all, so no failure and no rollback.
        (unread,) = [
            json.loads(line) for line in runner("run", "--once", "-o", "json", "-y").stdout.splitlines()
        ]
        assert unread["did"] == "waiting" and "may not read what guardrail" in unread["note"], unread
        ws8.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
        decisions = []
        for _ in range(
            4
        ):  # WS8 analyses every ten minutes: the third pass tries, the fourth too, and the schedule is due
            result = runner("run", "--once", "-o", "json", "-y")
            assert result.exit_code == 0, result.stderr
            decisions += [json.loads(line) for line in result.stdout.splitlines()]
            ws8.clock.advance(minutes=10)
    rollout = [d for d in decisions if d["kind"] == "rollout"][-1]
    assert rollout["did"] == "waiting" and named in rollout["note"], rollout
    (scheduled,) = [d for d in decisions if d["kind"] == "schedule"]
    assert scheduled["did"] == "refused" and named in scheduled["note"], scheduled
    assert p3_state(ws8) == (False, 0)
    assert (
        json.loads(ws8("rollout", "status", "p3", "-o", "json").stdout)["rollouts"][0]["state"] == "running"
    )
