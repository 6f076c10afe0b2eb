"""Governance enforced by PostgreSQL: flagctl's roles (refused in psql as in flagctl, exit 5
naming the role and the command that grants it) and freezes."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
import pytest

from tests.conftest import Cli

GO = ("-r", "CHG-12", "-y")


@contextmanager
def user(cli: Cli, *roles: str) -> Iterator[Cli]:
    """A LOGIN user given these flagctl roles with `flagctl db grant` (checks stay the owner's),
    and, as a DBA would, SELECT on the application tables the guardrails read."""
    name = f"u_{uuid.uuid4().hex[:8]}"
    cli.sql(f"CREATE ROLE {name} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    try:
        for role in roles:
            granted = cli("db", "grant", role, name)
            assert granted.exit_code == 0, granted.stderr
        yield Cli(cli.dsn.replace("user=postgres", f"user={name}"), cli.manifest, admin_dsn=cli.dsn)
    finally:
        cli.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")


def psql_refused(as_user: Cli, statement: str) -> bool:
    """Whether the database itself refuses the statement to that user."""
    try:
        with psycopg.connect(as_user.dsn, autocommit=True) as conn:
            conn.execute(statement.encode())
    except psycopg.errors.InsufficientPrivilege:
        return True
    return False


def name_of(as_user: Cli) -> str:
    return as_user.dsn.split("user=")[1].split()[0]


def test_a_user_without_a_role_is_refused_in_flagctl_and_in_psql(groups: Cli) -> None:
    with user(groups) as nobody:
        refused = nobody("kill", "KS5", *GO)
        assert refused.exit_code == 5, refused.stderr
        assert (
            f"needs the flagctl role security; an admin runs: flagctl db grant security {name_of(nobody)}"
            in refused.stderr
        )
        assert psql_refused(nobody, "UPDATE flagctl.flag_state SET value = 'true'")
        assert psql_refused(nobody, "SELECT * FROM flagctl.audit")
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


def test_release_moves_stages_but_cannot_kill(ws8: Cli) -> None:
    with user(ws8, "release") as release:
        moved = release("stage", "set", "p3", "canary", *GO)
        assert moved.exit_code == 0, moved.stderr
        refused = release("kill", "p3-off", *GO)
        assert refused.exit_code == 5 and "flagctl db grant security" in refused.stderr, refused.stderr
        assert psql_refused(
            release, "INSERT INTO flagctl.engaged_switch (system, switch, level, reason, prior, applied)"
            " VALUES ('phase3', 'p3-off', 5, 'x', '{}', '{}')",
        )  # fmt: skip
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(True, 1)]


def test_security_kills_and_releases_but_cannot_move_stages(groups: Cli) -> None:
    with user(groups, "security") as security:
        assert security("kill", "KS5", *GO).exit_code == 0
        assert security("release", "KS5", *GO).exit_code == 0
        refused = security("stage", "set", "groups", "stage0-dogfood", *GO)
        assert refused.exit_code == 5 and "flagctl db grant release" in refused.stderr, refused.stderr
        # the guard holds in psql too, whatever the session declares — unless it says "kill"
        assert psql_refused(
            security,
            "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('groups', 'F2', 'global', 'true')",
        )
    rows = json.loads(groups("audit", "log", "-o", "json").stdout)["rows"]
    assert {r["action"] for r in rows} == {"manifest.publish", "kill", "release"}  # publish: db init


def test_a_viewer_reads_and_changes_nothing(groups: Cli) -> None:
    with user(groups, "viewer") as viewer:
        assert viewer("status").exit_code == 0
        assert viewer("audit", "log").exit_code == 0
        refused = viewer("set", "groups_send", "off", *GO)
        assert refused.exit_code == 5 and "flagctl db grant release" in refused.stderr


def test_ops_freezes_and_admin_does_everything(groups: Cli) -> None:
    with user(groups, "ops") as ops:
        assert ops("freeze", "set", *GO).exit_code == 0
        assert ops("kill", "KS5", *GO).exit_code == 5
    with user(groups, "admin") as admin:
        assert admin("freeze", "clear", *GO).exit_code == 0
        assert admin("kill", "KS2", *GO).exit_code == 0
        assert admin("stage", "set", "groups", "stage0-dogfood", *GO).exit_code == 0


def test_grant_and_revoke(groups: Cli) -> None:
    with user(groups) as someone:
        who = name_of(someone)
        assert "granted" in groups("db", "grant", "release", who).stdout
        assert "already has" in groups("db", "grant", "release", who).stdout
        assert someone("set", "groups_send", "off", *GO).exit_code == 0
        assert "revoked" in groups("db", "revoke", "release", who).stdout
        assert someone("set", "groups_send", "on", *GO).exit_code == 5
    assert groups("db", "grant", "superuser", "postgres").exit_code == 2
    assert groups("db", "grant", "viewer", "no_such_user").exit_code == 2


# ---------------------------------------------------------------- freezes


def test_a_freeze_blocks_widening_and_never_a_kill_release_or_rollback(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    assert ws8("freeze", "set", "--until", "4h", *GO).exit_code == 0
    ws8.clock.advance(hours=1)
    forward = ws8("stage", "set", "p3", "limited", "--force", *GO)
    assert forward.exit_code == 1 and "frozen: p3_advisory at global would widen exposure" in forward.stderr
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    assert ws8("release", "p3-off", *GO).exit_code == 0
    assert ws8("stage", "rollback", "p3", *GO).exit_code == 0  # back to dark: lowering is never frozen
    status = json.loads(ws8("status", "-o", "json").stdout)
    assert [f["scope"] for f in status["freezes"]] == ["global"]
    assert "frozen: freeze" in ws8("status").stdout
    assert ws8("freeze", "clear", *GO).exit_code == 0
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    refusals = ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'stage.set.refused'")
    assert refusals == [(1,)]  # the refusal is on record


def test_a_scoped_freeze_blocks_its_scope_and_global_widening_only(recsys: Cli) -> None:
    assert recsys("freeze", "set", "--scope", "region:eu", *GO).exit_code == 0
    assert recsys("set", "disable_cf", "on", "--scope", "region:eu", *GO).exit_code == 1
    assert recsys("set", "disable_cf", "on", "--scope", "region:us", *GO).exit_code == 0
    assert recsys("set", "disable_cf", "off", "--scope", "region:us", *GO).exit_code == 0  # lowering


def test_an_expired_freeze_blocks_nothing(ws8: Cli) -> None:
    ws8.sql(
        "INSERT INTO flagctl.freeze (system, scope, until, reason) VALUES ('phase3', 'global', now() - interval '1 minute', 'old')"
    )
    assert json.loads(ws8("freeze", "list", "-o", "json").stdout)["freezes"] == []
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0


@pytest.mark.parametrize(
    ("until", "message"), [("yesterday", "neither a time nor a duration"), ("2020-01-01", "already past")]
)
def test_a_bad_until_is_a_usage_error(ws8: Cli, until: str, message: str) -> None:
    result = ws8("freeze", "set", "--until", until, *GO)
    assert result.exit_code == 2 and message in result.stderr
    assert ws8.sql("SELECT count(*) FROM flagctl.freeze") == [(0,)]


# A flag in flagctl's own table, written by an upsert: the guard judged its INSERT before the
# conflict made it an UPDATE, as if the row were not there (before = the default).
OWN = """\
version: 1
system: shop
flags:
  checkout_v2: {type: rollout}
ladders:
  checkout:
    flag: checkout_v2
    stages:
      - {name: dark,   enabled: false, percent: 0}
      - {name: canary, enabled: true,  percent: 1}
      - {name: half,   enabled: true,  percent: 50}
"""


def test_a_backward_move_of_a_flag_in_flagctls_table_is_allowed_under_a_freeze(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(OWN)
    assert cli("db", "init").exit_code == 0
    with user(cli, "release") as alice:
        assert alice("stage", "set", "checkout", "half", "--force", "-r", "go", "-y").exit_code == 0
        assert cli("freeze", "set", "-r", "incident", "-y").exit_code == 0
        back = alice("stage", "set", "checkout", "canary", "-r", "back to 1%", "-y")
        assert back.exit_code == 0, back.stderr  # was refused: "would widen exposure (0 → 1)"
        assert cli.sql("SELECT value->>'percent' FROM flagctl.flag_state WHERE flag = 'checkout_v2'") == [
            ("1",)
        ]
        forward = alice("stage", "set", "checkout", "half", "-r", "again", "-y")
        assert forward.exit_code == 1 and "frozen" in forward.stderr


def test_an_approved_move_of_a_flag_in_flagctls_table_applies(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(OWN + "approvals: {at_or_above: 50}\n")
    assert cli("db", "init").exit_code == 0
    with user(cli, "release") as alice, user(cli, "release") as bob:
        assert alice("stage", "set", "checkout", "canary", "-r", "go", "-y").exit_code == 0
        asked = alice("stage", "next", "checkout", "-r", "to half", "-y")
        assert asked.exit_code == 1 and "waits as request 1" in asked.stderr
        approved = bob("approve", "1", "-r", "looked", "-y")
        assert approved.exit_code == 0, approved.stderr  # was refused: "needs a second person"
        assert cli.sql("SELECT value->>'percent' FROM flagctl.flag_state WHERE flag = 'checkout_v2'") == [
            ("50",)
        ]
