"""Who did it is the database's word, not the session's: attribution from untrusted roles,
and the kill path run by a non-owner operator with only the rights a kill needs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from tests.conftest import Cli

GO = ("-r", "INC-7", "-y")


@contextmanager
def role(cli: Cli, grants: str) -> Iterator[str]:
    """A fresh LOGIN role with these grants ({role} in them is its name), dropped after."""
    name = f"r_{uuid.uuid4().hex[:8]}"
    cli.sql(f"CREATE ROLE {name} LOGIN; " + grants.format(role=name))
    try:
        yield cli.dsn.replace("user=postgres", f"user={name}")
    finally:
        cli.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")


def test_an_application_role_cannot_write_under_another_name(ws8: Cli) -> None:
    """Until schema version 10 the row below was recorded as a kill by alice."""
    with role(ws8, "GRANT SELECT, UPDATE ON p3_feature_state TO {role}") as app_dsn:
        with psycopg.connect(app_dsn) as app:
            app.execute(
                "SELECT set_config('flagctl.actor', 'alice', true), set_config('flagctl.action', 'kill', true)"
            )
            app.execute("SELECT set_config('flagctl.reason', 'INC-1 approved', true)")
            app.execute("UPDATE p3_feature_state SET enabled = true, rollout_percent = 100")
        app_user = app_dsn.split("user=")[1].split()[0]
    rows = json.loads(ws8("audit", "log", "-o", "json").stdout)["rows"]
    row = rows[0]
    assert (row["db_user"], row["actor"], row["action"], row["reason"]) == (
        app_user,
        None,
        "sql.update",
        None,
    )
    assert row["claimed"] == {"actor": "alice", "action": "kill", "reason": "INC-1 approved"}
    table = ws8("audit", "log").stdout
    assert f"{app_user} (claimed: alice)" in table
    assert ws8("audit", "verify").exit_code == 0  # the claim is covered by the digest too


def test_flagctl_as_the_owner_is_still_believed(ws8: Cli) -> None:
    assert ws8("kill", "p3-off", *GO, "--actor", "bob").exit_code == 0
    row = json.loads(ws8("audit", "log", "-o", "json").stdout)["rows"][0]
    assert (row["actor"], row["action"], row["reason"], row["claimed"]) == ("bob", "kill", "INC-7", None)


OPERATOR = "GRANT flagctl_operator TO {role}; GRANT SELECT, UPDATE ON p3_feature_state TO {role}"


def test_the_kill_path_as_a_non_owner_operator(ws8: Cli) -> None:
    """kill, re-kill after an out-of-band change, status, release and verify, as a role that
    owns nothing and has only flagctl_operator and UPDATE on the bound table."""
    with role(ws8, OPERATOR) as dsn:
        oncall = Cli(dsn, ws8.manifest)
        killed = oncall("kill", "p3-off", *GO, "--actor", "carol")
        assert killed.exit_code == 0, killed.stderr
        assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
        ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 100")  # by hand, as the owner
        again = oncall("kill", "p3-off", *GO, "--actor", "carol")
        assert again.exit_code == 0 and "re-assert" in again.stdout, again.stderr
        assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
        status = oncall("status", "-o", "json")
        assert status.exit_code == 0, status.stderr
        released = oncall("release", "p3-off", "--force", *GO, "--actor", "carol")
        assert released.exit_code == 0, released.stderr
        verified = oncall("audit", "verify")
        assert verified.exit_code == 0, verified.stderr
        rows = json.loads(oncall("audit", "log", "-o", "json").stdout)["rows"]
        mine = [r for r in rows if r["db_user"] != "postgres"]
        assert mine and all(r["actor"] == "carol" and r["claimed"] is None for r in mine)


def test_a_session_without_the_operator_role_cannot_kill(ws8: Cli) -> None:
    before = ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state")
    with role(
        ws8, "GRANT USAGE ON SCHEMA flagctl TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA flagctl TO {role}"
    ) as dsn:
        refused = Cli(dsn, ws8.manifest)("kill", "p3-off", *GO)
    assert refused.exit_code == 5, refused.stderr
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == before
    assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
