"""Faults in the middle of a kill: the server crashes while the kill waits, the backend is
terminated while the kill commits. flagctl says what really happened (exit 3 and
"nothing was changed" only when nothing was), and a repeated kill then goes through."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg

from flagctl import local
from tests.conftest import Cli, p3_state, private_ws8, start_private_server
from tests.db.test_concurrency import spawn, wait_for_waiters

GO = ("-r", "INC-9", "-y")

WAIT_IN_COMMIT = """
DO $$
BEGIN
    FOR i IN 1..400 LOOP
        PERFORM pg_stat_clear_snapshot();
        IF EXISTS (SELECT 1 FROM pg_stat_activity
                    WHERE application_name = 'flagctl' AND query = 'COMMIT' AND state = 'active') THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'expected a flagctl backend in COMMIT';
END
$$
"""


def test_the_server_crashing_while_a_kill_waits_changes_nothing_and_says_so() -> None:
    """pg_ctl stop -m immediate (a crash) while the kill waits for a lock: exit 3, no
    partial write after recovery, and the kill goes through once the server is back."""
    root = Path(tempfile.mkdtemp(prefix="flagctl-fault-"))
    pgdata = root / "pg"
    try:
        cli = private_ws8(pgdata, "fault")
        assert cli("stage", "set", "p3", "canary", *GO).exit_code == 0
        holder = psycopg.connect(cli.dsn)
        try:
            holder.execute("SELECT * FROM p3_feature_state FOR UPDATE")
            kill = spawn(cli, "kill", "p3-off", *GO)
            wait_for_waiters(cli, 1)
            local.stop(pgdata, mode="immediate")
            _, stderr = kill.communicate(timeout=60)
        finally:
            holder.close()
        assert kill.returncode == 3, stderr
        assert "Traceback" not in stderr and "flagctl: error:" in stderr
        start_private_server(pgdata)  # crash recovery
        assert p3_state(cli) == (True, 1)  # still at canary: nothing half-written
        assert cli.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'kill'") == [(0,)]
        assert cli.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
        again = cli("kill", "p3-off", *GO)
        assert again.exit_code == 0, again.stderr
        assert p3_state(cli) == (False, 0)
        assert cli("audit", "verify").exit_code == 0
    finally:
        local.stop(pgdata, mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def test_a_backend_terminated_during_commit_is_reported_as_not_committed(ws8: Cli) -> None:
    """The COMMIT itself is slow (a deferred trigger of the application's) and the backend
    is terminated in it: the transaction rolled back, and flagctl asks the server and says
    exactly that (before: a bare "connection lost; retry"), then a repeat goes through."""
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    ws8.sql(
        "CREATE FUNCTION slow_commit() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN PERFORM pg_sleep(30); RETURN NULL; END $$;"
        " CREATE CONSTRAINT TRIGGER slow_commit AFTER UPDATE ON p3_feature_state"
        " DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit()"
    )
    kill = spawn(ws8, "kill", "p3-off", *GO)
    ws8.sql(WAIT_IN_COMMIT)
    ws8.sql(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = 'flagctl' AND query = 'COMMIT'"
    )
    _, stderr = kill.communicate(timeout=60)
    assert kill.returncode == 3, stderr
    assert "was rolled back, nothing was changed" in stderr, stderr
    assert p3_state(ws8) == (True, 1)
    assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
    ws8.sql("DROP TRIGGER slow_commit ON p3_feature_state")
    again = ws8("kill", "p3-off", *GO)
    assert again.exit_code == 0, again.stderr
    assert p3_state(ws8) == (False, 0)
