"""A request id per command: it ties a command's audit rows together and, given by the
caller, makes a retry idempotent — a relative move is never applied twice."""

from __future__ import annotations

import json

import psycopg

from tests.conftest import Cli

GO = ("-r", "deploy 841", "-y")


def stage_of(groups: Cli) -> str:
    return json.loads(groups("stage", "show", "groups", "-o", "json").stdout)["stage"]  # type: ignore[no-any-return]


def test_a_retried_stage_next_with_the_same_request_id_moves_once(groups: Cli) -> None:
    """Before, a script that re-sent `stage next` after losing the answer moved the ladder
    two stages."""
    first = groups("--request-id", "deploy-841", "stage", "next", "groups", "--force", *GO)
    assert first.exit_code == 0, first.stderr
    moved_to = stage_of(groups)
    retry = groups("--request-id", "deploy-841", "stage", "next", "groups", "--force", *GO)
    assert retry.exit_code == 0, retry.stderr
    assert "request deploy-841 was already applied" in retry.stdout
    assert stage_of(groups) == moved_to
    other = groups("--request-id", "deploy-842", "stage", "next", "groups", "--force", *GO)
    assert other.exit_code == 0 and stage_of(groups) != moved_to


def test_every_row_of_one_command_carries_its_request_id(groups: Cli) -> None:
    assert groups("kill", "KS5", *GO).exit_code == 0
    rows = json.loads(groups("audit", "log", "-o", "json").stdout)["rows"]
    rows = [r for r in rows if r["action"] == "kill"]  # not db init's publishing of the manifest
    ids = {r["request_id"] for r in rows}
    assert len(ids) == 1 and None not in ids and len(rows) > 3  # a fresh UUID, shared by every row
    assert groups("--request-id", "inc-7", "kill", "KS5", *GO).exit_code == 0  # a kill re-runs


def test_a_kill_always_runs_again_even_with_a_used_request_id(ws8: Cli) -> None:
    assert ws8("--request-id", "inc-9", "kill", "p3-off", *GO).exit_code == 0
    ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 100")
    again = ws8("--request-id", "inc-9", "kill", "p3-off", *GO)
    assert again.exit_code == 0 and "re-assert" in again.stdout, again.stdout
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]


def test_an_untrusted_session_cannot_use_up_a_request_id(ws8: Cli) -> None:
    """An application role declaring flagctl.request_id does not make a later flagctl
    command with that id look done (it is kept as a claim)."""
    import uuid

    role = f"app_{uuid.uuid4().hex[:8]}"
    ws8.sql(f"CREATE ROLE {role} LOGIN; GRANT SELECT, UPDATE ON p3_feature_state TO {role}")
    try:
        with psycopg.connect(ws8.dsn.replace("user=postgres", f"user={role}")) as app:
            app.execute("SELECT set_config('flagctl.request_id', 'rollout-5', true)")
            app.execute("UPDATE p3_feature_state SET rollout_percent = 1")
    finally:
        ws8.sql(f"DROP OWNED BY {role}; DROP ROLE {role}")
    row = json.loads(ws8("audit", "log", "-o", "json").stdout)["rows"][0]
    assert row["request_id"] is None and row["claimed"] == {"request_id": "rollout-5"}
    moved = ws8("--request-id", "rollout-5", "stage", "set", "p3", "canary", *GO)
    assert moved.exit_code == 0 and "already applied" not in moved.stdout, moved.stdout


def test_a_request_id_must_be_plain(ws8: Cli) -> None:
    for bad in ("", "a\nb", "x" * 201):
        result = ws8("--request-id", bad, "kill", "p3-off", *GO)
        assert result.exit_code == 2 and "--request-id" in result.stderr
    assert ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action <> 'manifest.publish'") == [(0,)]
