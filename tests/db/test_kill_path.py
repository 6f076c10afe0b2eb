"""The kill gets through whatever else is happening in the database."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from tests.conftest import Cli

GO = ("-r", "INC-1", "-y")
OTHER_WRITE = "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('billing', 'invoices_v2', 'global', 'true')"


def test_an_open_transaction_that_wrote_an_audited_row_does_not_block_a_kill(groups: Cli) -> None:
    """Until schema version 6 every audited write held one chain-head row lock until its
    transaction ended, so this kill waited out its lock_timeout and failed (exit 4)."""
    with psycopg.connect(groups.dsn, application_name="billing-deploy") as other:  # an open transaction
        other.execute(OTHER_WRITE)
        result = groups("--lock-timeout", "2s", "kill", "KS5", *GO)
        assert result.exit_code == 0, result.stderr
        assert groups.sql("SELECT value FROM flagctl.flag_state WHERE system = 'groups' AND flag = 'F5'") == [
            (True,)
        ]
        other.commit()
    # Both transactions' rows end up in one intact chain.
    verify = groups("audit", "verify")
    assert verify.exit_code == 0, verify.stderr
    assert groups.sql("SELECT count(*) FROM flagctl.audit_seal") == groups.sql(
        "SELECT count(*) FROM flagctl.audit"
    )


def test_a_kill_seals_its_own_rows_at_commit(groups: Cli) -> None:
    assert groups("kill", "KS5", *GO).exit_code == 0
    assert groups.sql("SELECT count(*) FROM flagctl.audit_unsealed") == [(0,)]
    sealed = groups.sql(
        "SELECT count(*) FROM flagctl.audit a JOIN flagctl.audit_seal s USING (seq) WHERE a.action = 'kill'"
    )
    assert sealed[0][0] >= 2  # the flags it changed and the engagement record


def test_a_repeatable_read_writer_is_never_failed_by_sealing(groups: Cli) -> None:
    with psycopg.connect(groups.dsn) as writer:
        writer.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        writer.execute(OTHER_WRITE)
        assert groups("kill", "KS5", *GO).exit_code == 0  # commits and seals meanwhile
        writer.commit()  # its rows stay for the next sealer instead of risking a conflict
    assert groups.sql("SELECT count(*) FROM flagctl.audit_unsealed") == [(1,)]
    assert groups("audit", "verify").exit_code == 0
    assert groups.sql("SELECT count(*) FROM flagctl.audit_unsealed") == [(0,)]


def test_an_upgraded_trail_keeps_its_history_in_the_new_chain(groups: Cli) -> None:
    """A database written under schema version 5 (chain-head lock) upgrades to version 6:
    the old rows are sealed in order, verify passes, and a rewrite of an old row is caught."""
    from flagctl.store import schema

    groups.sql("DROP SCHEMA flagctl CASCADE")
    with psycopg.connect(groups.dsn) as conn:
        schema.init(conn, None, upto=5)  # the schema an install of version 5 had
    groups.sql(  # written by an older flagctl
        "INSERT INTO flagctl.flag_state (system, flag, scope, value)"
        " VALUES ('groups', 'F2', 'global', 'true'), ('groups', 'F3', 'global', 'true')"
    )
    assert groups.sql("SELECT count(*) FROM flagctl.audit") == [(2,)]
    assert groups("db", "init").exit_code == 0  # version 6: no more chain head
    assert groups.sql("SELECT to_regclass('flagctl.audit_head')") == [(None,)]
    assert groups("kill", "KS5", *GO).exit_code == 0
    assert groups("audit", "verify").exit_code == 0
    groups.sql(
        "ALTER TABLE flagctl.audit DISABLE TRIGGER audit_append_only;"
        " UPDATE flagctl.audit SET reason = 'nothing to see' WHERE seq = 1;"
        " ALTER TABLE flagctl.audit ENABLE TRIGGER audit_append_only"
    )
    broken = groups("audit", "verify")
    assert broken.exit_code == 1 and "row 1: contents changed" in broken.stderr


def test_lock_timeout_zero_means_do_not_wait(ws8: Cli) -> None:
    """PostgreSQL reads lock_timeout=0 as "wait forever"; flagctl's 0 means "do not wait"."""
    import os
    import subprocess
    import sys

    flagctl = os.path.join(os.path.dirname(sys.executable), "flagctl")
    env = {**os.environ, "FLAGCTL_DSN": ws8.dsn, "FLAGCTL_MANIFEST": str(ws8.manifest)}
    with psycopg.connect(ws8.dsn, application_name="deploy-script") as holder:
        holder.execute("SELECT * FROM p3_feature_state FOR UPDATE")
        result = subprocess.run(
            [flagctl, "--lock-timeout", "0s", "kill", "p3-off", *GO],
            env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=30,
        )  # fmt: skip
        assert result.returncode == 4, result.stderr
        assert "application_name deploy-script" in result.stderr


def test_kill_again_reasserts_the_off_values_after_an_out_of_band_change(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    ws8.sql("UPDATE p3_feature_state SET enabled = true, rollout_percent = 100")  # by hand, around flagctl
    again = ws8("kill", "p3-off", *GO)
    assert again.exit_code == 0, again.stderr
    assert "nothing to do" not in again.stdout and "re-assert" in again.stdout
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    assert ws8("release", "p3-off", "--force", *GO).exit_code == 0
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [
        (True, 1)
    ]  # the values from before the kill


SLOW_GATE = "  slow_gate: {sql: 'select 0 from (select pg_advisory_xact_lock_shared(4242)) held', max: 0, timeout: 60s}\n"
GATED = (
    (Path(__file__).resolve().parents[2] / "flagctl" / "examples" / "ws8" / "flagctl.yaml")
    .read_text()
    .replace(
        "require: [no_contract_violations, budget_within_bounds, cache_hit_rate_stable]",
        "require: [no_contract_violations, slow_gate]",
    )
    .replace("\nguardrails:\n", "\nguardrails:\n" + SLOW_GATE)
)


def test_a_slow_guardrail_does_not_hold_the_flag_lock_against_a_kill(make_cli, ws8_db: str) -> None:  # type: ignore[no-untyped-def]
    """stage set used to run its guardrails with the flag locked: a kill waited behind a slow
    guardrail query. Now guardrails run before the lock is taken, and the move is re-checked
    against the state it was planned on — which the kill has changed meanwhile."""
    import os
    import subprocess
    import sys

    from tests.db.test_concurrency import wait_for_waiters

    cli = make_cli(GATED)
    cli.dsn = ws8_db
    assert cli("db", "init").exit_code == 0
    flagctl = os.path.join(os.path.dirname(sys.executable), "flagctl")
    env = {**os.environ, "FLAGCTL_DSN": cli.dsn, "FLAGCTL_MANIFEST": str(cli.manifest)}
    with psycopg.connect(cli.dsn) as gate:
        gate.execute("SELECT pg_advisory_xact_lock(4242)")  # the guardrail query now waits on this
        mover = subprocess.Popen(
            [flagctl, "stage", "set", "p3", "canary", "-r", "rollout", "-y"],
            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            wait_for_waiters(cli, 1)  # the stage move is inside its slow guardrail
            killed = cli("--lock-timeout", "2s", "kill", "p3-off", *GO)
            assert killed.exit_code == 0, killed.stderr
        finally:
            gate.rollback()  # the guardrail finishes
        _, err = mover.communicate(timeout=60)
    assert mover.returncode in (1, 4), err  # refused: the kill now holds the flag (or the state moved)
    assert cli.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]


def tamper(cli: Cli, statements: str) -> None:
    """What a superuser can do: switch the guards off, change the trail, switch them on."""
    cli.sql(
        "ALTER TABLE flagctl.audit DISABLE TRIGGER audit_append_only;"
        " ALTER TABLE flagctl.audit_seal DISABLE TRIGGER audit_seal_append_only;"
        + statements
        + " ALTER TABLE flagctl.audit ENABLE TRIGGER audit_append_only;"
        " ALTER TABLE flagctl.audit_seal ENABLE TRIGGER audit_seal_append_only"
    )


def test_a_checkpoint_kept_outside_finds_a_trimmed_tail(groups: Cli) -> None:
    assert groups("set", "groups_send", "off", *GO).exit_code == 0
    assert groups("kill", "KS5", *GO).exit_code == 0
    token = groups("audit", "checkpoint").stdout.strip()
    kept = groups.sql("SELECT min(seq) FROM flagctl.audit WHERE action = 'kill'")[0][0]
    trim = (
        f" DELETE FROM flagctl.audit_seal WHERE seq >= {kept}; DELETE FROM flagctl.audit WHERE seq >= {kept};"  # noqa: S608
    )
    tamper(groups, trim)
    problems = json.loads(groups("audit", "verify", "-o", "json").stdout)["problems"]
    assert problems and all(p.startswith("drift:") for p in problems)  # the chain left is consistent;
    # only the values the cut rows recorded give it away — and the checkpoint does directly:
    result = groups("audit", "verify", "--against", token)
    assert result.exit_code == 1 and "cut back" in result.stderr


def test_a_checkpoint_kept_outside_finds_a_recomputed_chain(groups: Cli, tmp_path) -> None:  # type: ignore[no-untyped-def]
    assert groups("set", "groups_send", "off", *GO).exit_code == 0
    assert groups("set", "groups_create", "off", *GO).exit_code == 0
    saved = tmp_path / "checkpoint.json"
    assert groups("audit", "checkpoint", "--file", str(saved)).exit_code == 0
    tamper(
        groups,
        " UPDATE flagctl.audit SET reason = 'routine' WHERE seq = 1;"
        " UPDATE flagctl.audit a SET hash = flagctl.audit_digest(a) WHERE seq = 1;"
        " DELETE FROM flagctl.audit_seal; INSERT INTO flagctl.audit_unsealed SELECT seq FROM flagctl.audit;"
        " SELECT flagctl.audit_seal(true);",
    )
    assert groups("audit", "verify").exit_code == 0  # recomputed: consistent in itself
    result = groups("audit", "verify", "--against", str(saved))
    assert result.exit_code == 1 and "rewritten" in result.stderr


def test_a_checkpoint_that_is_not_one_is_a_usage_error(groups: Cli) -> None:
    groups("set", "groups_send", "off", *GO)
    result = groups("audit", "verify", "--against", "12:nothex")
    assert result.exit_code == 2 and "POS:HASH" in result.stderr


def test_a_role_with_usage_on_the_schema_cannot_forge_an_audit_row(groups: Cli) -> None:
    import uuid

    role = f"app_{uuid.uuid4().hex[:8]}"
    groups.sql(f"CREATE ROLE {role} LOGIN; GRANT USAGE ON SCHEMA flagctl TO {role}")
    try:
        app_dsn = groups.dsn.replace("user=postgres", f"user={role}")
        with (
            psycopg.connect(app_dsn, autocommit=True) as app,
            pytest.raises(psycopg.errors.InsufficientPrivilege),
        ):
            app.execute("SELECT flagctl.audit_event('kill', 'groups', NULL, 'kill_switch:KS5', '{}'::jsonb)")
        assert groups.sql("SELECT count(*) FROM flagctl.audit WHERE action <> 'manifest.publish'") == [(0,)]
    finally:
        groups.sql(f"DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_change_around_the_audit_trigger_shows_as_drift(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    assert ws8("audit", "verify").exit_code == 0
    ws8.sql(  # a superuser switches the triggers off for the session: no audit row
        "SET session_replication_role = replica;"
        " UPDATE p3_feature_state SET enabled = true, rollout_percent = 100;"
        " SET session_replication_role = origin"
    )
    verify = ws8("audit", "verify")
    assert verify.exit_code == 1
    assert "drift: p3_advisory (global) is enabled=true percent=100" in verify.stderr
    drifted = json.loads(ws8("status", "-o", "json").stdout)["drift"]
    assert [(d["flag"], d["live"], d["audited"]) for d in drifted] == [
        ("p3_advisory", {"enabled": True, "percent": 100}, {"enabled": True, "percent": 1})
    ]
    killed = ws8("kill", "p3-off", *GO)  # the kill writes its values regardless, and says what it found
    assert killed.exit_code == 0, killed.stderr
    assert "drift before the kill: p3_advisory (global) is enabled=true percent=100" in killed.stderr
    assert ws8("audit", "verify").exit_code == 0
    again = ws8("kill", "p3-off", *GO)
    assert "drift" not in again.stderr


def test_a_kill_reports_drift_only_for_its_own_flags_and_never_its_own_rows(groups: Cli) -> None:
    groups.sql(
        "SET session_replication_role = replica;"
        " INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('groups', 'F4', 'global', 'true');"
        " SET session_replication_role = origin"
    )
    killed = groups("kill", "KS2", *GO)  # groups_create only: F4's drift is not this kill's business
    assert killed.exit_code == 0 and "drift" not in killed.stderr, killed.stderr
    killed = groups("kill", "KS5", *GO)
    assert killed.exit_code == 0 and "drift" not in killed.stderr, killed.stderr  # F4 is not KS5's either


def test_truncating_a_bound_table_or_flagctls_table_leaves_a_trace(ws8: Cli, groups: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8.sql("TRUNCATE p3_feature_state")
    assert ws8.sql("SELECT action, flag, after FROM flagctl.audit ORDER BY seq DESC LIMIT 1") == [
        ("sql.truncate", "p3_advisory", None)
    ]
    groups("set", "groups_send", "off", *GO)
    groups.sql("TRUNCATE flagctl.flag_state")
    assert groups.sql("SELECT action FROM flagctl.audit ORDER BY seq DESC LIMIT 1") == [("sql.truncate",)]
    drifted = json.loads(groups("status", "-o", "json").stdout)["drift"]
    assert [(d["flag"], d["live"], d["audited"]) for d in drifted] == [("groups_send", None, False)]


def test_release_after_a_global_stage_move_under_a_scoped_kill_is_no_conflict(groups: Cli) -> None:
    """KS4 at one workspace writes an override there; moving the ladder globally afterwards
    is not a change of that override, and the release must not call it one."""
    assert groups("kill", "KS4", "--scope", "workspace:42", *GO).exit_code == 0
    assert groups("stage", "set", "groups", "stage0-dogfood", *GO).exit_code == 0
    released = groups("release", "KS4", "--scope", "workspace:42", *GO)
    assert released.exit_code == 0, released.stderr
    overrides = groups.sql("SELECT count(*) FROM flagctl.flag_state WHERE scope = 'workspace:42'")
    assert overrides == [(0,)]  # the override the kill created is gone: the global stage applies


def test_release_still_refuses_a_real_change_of_a_scoped_kill_override(groups: Cli) -> None:
    assert groups("kill", "KS4", "--scope", "workspace:42", *GO).exit_code == 0
    groups.sql(
        'UPDATE flagctl.flag_state SET value = \'{"enabled": true, "percent": 50}\''
        " WHERE flag = 'F1' AND scope = 'workspace:42'"
    )
    refused = groups("release", "KS4", "--scope", "workspace:42", *GO)
    assert refused.exit_code == 4 and "changed since KS4 was engaged" in refused.stderr


def test_a_lock_conflict_names_the_real_blocker_not_an_innocent_one(ws8: Cli) -> None:
    ws8.sql(
        "INSERT INTO p3_feature_state (feature_name, enabled, rollout_percent) VALUES ('other', false, 0)"
    )
    with (
        psycopg.connect(ws8.dsn, application_name="innocent") as innocent,
        psycopg.connect(ws8.dsn, application_name="real-blocker") as blocker,
    ):
        innocent.execute("UPDATE p3_feature_state SET rollout_percent = 1 WHERE feature_name = 'other'")
        blocker.execute("SELECT * FROM p3_feature_state WHERE feature_name = 'p3_advisory' FOR UPDATE")
        result = ws8("--lock-timeout", "300ms", "kill", "p3-off", *GO)
        assert result.exit_code == 4
        assert "real-blocker" in result.stderr and "innocent" not in result.stderr


def test_a_row_of_flagctls_table_locked_by_hand_is_named_too(groups: Cli) -> None:
    groups("set", "groups_create", "off", *GO)
    groups("set", "groups_create", "on", *GO)  # a stored row the kill will change
    with psycopg.connect(groups.dsn, application_name="hand-edit") as hand:
        hand.execute(
            "UPDATE flagctl.flag_state SET value = 'true' WHERE system = 'groups' AND flag = 'groups_create'"
        )
        result = groups("--lock-timeout", "300ms", "kill", "KS5", *GO)
        assert result.exit_code == 4
        assert "held by pid" in result.stderr and "hand-edit" in result.stderr


def wide_manifest(count: int) -> str:
    flags = "".join(f"  f{i}: {{type: bool, default: true}}\n" for i in range(count))
    sets = ", ".join(f"f{i}: false" for i in range(count))
    return f"version: 1\nsystem: wide\nflags:\n{flags}kill_switches:\n  off: {{level: 5, set: {{{sets}}}}}\n"


def kill_and_release(cli: Cli, count: int) -> None:
    assert cli("db", "init").exit_code == 0
    killed = cli("kill", "off", *GO)
    assert killed.exit_code == 0, killed.stderr
    assert cli.sql("SELECT count(*) FROM flagctl.flag_state WHERE value = 'false'") == [(count,)]
    released = cli("release", "off", *GO)
    assert released.exit_code == 0, released.stderr


def test_a_kill_of_hundreds_of_flags_takes_the_group_lock(make_cli) -> None:  # type: ignore[no-untyped-def]
    kill_and_release(make_cli(wide_manifest(300)), 300)


@pytest.mark.slow
def test_a_kill_of_more_flags_than_the_lock_table_holds(make_cli) -> None:  # type: ignore[no-untyped-def]
    """One advisory lock per flag overflowed PostgreSQL's lock table (max_locks_per_transaction
    64 × 100 connections, with slack: about 13,000 here) and the kill failed with "out of
    shared memory", reported as exit 3. Past 256 flags a kill now takes one lock."""
    kill_and_release(make_cli(wide_manifest(16000)), 16000)


def test_a_connection_lost_while_committing_reports_the_kill_that_did_commit(ws8: Cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The COMMIT went through but its answer never arrived (the connection dropped): the
    kill is in effect, so flagctl must not say exit 3 "retry". It asks the server."""
    from contextlib import contextmanager

    from flagctl.actions import base

    real = base.transaction

    @contextmanager
    def answer_lost_after_commit(conn, audit=None, *args, **kwargs):  # type: ignore[no-untyped-def]
        with real(conn, audit, *args, **kwargs) as tx:
            yield tx
        if audit is not None:  # committed; now the connection is gone before we hear so
            conn.close()
            raise psycopg.OperationalError("server closed the connection unexpectedly")

    ws8("stage", "set", "p3", "canary", *GO)
    monkeypatch.setattr(base, "transaction", answer_lost_after_commit)
    result = ws8("kill", "p3-off", *GO)
    monkeypatch.undo()
    assert result.exit_code == 0, result.stderr
    assert "did commit" in result.stderr and "applied" in result.stdout
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
