"""The database enforces what flagctl promises, as an attacker would try it: in psql, as each
role, with only what `flagctl db grant` gave. Each test is one finding of the trust review;
each failed before the change it names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.conftest import WS8_MANIFEST, Cli

GO = ("-r", "INC-17", "-y")
GATE_PROCESS = """
import sys
from flagctl.gate import Gate
gate = Gate(sys.argv[1], manifest=sys.argv[2], application="checkout-api")
gate.wait_ready()
print("ready", flush=True)
sys.stdin.read()
"""


@contextmanager
def member(cli: Cli, *roles: str) -> Iterator[tuple[str, str]]:
    """A fresh LOGIN user given these flagctl roles with `flagctl db grant` (its name, its DSN)."""
    name = f"u_{uuid.uuid4().hex[:8]}"
    cli.sql(f"CREATE ROLE {name} LOGIN")
    try:
        for role in roles:
            assert cli("db", "grant", role, name).exit_code == 0
        yield name, cli.dsn.replace("user=postgres", f"user={name}")
    finally:
        cli.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")


def denied(dsn: str, *statements: str) -> bool:
    """Whether the database refuses these statements (run in one transaction) for lack of privilege."""
    try:
        with psycopg.connect(dsn) as conn:
            for statement in statements:
                conn.execute(statement.encode())
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


# ---------------------------------------------------------------- finding 6: gate clients


def test_a_viewer_cannot_acknowledge_for_a_stopped_gate(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    proc = subprocess.Popen(
        [sys.executable, "-c", GATE_PROCESS, ws8.dsn, str(WS8_MANIFEST)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGSTOP)
        with member(ws8, "viewer") as (_, viewer):
            forged = "UPDATE flagctl.clients SET applied_seq = 1000000, seen_at = now()"
            assert denied(viewer, forged)
            assert denied(viewer, "DELETE FROM flagctl.clients")
            assert denied(
                viewer,
                "INSERT INTO flagctl.clients (system, host, pid, application) VALUES ('phase3', 'h', 1, 'x')",
            )
            gate_id = ws8.sql("SELECT id FROM flagctl.clients")[0][0]
            with psycopg.connect(viewer, autocommit=True) as conn:  # another backend's row: no effect
                assert conn.execute("SELECT flagctl.client_ack(%s, 1000000)", (gate_id,)).fetchone() == (
                    False,
                )
        result = ws8("kill", "p3-off", "--wait-ack", "--timeout", "1s", *GO)
        assert result.exit_code == 1, result.stderr
        assert f"pid {proc.pid} (checkout-api" in result.stderr and "did not apply the kill" in result.stderr
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


def test_a_gate_registers_and_acknowledges_only_its_own_row(ws8: Cli) -> None:
    with (
        member(ws8, "viewer") as (_, viewer),
        psycopg.connect(viewer, autocommit=True) as gate,
        psycopg.connect(viewer, autocommit=True) as other,
    ):
        (client,) = gate.execute("SELECT flagctl.client_register('phase3', 'h', 7, 'api')").fetchone()
        assert gate.execute("SELECT flagctl.client_ack(%s, 0)", (client,)).fetchone() == (True,)
        assert other.execute("SELECT flagctl.client_unregister(%s)", (client,)).fetchone() == (False,)
        row = ws8.sql("SELECT db_user, backend_pid = %s FROM flagctl.clients", (gate.info.backend_pid,))
        assert row == [(viewer.split("user=")[1].split()[0], True)]
        # an acknowledgement never runs ahead of the audit trail
        gate.execute("SELECT flagctl.client_ack(%s, 999999)", (client,))
        assert ws8.sql("SELECT applied_seq FROM flagctl.clients") == ws8.sql(
            "SELECT coalesce(max(seq), 0) FROM flagctl.audit WHERE system = 'phase3'"
        )


# ---------------------------------------------------------------- findings 7 and 9: attribution


@pytest.mark.parametrize("roles", [("release",), ("security",)])
def test_a_session_setting_is_no_declaration(ws8: Cli, roles: tuple[str, ...]) -> None:
    """`set_config('flagctl.action', 'approve')` and an actor in psql: the audit records the
    database user's own plain SQL (the claim kept aside), never "bob approve"."""
    with member(ws8, *roles) as (_name, dsn):
        try:
            with psycopg.connect(dsn) as conn:
                conn.execute(
                    "SELECT set_config('flagctl.action', 'approve', false), set_config('flagctl.actor', 'bob', false),"
                    " set_config('flagctl.reason', 'approved request 1', false)"
                )
                conn.execute(
                    "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('x', 'y', 'global', 'true')"
                )
        except psycopg.errors.InsufficientPrivilege:
            pass  # refused outright: as good
        assert ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'approve' OR actor = 'bob'") == [
            (0,)
        ]


def test_begin_change_checks_the_role_for_the_action(ws8: Cli) -> None:
    with member(ws8, "security") as (_, dsn):
        assert denied(dsn, "SELECT flagctl.begin_change('stage.set', 'bob', 'r', NULL, NULL)")
        assert not denied(dsn, "SELECT flagctl.begin_change('kill', 'bob', 'r', NULL, NULL)")
    with member(ws8, "release") as (_, dsn):
        assert denied(dsn, "SELECT flagctl.begin_change('approve', 'bob', 'r', NULL, NULL)")
        assert denied(dsn, "SELECT flagctl.begin_change('freeze.set', 'bob', 'r', NULL, NULL)")
    with member(ws8, "viewer") as (_, dsn):
        assert denied(dsn, "SELECT flagctl.begin_change('kill', 'bob', 'r', NULL, NULL)")


def test_a_security_member_cannot_pass_a_set_off_as_a_kill(ws8: Cli) -> None:
    """Finding 9 (flagctl's own table): the guard believed flagctl.action = 'kill' from the session."""
    with member(ws8, "security") as (_, dsn):
        assert denied(
            dsn,
            "SELECT set_config('flagctl.action', 'kill', false)",
            "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('phase3', 'other', 'global', 'true')",
        )


def test_a_security_member_writes_flags_only_through_flagctl_kill(groups: Cli) -> None:
    """The security role held INSERT, UPDATE and DELETE on flag_state and engaged_switch (and
    UPDATE on every bound table): the guard judged each write, but the role could write by
    hand. Since schema 28 it holds no write at all, declared or not; flagctl.kill in psql
    and `flagctl kill` (as that user) still engage KS2, and the release restores."""
    own = "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('groups', 'groups_create', 'global', 'false')"
    engagement = "DELETE FROM flagctl.engaged_switch"
    with member(groups, "security") as (_, dsn):
        for write in (own, engagement):
            assert denied(dsn, declared("kill"), write)
            assert denied(dsn, write)
        assert not denied(dsn, "SELECT count(*) FROM flagctl.kill('groups', 'KS2', 'INC-1')")
        assert groups.sql("SELECT value FROM flagctl.flag_state WHERE flag = 'groups_create'") == [(False,)]
        assert not denied(dsn, "SELECT count(*) FROM flagctl.release('groups', 'KS2', 'INC-1')")
        user = Cli(dsn, groups.manifest, admin_dsn=groups.dsn)
        assert user("kill", "KS2", *GO).exit_code == 0
        assert user("release", "KS2", *GO).exit_code == 0
    assert groups.sql("SELECT count(*) FROM flagctl.flag_state WHERE flag = 'groups_create'") == [(0,)]
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


def test_a_security_member_holds_no_write_on_a_bound_table(ws8: Cli) -> None:
    """The same on WS8's application table: no UPDATE for the role, even declared as a kill."""
    with member(ws8, "security") as (_, dsn):
        assert denied(
            dsn, declared("kill"), "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0"
        )
        assert denied(dsn, "SELECT * FROM p3_feature_state FOR UPDATE")  # nor a lock on its rows


@pytest.mark.parametrize("roles", [("release",), ("release", "security")])
def test_a_release_member_writes_flags_only_through_flagctls_functions(
    ws8: Cli, roles: tuple[str, ...]
) -> None:
    """A release member held UPDATE on every bound table and INSERT/UPDATE/DELETE on
    flag_state: declared as a stage move, it could rewrite any column of the application's
    rows (the guard judges only a flag's value). Since schema 29 the role holds no write;
    flagctl.write_bound writes only a bound flag's registered row and value columns, and
    only inside a declared change. `flagctl stage set` as that user still works."""
    rename = "UPDATE p3_feature_state SET feature_name = 'renamed' WHERE feature_name = 'p3_advisory'"
    own = (
        "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('phase3', 'x', 'global', 'true')"
    )
    canary = through("phase3", "p3_advisory", enabled=True, rollout_percent=1)
    with member(ws8, *roles) as (_, dsn):
        for write in (rename, own, P3_TO_100):
            assert denied(dsn, declared("stage.set"), write)
        assert denied(dsn, canary)  # undeclared
        with (
            pytest.raises(psycopg.errors.InvalidParameterValue, match="not a value column"),
            psycopg.connect(dsn) as conn,
        ):
            conn.execute(declared("stage.set"))
            conn.execute(through("phase3", "p3_advisory", feature_name="renamed"))
        with (
            pytest.raises(psycopg.errors.InvalidParameterValue, match="no flag resumes"),
            psycopg.connect(dsn) as conn,
        ):
            conn.execute(declared("stage.set"))
            conn.execute(through("phase3", "resumes", enabled=True))
        twice = json.dumps([{"flag": "p3_advisory", "set": {"enabled": False}}] * 2)
        for rows, says in (
            ('[{"flag": "p3_advisory", "set": {}}]', "nothing to write"),
            (twice, "written twice"),
        ):
            with (
                pytest.raises(psycopg.errors.InvalidParameterValue, match=says),
                psycopg.connect(dsn) as conn,
            ):
                conn.execute(declared("stage.set"))
                conn.execute("SELECT count(*) FROM flagctl.write_bound('phase3', %s)", (rows,))
        assert not denied(dsn, declared("stage.set"), canary)
        assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(True, 1)]
        assert Cli(dsn, WS8_MANIFEST, admin_dsn=ws8.dsn)("stage", "set", "p3", "dark", *GO).exit_code == 0
    assert ws8.sql("SELECT feature_name, enabled, rollout_percent FROM p3_feature_state") == [
        ("p3_advisory", False, 0)
    ]


@pytest.mark.parametrize("roles", [("viewer",), ("release",), ("security",)])
def test_the_kills_locks_are_taken_only_for_a_declared_kill(ws8: Cli, roles: tuple[str, ...]) -> None:
    """flagctl.kill_hold locks a kill's rows for flagctl's plan, as its owner: a lever for
    holding up every writer of those rows. It takes them only inside a change declared as a
    kill or a release, for a member who may make it; anything else is refused."""
    hold = "SELECT flagctl.kill_hold('phase3', 'p3-off', 'global')"
    with member(ws8, *roles) as (_, dsn):
        assert denied(dsn, hold)
        assert denied(dsn, "SELECT flagctl.begin_change('stage.set', 'm', 'r', NULL, NULL)", hold)
        if roles == ("security",):
            assert not denied(dsn, declared("kill"), hold)
            assert not denied(dsn, declared("release"), hold)


@pytest.mark.parametrize(
    "hold",
    [
        "SELECT flagctl.hold_flags('phase3', ARRAY['p3_advisory'])",
        "SELECT flagctl.hold_engaged('phase3')",
        "SELECT flagctl.hold_rollback_state('phase3')",
    ],
)
def test_a_declaration_that_writes_no_flag_takes_no_flag_lock(ws8: Cli, hold: str) -> None:
    """The hold functions took a flag's locks under any declared change: an ops member,
    declared as setting a freeze, could sit on the rows a kill needs in an open transaction
    (the kill then failed with exit 4). Only a change that writes flags may take them."""
    with member(ws8, "ops") as (_, dsn):
        assert denied(dsn, "SELECT flagctl.begin_change('freeze.set', 'm', 'r', NULL, NULL)", hold)
    with member(ws8, "release") as (_, dsn):
        assert denied(dsn, declared("review"), hold)
        assert not denied(
            dsn, declared("rollback.override" if "rollback_state" in hold else "stage.set"), hold
        )


def test_the_database_and_flagctl_agree_on_the_role_of_every_action(ws8: Cli) -> None:
    from flagctl.store.roles import role_for

    actions = ["kill", "release", "drill.kill", "drill.release", "kill.refused", "freeze.set", "freeze.clear",
               "stage.set", "stage.next", "set", "profile.apply:emergency", "rollback.auto", "exempt",
               "drill.stage", "rollback.override"]  # fmt: skip
    rows = ws8.sql("SELECT a, flagctl.role_for(a) FROM unnest(%s::text[]) AS a", (actions,))
    assert {a: r for a, r in rows} == {a: f"flagctl_{role_for(a.removesuffix('.refused'))}" for a in actions}


# ---------------------------------------------------------------- findings 7, 8, 9: the guard

P3_TO_100 = (
    "UPDATE p3_feature_state SET enabled = true, rollout_percent = 100 WHERE feature_name = 'p3_advisory'"
)
TRUST_TO_100 = "UPDATE feature_flags SET enabled = true, rollout_percentage = 100 WHERE flag_name = 'new_trust_algorithm'"


def through(system: str, flag: str, **columns: object) -> str:
    """A bound flag's write as a flagctl role makes it in psql since schema 29: through
    flagctl.write_bound (the role holds no UPDATE on the table), judged by the guard."""
    from psycopg import sql

    rows = json.dumps([{"flag": flag, "set": columns}])
    query = sql.SQL("SELECT count(*) FROM flagctl.write_bound({}, {})").format(
        sql.Literal(system), sql.Literal(rows)
    )
    return query.as_string(None)


P3_TO_100_FN = through("phase3", "p3_advisory", enabled=True, rollout_percent=100)
TRUST_TO_100_FN = through("orca", "new_trust_algorithm", enabled=True, rollout_percentage=100)


def declared(action: str) -> str:
    return f"SELECT flagctl.begin_change('{action}', 'bob', 'approved request 1', NULL, NULL)"


@pytest.mark.parametrize("roles", [("release",), ("security",), ("release", "security")])
def test_plain_sql_by_a_flagctl_role_changes_no_flag(ws8: Cli, roles: tuple[str, ...]) -> None:
    """Finding 7/8/9: a member of a flagctl role UPDATEs the bound table in psql, whatever it
    sets in its session: refused; the flag stays where it was."""
    with member(ws8, *roles) as (_, dsn):
        ws8.sql(f"GRANT SELECT, UPDATE ON p3_feature_state TO {dsn.split('user=')[1].split()[0]}")
        assert denied(dsn, "SELECT set_config('flagctl.action', 'approve', false)", P3_TO_100)
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]


def test_four_eyes_hold_in_psql(orca: Cli) -> None:
    """Finding 7: a release member declares a change itself and raises the flag to 100%:
    the published approvals want a second person, so the database refuses."""
    with member(orca, "release") as (_, dsn):
        assert denied(dsn, declared("stage.set"), TRUST_TO_100)  # by hand: no privilege (schema 29)
        with (
            pytest.raises(psycopg.errors.RaiseException, match="needs a second person"),
            psycopg.connect(dsn) as conn,
        ):
            conn.execute(declared("stage.set"))
            conn.execute(TRUST_TO_100_FN)
        with psycopg.connect(dsn) as conn:  # below the approval line: allowed, and audited as declared
            conn.execute(declared("set"))
            conn.execute(through("orca", "new_trust_algorithm", enabled=True, rollout_percentage=10))
    assert orca.sql(
        "SELECT enabled, rollout_percentage FROM feature_flags WHERE flag_name = 'new_trust_algorithm'"
    ) == [(True, 10)]


def test_a_freeze_holds_in_psql(ws8: Cli) -> None:
    """Finding 8: while a freeze is in force, a release member widens nothing in psql."""
    assert ws8("freeze", "set", *GO).exit_code == 0
    with (
        member(ws8, "release") as (_, dsn),
        pytest.raises(psycopg.errors.RaiseException, match="frozen"),
        psycopg.connect(dsn) as conn,
    ):
        conn.execute(declared("set"))
        conn.execute(P3_TO_100_FN)
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    status = ws8("status")
    assert "frozen" in status.stdout


@pytest.mark.parametrize("action", ["kill", "release"])
def test_a_freeze_holds_for_a_member_who_may_also_set_declaring_a_kill(ws8: Cli, action: str) -> None:
    """A release + security member declared a kill (or a release) and widened in psql: the
    guard let a member who "may set any value anyway" through without the freeze or the
    approvals a set faces. What is not the kill's or release's own value is now judged as a set."""
    assert ws8("freeze", "set", *GO).exit_code == 0
    with (
        member(ws8, "release", "security") as (_, dsn),
        pytest.raises(psycopg.errors.RaiseException, match="frozen"),
        psycopg.connect(dsn) as conn,
    ):
        conn.execute(declared(action))
        conn.execute(P3_TO_100_FN)
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]


def test_a_security_member_only_kills_and_restores(ws8: Cli) -> None:
    """Finding 9: "kill and release only" — a security member declaring a kill cannot widen,
    and a release cannot restore more than the engaged kill replaced."""
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    with member(ws8, "security") as (_, dsn):
        assert denied(dsn, declared("kill"), P3_TO_100)
        assert denied(dsn, declared("kill"), P3_TO_100_FN)  # the guard judges the function's write
        assert security_kill_and_release(ws8, dsn) == [(True, 1)]
        assert denied(
            dsn, declared("release"),
            "UPDATE p3_feature_state SET enabled = true, rollout_percent = 100 WHERE feature_name = 'p3_advisory'",
        )  # fmt: skip
        assert denied(dsn, declared("release"), P3_TO_100_FN)
        # engaged switches are written only in a declared kill or release
        assert Cli(dsn, WS8_MANIFEST)("kill", "p3-off", *GO).exit_code == 0
        assert denied(dsn, "DELETE FROM flagctl.engaged_switch")
        assert denied(dsn, declared("kill.refused"), "DELETE FROM flagctl.engaged_switch")
        assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(1,)]


def security_kill_and_release(ws8: Cli, dsn: str) -> list[tuple[bool, int]]:
    """Through flagctl as the security member: the kill and the release go through the guard."""
    as_user = Cli(dsn, WS8_MANIFEST, admin_dsn=ws8.dsn)
    assert as_user("kill", "p3-off", *GO).exit_code == 0
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    assert as_user("release", "p3-off", *GO).exit_code == 0
    return ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state")  # type: ignore[return-value]


# ---------------------------------------------------------------- finding 2: stage moves under a kill

BASE_TO_100 = (
    """UPDATE flagctl.engaged_switch SET prior = '{"p3_advisory": {"enabled": true, "percent": 100}}'"""
)
BASE_TO_1 = """UPDATE flagctl.engaged_switch SET prior = '{"p3_advisory": {"enabled": true, "percent": 1}}',
               applied = '{"p3_advisory": {"enabled": false, "percent": 0}}'"""
# The same moves as a member can make them since schema 30: through flagctl.move_base.
OFF_JSON = '{"p3_advisory": {"enabled": false, "percent": 0}}'
MOVE_TO_100 = f"""SELECT flagctl.move_base('phase3', 'p3-off', '{{"p3_advisory": {{"enabled": true, "percent": 100}}}}', '{OFF_JSON}')"""
MOVE_TO_1 = f"""SELECT flagctl.move_base('phase3', 'p3-off', '{{"p3_advisory": {{"enabled": true, "percent": 1}}}}', '{OFF_JSON}')"""


@pytest.mark.parametrize("roles", [("release",), ("security",), ("release", "security"), ("admin",)])
def test_the_base_beneath_a_kill_only_narrows_in_psql(ws8: Cli, roles: tuple[str, ...]) -> None:
    """Finding 2: a backward stage move under a kill rewrites what the release restores. In
    psql no member may widen that base — declared as a stage move, a kill or a release, or
    undeclared — nor rewrite anything else of the engagement; a declared stage move by a
    release member may narrow it, exactly as `stage rollback` does."""
    assert ws8("stage", "set", "p3", "limited", "--force", *GO).exit_code == 0
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    with member(ws8, *roles) as (_, dsn):
        for action in ("stage.set", "rollback.auto", "kill", "release", "set"):
            assert denied(dsn, declared(action), BASE_TO_100)
            assert denied(dsn, declared(action), MOVE_TO_100)
        assert denied(dsn, BASE_TO_100)
        assert denied(dsn, MOVE_TO_100)
        assert denied(dsn, declared("stage.set"), BASE_TO_1 + ", level = 1")  # nothing but the base
        assert denied(dsn, declared("stage.set"), "UPDATE flagctl.engaged_switch SET prior = '{}'")
        assert denied(dsn, declared("stage.set"), "DELETE FROM flagctl.engaged_switch")
        assert denied(dsn, declared("stage.set"), BASE_TO_1)  # by hand: no privilege (schema 30)
        narrowed = not denied(dsn, declared("stage.set"), MOVE_TO_1)
        assert narrowed == ("release" in roles or "admin" in roles)
    prior = ws8.sql("SELECT prior->'p3_advisory'->>'percent' FROM flagctl.engaged_switch")
    assert prior == [("1" if narrowed else "5",)]
    assert ws8("release", "p3-off", *GO).exit_code == 0
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(True, 1 if narrowed else 5)]


ENGAGEMENT = (
    "INSERT INTO flagctl.engaged_switch (system, switch, scope, level, actor, reason, prior, applied, settings, below)"
    """ VALUES ('phase3', 'p3-off', 'global', 5, 'm', 'r', '{"p3_advisory": {"enabled": true, "percent": PERCENT}}',"""
    """ '{"p3_advisory": {"enabled": false, "percent": 0}}', '{"p3_advisory": {"enabled": false, "percent": 0}}', '{}')"""
)


def engagement(percent: int) -> str:
    """An engagement of p3-off, as a kill records it, whose base says the flag was at ``percent``."""
    return ENGAGEMENT.replace("PERCENT", str(int(percent)))


KILL_ROW = "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0"


@pytest.mark.parametrize("roles", [("security",), ("release", "security")])
def test_a_kill_records_only_the_base_it_replaced(ws8: Cli, roles: tuple[str, ...]) -> None:
    """A security member declares a kill in psql and records an engagement whose base says
    100% (the flag was at 1%): its release would have raised the flag to 100%, past freezes
    and approvals. The database checks every recorded base against the value it replaced
    (schema 26), and since schema 28 the role cannot write the engagement at all: the kill
    in psql is flagctl.kill, which records the true base (the control)."""
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    with member(ws8, *roles) as (_, dsn):
        assert denied(dsn, declared("kill"), KILL_ROW, engagement(100))
        assert denied(dsn, declared("kill"), engagement(100))  # nothing written: the base is what is stored
        assert denied(dsn, declared("kill"), KILL_ROW, engagement(1))  # not even the truth, by hand
        assert not denied(dsn, "SELECT count(*) FROM flagctl.kill('phase3', 'p3-off', 'INC-1')")
    assert ws8.sql("SELECT prior FROM flagctl.engaged_switch") == [
        ({"p3_advisory": {"enabled": True, "percent": 1}},)
    ]
    assert ws8("release", "p3-off", *GO).exit_code == 0
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(True, 1)]


def test_a_second_kill_may_keep_the_first_ones_base(groups: Cli) -> None:
    """Strictest wins: a kill over a flag another kill holds records that kill's base, not
    the killed value — flagctl's own kills of overlapping switches still go through."""
    assert groups("kill", "KS2", *GO).exit_code == 0
    assert groups("kill", "KS5", *GO).exit_code == 0
    assert groups("release", "KS5", *GO).exit_code == 0
    assert groups("release", "KS2", *GO).exit_code == 0
    assert groups("audit", "verify").exit_code == 0


# ---------------------------------------------------------------- finding 12: the sealer


def test_a_held_seal_stops_audit_verify_only_for_the_lock_timeout(ws8: Cli) -> None:
    """A viewer sitting on `flagctl.audit_seal(true, 0)` in an open transaction: verify
    waited until the statement timeout; now it gives up at --lock-timeout, exit 4, naming
    the holder — and passes once the seal is free."""
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    with member(ws8, "viewer") as (_, dsn), psycopg.connect(dsn) as holder:
        holder.execute("SELECT flagctl.audit_seal(true, 0)")
        result = ws8("--lock-timeout", "200ms", "audit", "verify")
        assert result.exit_code == 4, result.stdout + result.stderr
        assert "audit seal" in result.stderr and f"pid {holder.info.backend_pid}" in result.stderr
        holder.rollback()
    assert ws8("audit", "verify").exit_code == 0


def test_skipped_at_commit_seals_are_counted_and_said(ws8: Cli) -> None:
    """While the seal was held, the writers' at-commit seals skipped silently. Now the rows
    they left are counted: db status says so, audit verify says so when it cannot seal, and
    how many it sealed once it can."""
    with member(ws8, "viewer") as (_, dsn), psycopg.connect(dsn) as holder:
        holder.execute("SELECT flagctl.audit_seal(true, 0)")
        assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0  # its seal is skipped
        (left,) = ws8.sql("SELECT count(*) FROM flagctl.audit_unsealed")[0]
        assert left >= 1
        shown = ws8("db", "status", "-o", "json", FLAGCTL_DSN=dsn)  # a viewer may ask
        assert shown.exit_code == 0, shown.stderr
        assert json.loads(shown.stdout)["unsealed"] == left
        assert f"{left} audit rows wait to be sealed" in ws8("db", "status").stdout
        stalled = ws8("--lock-timeout", "200ms", "audit", "verify")
        assert stalled.exit_code == 4 and f"{left} audit rows wait to be sealed" in stalled.stderr
        holder.rollback()
    verified = ws8("audit", "verify", "-o", "json")
    assert verified.exit_code == 0, verified.stdout
    assert json.loads(verified.stdout)["sealed_now"] == left
    assert "wait to be sealed" not in ws8("db", "status").stdout


# ---------------------------------------------------------------- finding 10: requests

TRUST_CHANGE = (
    '[{"flag": "new_trust_algorithm", "scope": "global", "before": {"enabled": false, "percent": 0},'
    ' "after": {"enabled": true, "percent": 100}}]'
)
ASK = (
    'SELECT flagctl.create_request(\'orca\', \'stage.set\', \'{"kind": "stage.set", "ladder": "trust",'
    " \"stage\": \"full\", \"force\": true}', 'why', 'looks fine', 'alice', %s)"
)


def test_a_request_is_what_the_database_says_it_is(orca: Cli) -> None:
    """A release member wrote requests directly: a harmless summary over a spec to 100%
    forced, expiring in ten years. Now only the function writes them, summarising the exact
    changes, expiring by the published approvals (24h)."""
    with member(orca, "release") as (_, alice):
        assert denied(
            alice,
            "INSERT INTO flagctl.requests (system, action, summary, spec, why, reason, expires_at)"
            " VALUES ('orca', 'stage.set', 'canary (on 5%) → off', '{}', 'w', 'r', now() + interval '10 years')",
        )
        with psycopg.connect(alice, autocommit=True) as conn:
            (made,) = conn.execute(ASK, (TRUST_CHANGE,)).fetchone()
        summary, hours = orca.sql(
            "SELECT summary, extract(epoch FROM expires_at - requested_at) / 3600 FROM flagctl.requests WHERE id = %s",
            (made,),
        )[0]
        assert "new_trust_algorithm at global" in summary and '"percent": 100' in summary
        assert round(hours) == 24
        assert denied(
            alice,
            f"UPDATE flagctl.requests SET expires_at = now() + interval '10 years' WHERE id = {int(made)}",  # noqa: S608
        )


def test_an_approval_applies_only_the_state_it_was_planned_on(orca: Cli) -> None:
    with member(orca, "release") as (_, alice), member(orca, "release") as (_, bob):
        with psycopg.connect(alice, autocommit=True) as conn:
            (made,) = conn.execute(ASK, (TRUST_CHANGE,)).fetchone()
        orca.sql(
            "UPDATE feature_flags SET enabled = true, rollout_percentage = 10 WHERE flag_name = 'new_trust_algorithm'"
        )
        with (
            pytest.raises(psycopg.errors.RaiseException, match="second person"),
            psycopg.connect(bob) as conn,
        ):
            conn.execute(declared("stage.set"))
            conn.execute("SELECT flagctl.approve_request(%s, 'orca', 'bob')", (made,))
            conn.execute(TRUST_TO_100_FN)  # from 10%, not the 0% the request was planned on
        orca.sql(
            "UPDATE feature_flags SET enabled = false, rollout_percentage = 0 WHERE flag_name = 'new_trust_algorithm'"
        )
        with psycopg.connect(bob) as conn:  # the state it was planned on: the approval applies it
            conn.execute(declared("stage.set"))
            conn.execute("SELECT flagctl.approve_request(%s, 'orca', 'bob')", (made,))
            conn.execute(TRUST_TO_100_FN)
    assert orca.sql(
        "SELECT rollout_percentage FROM feature_flags WHERE flag_name = 'new_trust_algorithm'"
    ) == [(100,)]


# ---------------------------------------------------------------- freezes and exemptions

EXEMPT = (
    "INSERT INTO flagctl.exemption (system, flag, scope, effect, note, actor)"
    " VALUES ('phase3', 'p3_advisory', 'tenant:acme', 'allow', 'n', 'mallory')"
)
FREEZE = "INSERT INTO flagctl.freeze (system, reason, actor) VALUES ('phase3', 'r', 'mallory')"


def test_exemptions_change_only_as_declared(ws8: Cli) -> None:
    """A release member wrote exemptions in psql undeclared, under any actor: now only in a
    change declared as `exempt`, and the actor is the declaration's."""
    exempt = "SELECT flagctl.record_exemption('phase3', 'p3_advisory', 'tenant:acme', 'allow', 'n')"
    with member(ws8, "release") as (_, dsn):
        assert denied(dsn, EXEMPT)
        assert denied(dsn, declared("exempt"), EXEMPT)  # by hand: no privilege (schema 30)
        assert denied(dsn, exempt)
        assert denied(dsn, declared("set"), exempt)
        assert not denied(dsn, declared("exempt"), exempt)
        assert denied(dsn, "DELETE FROM flagctl.exemption")
    assert ws8.sql("SELECT effect, actor FROM flagctl.exemption") == [("allow", "bob")]


def test_a_freeze_is_only_set_or_cleared_as_declared(ws8: Cli) -> None:
    """An ops member could insert freezes undeclared under any actor, and rewrite or delete
    them in psql (lift one's end, change its reason): now only set or cleared, as declared."""
    assert ws8("freeze", "set", *GO).exit_code == 0
    with member(ws8, "ops") as (_, dsn):
        assert denied(dsn, FREEZE)
        assert denied(dsn, declared("freeze.clear"), "UPDATE flagctl.freeze SET reason = 'nothing to see'")
        assert denied(
            dsn, declared("freeze.set"), "UPDATE flagctl.freeze SET until = now() - interval '1 day'"
        )
        assert denied(dsn, declared("freeze.clear"), "DELETE FROM flagctl.freeze")
        assert denied(dsn, declared("freeze.set"), FREEZE)  # by hand: no privilege (schema 30)
        assert denied(dsn, "SELECT flagctl.freeze_add('phase3', NULL, NULL)")
        assert denied(dsn, declared("freeze.clear"), "SELECT flagctl.freeze_add('phase3', NULL, NULL)")
        assert not denied(dsn, declared("freeze.set"), "SELECT flagctl.freeze_add('phase3', NULL, NULL)")
    assert ws8.sql("SELECT reason, actor FROM flagctl.freeze ORDER BY id") == [
        ("INC-17", ws8.sql("SELECT actor FROM flagctl.freeze ORDER BY id LIMIT 1")[0][0]),
        ("approved request 1", "bob"),
    ]
    assert ws8("freeze", "clear", *GO).exit_code == 0
    assert ws8.sql("SELECT count(*) FROM flagctl.freeze WHERE cleared_at IS NULL") == [(0,)]


# ---------------------------------------------------------------- the review of the guard

WIDEN_P3 = (
    "UPDATE p3_feature_state SET enabled = true, rollout_percent = 100 WHERE feature_name = 'p3_advisory'"
)


@pytest.mark.parametrize(
    ("roles", "action"),
    [
        (("security",), "kill.refused"),
        (("security",), "release.refused"),
        (("security",), "drill.kill.refused"),
        (("security",), "review"),
        (("ops",), "freeze.set"),
        (("ops",), "review"),
        (("release",), "stage.set.refused"),
    ],
)
def test_a_declaration_that_writes_no_flag_cannot_carry_a_flag_write(
    ws8: Cli, roles: tuple[str, ...], action: str
) -> None:
    """A security member declared `kill.refused` (or `review`: any writing role may) and set
    the flag to 100%: the guard kept its limits for `kill` and `release` only. A refusal, a
    review, a freeze or a lock breaker's declaration now writes no flag value at all."""
    with member(ws8, *roles) as (_, dsn):
        assert denied(dsn, declared(action), WIDEN_P3)
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]


def test_an_event_record_cannot_pass_for_the_base_a_kill_replaced(groups: Cli) -> None:
    """A security member wrote an audit event that looked like the flag's own row with no
    value before it, and recorded "no row" as a kill's base; its release then deleted the
    stored `false` and the default `true` came back, past a freeze."""
    assert groups("set", "groups_create", "off", *GO).exit_code == 0
    assert groups("freeze", "set", *GO).exit_code == 0
    assert groups.sql(
        "SELECT value FROM flagctl.flag_state WHERE flag = 'groups_create' AND scope = 'global'"
    ) == [(False,)]
    engage = (
        "INSERT INTO flagctl.engaged_switch (system, switch, scope, level, actor, reason, prior, applied, settings, below)"
        " VALUES ('groups', 'KS2', 'global', 2, 'm', 'r', '{\"groups_create\": BASE}', '{\"groups_create\": false}',"
        " '{\"groups_create\": false}', '{}')"
    )
    event = "SELECT flagctl.audit_event('kill', 'groups', 'groups_create', 'flagctl.flag_state', '{}')"
    with member(groups, "security") as (_, dsn):
        assert denied(dsn, declared("kill"), event, engage.replace("BASE", "null"))
        assert denied(dsn, declared("kill"), event, engage.replace("BASE", "false"))  # by hand: no privilege
        assert not denied(dsn, "SELECT count(*) FROM flagctl.kill('groups', 'KS2', 'INC-1')")  # the kill
    assert groups.sql("SELECT prior FROM flagctl.engaged_switch WHERE switch = 'KS2'") == [
        ({"groups_create": False},)
    ]
    assert groups("release", "KS2", *GO).exit_code == 0
    assert groups.sql(
        "SELECT value FROM flagctl.flag_state WHERE flag = 'groups_create' AND scope = 'global'"
    ) == [(False,)]


@pytest.mark.parametrize(("roles", "action"), [(("release",), "set"), (("security",), "kill")])
def test_a_value_not_of_its_types_shape_counts_as_the_widest(
    groups: Cli, roles: tuple[str, ...], action: str
) -> None:
    """`{"enabled": "false", "percent": 100}`: the database read the string as false (no
    exposure), flagctl's readers as enabled at 100%. Under a freeze a release member (set) or
    a security member (kill) stored it. A malformed value now counts as the widest."""
    assert groups("stage", "set", "groups", "stage0-dogfood", *GO).exit_code == 0
    assert groups("freeze", "set", *GO).exit_code == 0
    assert groups.sql("SELECT count(*) FROM flagctl.flag_state WHERE flag = 'F1' AND scope = 'global'") == [
        (1,)
    ]
    forged = (
        """UPDATE flagctl.flag_state SET value = '{"enabled": "false", "percent": 100, "internal": true}'"""
        " WHERE system = 'groups' AND flag = 'F1' AND scope = 'global'"
    )
    with member(groups, *roles) as (_, dsn):
        try:
            refused = denied(dsn, declared(action), forged)
        except psycopg.errors.RaiseException as frozen:  # the freeze's own refusal
            refused = "frozen" in str(frozen)
        assert refused


# ---------------------------------------------------------------- flagctl's records (schema 30)


def test_a_review_is_recorded_only_as_its_own_reviewer(ws8: Cli) -> None:
    """A member held INSERT on flagctl.reviews: in psql it recorded a post-action review as
    `reviewed_by = 'bob'`. Now a review is flagctl.record_review's, inside a declared
    `review`, by the session's own user."""
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    (seq,) = ws8.sql("SELECT max(seq) FROM flagctl.audit")[0]
    forged = f"INSERT INTO flagctl.reviews (audit_seq, system, reviewed_by, note) VALUES ({int(seq)}, 'phase3', 'bob', 'x')"  # noqa: S608
    review = f"SELECT flagctl.record_review({seq}, 'phase3', 'looked at it')"
    with member(ws8, "security") as (name, dsn):
        assert denied(dsn, forged)
        assert denied(dsn, declared("review"), forged)
        assert denied(dsn, review)  # undeclared
        assert denied(dsn, declared("kill"), review)  # declared as something else
        assert not denied(dsn, declared("review"), review)
    assert ws8.sql("SELECT reviewed_by, actor, note FROM flagctl.reviews") == [(name, "bob", "looked at it")]


def test_a_drill_record_is_written_only_by_the_drill_that_ran(ws8: Cli) -> None:
    """A member held INSERT and UPDATE on flagctl.drills: it could record a passed drill it
    never ran, under any db_user, or rewrite another's verdict. Now drills start and finish
    through flagctl.drill_start / drill_finish: run by the session's own user, finished
    only by it, once."""
    forged = (
        "INSERT INTO flagctl.drills (system, kind, subject, reason, verdict, db_user)"
        " VALUES ('phase3', 'kill', 'p3-off', 'r', 'passed', 'alice')"
    )
    start = "SELECT id FROM flagctl.drill_start('phase3', 'kill', 'p3-off', 'global', 'me', 'drill')"
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0  # something for the drill to kill
    with (
        member(ws8, "security") as (alice, a),
        member(ws8, "security") as (_, b),
        psycopg.connect(a, autocommit=True) as conn,
    ):
        assert denied(a, forged)
        (drill,) = conn.execute(start).fetchone()
        finish = f"SELECT flagctl.drill_finish({drill}, 'passed', '[]', true, 'ok')"
        assert denied(b, finish)  # not theirs
        assert denied(a, f"UPDATE flagctl.drills SET verdict = 'passed' WHERE id = {int(drill)}")  # noqa: S608
        assert denied(a, finish)  # nothing done: it cannot have passed
        with conn.transaction():  # the drill's kill
            conn.execute("SELECT flagctl.begin_change('drill.kill', 'me', 'drill', NULL, NULL)")
            conn.execute("SELECT count(*) FROM flagctl.kill('phase3', 'p3-off', 'drill')")
        assert not denied(a, finish)
        assert denied(a, finish)  # finished already
    assert ws8.sql("SELECT db_user, verdict FROM flagctl.drills") == [(alice, "passed")]
    with member(ws8, "release") as (_, dsn):  # a kill drill needs the security role
        assert denied(dsn, start)


def test_only_a_sealed_head_is_signed(ws8: Cli) -> None:
    """A member held INSERT on flagctl.audit_signature: a row for a position not sealed yet
    (ON CONFLICT DO NOTHING) blocked the real signature of that position for good."""
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    ws8.sql("SELECT flagctl.audit_seal(true, 0)")
    pos, head = ws8.sql("SELECT pos, hash FROM flagctl.audit_seal ORDER BY pos DESC LIMIT 1")[0]
    with member(ws8, "viewer") as (_, dsn):  # a viewer only reads: no signature, not even of the head
        assert denied(dsn, f"SELECT flagctl.audit_sign({int(pos)}, '{head}', 'junk', 'k')")
    with member(ws8, "release") as (_, dsn):
        assert denied(
            dsn,
            f"INSERT INTO flagctl.audit_signature (pos, hash, mac, key_id) VALUES ({int(pos) + 1}, 'x', 'y', 'k')",  # noqa: S608
        )
        with (
            pytest.raises(psycopg.errors.InvalidParameterValue, match="only a sealed head"),
            psycopg.connect(dsn) as conn,
        ):
            conn.execute(f"SELECT flagctl.audit_sign({pos + 1}, 'x', 'y', 'k')")
        assert not denied(dsn, f"SELECT flagctl.audit_sign({pos}, '{head}', 'mac', 'k')")


@pytest.mark.parametrize(
    "forged",
    [
        "INSERT INTO flagctl.safe_point (system, name, kind, state, actor) VALUES ('phase3', 'x', 'profile', '{}', 'bob')",
        "INSERT INTO flagctl.rollback_state (system, state, since) VALUES ('phase3', 'ROLLED_BACK', now())",
        "INSERT INTO flagctl.proof_baseline (system, window_seconds, rates) VALUES ('phase3', 1, '{}')",
        "SELECT flagctl.record_safe_point('phase3', 'x', 'profile', '{}')",
        "SELECT flagctl.store_rollback_state('phase3', 'ROLLED_BACK', now(), NULL, '{}')",
    ],
)
def test_safe_points_and_machine_state_are_written_only_through_declared_changes(
    ws8: Cli, forged: str
) -> None:
    """A release member wrote any safe point (under any actor), the rollback machine's state
    and the proofs' baseline by hand. Now only flagctl's functions write them, inside the
    change they belong to (a profile or snapshot, the rollback machine)."""
    with member(ws8, "release") as (_, dsn):
        assert denied(dsn, forged)
        assert denied(dsn, declared("stage.set"), forged)
    assert ws8.sql("SELECT count(*) FROM flagctl.safe_point") == [(0,)]


@pytest.mark.parametrize("example", ["ws8", "orca", "groups"])
def test_no_flagctl_role_holds_a_write_on_flagctls_tables_or_a_bound_table(
    request: pytest.FixtureRequest, example: str
) -> None:
    """Every privileged write is one of flagctl's functions: the catalogue holds no INSERT,
    UPDATE (not even of one column), DELETE or TRUNCATE for any role `flagctl db grant`
    gives, directly or through the roles it holds, on flagctl's tables or the bound ones."""
    cli: Cli = request.getfixturevalue(example)
    held = cli.sql(
        """
        SELECT r.rolname, c.oid::regclass::text, p.privilege
          FROM pg_roles r, pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
               unnest(ARRAY['INSERT', 'UPDATE', 'DELETE', 'TRUNCATE']) AS p(privilege)
         WHERE r.rolname = ANY(ARRAY['flagctl_viewer', 'flagctl_release', 'flagctl_security', 'flagctl_ops',
                                     'flagctl_admin'])
           AND c.relkind IN ('r', 'p', 'v')
           AND (n.nspname = 'flagctl'
                OR c.oid IN (SELECT format('%I.%I', b.table_schema, b.table_name)::regclass FROM flagctl.binding b))
           AND (has_table_privilege(r.oid, c.oid, p.privilege)
                OR (p.privilege IN ('INSERT', 'UPDATE') AND has_any_column_privilege(r.oid, c.oid, p.privilege)))
         ORDER BY 1, 2, 3
        """
    )
    assert held == []
    assert cli.sql("SELECT count(*) FROM flagctl.binding") != [(0,)] or example == "groups"
