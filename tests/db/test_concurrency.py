"""Row locks with a bounded wait: blocked commands exit 4 naming the blocker; racing
commands from separate processes serialize and re-validate, with no lost update."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from tests.conftest import WS8_MANIFEST, Cli, p3_state

FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def spawn(cli: Cli, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "FLAGCTL_DSN": cli.dsn, "FLAGCTL_MANIFEST": str(WS8_MANIFEST)}
    return subprocess.Popen(
        [FLAGCTL, "--lock-timeout", "30s", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


WAIT_FOR_WAITERS = """
DO $$
BEGIN
    FOR i IN 1..400 LOOP  -- at most 20 s, polled by the server itself
        PERFORM pg_stat_clear_snapshot();
        IF (SELECT count(*) FROM pg_stat_activity
             WHERE application_name = 'flagctl' AND wait_event_type = 'Lock') >= %s THEN
            RETURN;
        END IF;
        PERFORM pg_sleep(0.05);
    END LOOP;
    RAISE EXCEPTION 'expected %s flagctl processes waiting on a lock';
END
$$
"""


def wait_for_waiters(cli: Cli, count: int) -> None:
    """Until `count` flagctl backends wait on a lock (asked of the server, no guessing)."""
    cli.sql(WAIT_FOR_WAITERS.replace("%s", str(int(count))))


def test_a_held_lock_is_exit_4_naming_the_blocker(ws8: Cli) -> None:
    with psycopg.connect(ws8.dsn, application_name="deploy-script") as holder:
        holder.execute("SELECT * FROM p3_feature_state FOR UPDATE")
        pid = holder.info.backend_pid
        result = ws8("--lock-timeout", "300ms", "stage", "set", "p3", "canary", "-r", "r", "-y")
        assert result.exit_code == 4
        assert f"held by pid {pid} (application_name deploy-script" in result.stderr
        assert "SELECT * FROM p3_feature_state FOR UPDATE" in result.stderr
        holder.rollback()
    assert p3_state(ws8) == (False, 0)
    assert ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action <> 'manifest.publish'") == [(0,)]


def test_a_kill_waits_for_a_lock_no_longer_than_lock_timeout(ws8: Cli) -> None:
    with psycopg.connect(ws8.dsn) as holder:
        holder.execute("UPDATE p3_feature_state SET rollout_percent = rollout_percent")
        started = time.monotonic()
        result = ws8("--lock-timeout", "200ms", "kill", "p3-off", "-r", "r", "-y")
        assert result.exit_code == 4
        assert time.monotonic() - started < 10  # bounded, not hung
        holder.rollback()


def test_two_concurrent_stage_sets_serialize_and_the_second_revalidates(ws8: Cli) -> None:
    with psycopg.connect(ws8.dsn) as holder:
        holder.execute("SELECT * FROM p3_feature_state FOR UPDATE")
        procs = [spawn(ws8, "stage", "set", "p3", "canary", "-r", f"racer {i}", "-y") for i in range(2)]
        wait_for_waiters(ws8, 2)
        holder.commit()
    results = [(*p.communicate(timeout=60), p.returncode) for p in procs]
    assert [code for _, _, code in results] == [0, 0], results
    outputs = sorted(out for out, _, _ in results)
    assert outputs[0].startswith("ladder p3: dark (off) → canary (on 1%)")
    assert outputs[1].startswith("nothing to do: ladder p3 is already at canary")
    moves = ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'stage.set' AND flag IS NOT NULL")
    assert moves == [(1,)] and p3_state(ws8) == (True, 1)


def test_concurrent_kill_and_stage_set_lose_no_update(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "r", "-y")
    with psycopg.connect(ws8.dsn) as holder:
        holder.execute("SELECT * FROM p3_feature_state FOR UPDATE")
        kill = spawn(ws8, "kill", "p3-off", "-r", "INC", "-y")
        back = spawn(ws8, "stage", "set", "p3", "dark", "-r", "back", "-y")
        wait_for_waiters(ws8, 2)
        holder.commit()
    kill_out = kill.communicate(timeout=60)
    back_out = back.communicate(timeout=60)
    assert kill.returncode == 0, kill_out
    engaged = ws8.sql("SELECT prior FROM flagctl.engaged_switch")
    assert len(engaged) == 1
    if back.returncode == 0:  # the move went first, and the kill recorded dark as the prior
        # value; or the kill went first, and the move went beneath it: dark either way
        assert engaged[0][0] == {"p3_advisory": {"enabled": False, "percent": 0}}
    else:  # the kill went first, after the move's preview: the state moved, nothing applied
        assert back.returncode == 4 and "the state changed" in back_out[1], back_out
        assert engaged[0][0] == {"p3_advisory": {"enabled": True, "percent": 1}}
    assert p3_state(ws8) == (False, 0)


OWN = "version: 1\nsystem: own\nflags:\n  f: {type: rollout, scopes: [tenant]}\n"


def test_a_flag_in_flagctls_table_is_locked_without_creating_its_row(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(OWN)
    cli("db", "init")
    with psycopg.connect(cli.dsn, application_name="other-operator") as holder:
        holder.execute("SELECT pg_advisory_xact_lock(hashtextextended('own/f', 0))")
        blocked = cli("--lock-timeout", "300ms", "set", "f", "5%", "-r", "r", "-y")
        assert blocked.exit_code == 4
        assert (
            f"could not lock flag f within lock_timeout: held by pid {holder.info.backend_pid}"
            in blocked.stderr
        )
        assert "other-operator" in blocked.stderr
        scoped = cli("--lock-timeout", "300ms", "set", "f", "5%", "--scope", "tenant:1", "-r", "r", "-y")
        assert scoped.exit_code == 4  # every scope of a flag serializes on the same lock
        holder.rollback()
    assert cli.sql("SELECT count(*) FROM flagctl.flag_state") == [(0,)]
    assert cli.sql("SELECT count(*) FROM flagctl.audit WHERE action <> 'manifest.publish'") == [(0,)]
    assert cli("set", "f", "5%", "-r", "r", "-y").exit_code == 0
    assert cli.sql("SELECT action, before, after FROM flagctl.audit WHERE action <> 'manifest.publish'") == [
        ("set", None, {"enabled": True, "percent": 5})
    ]  # one row: the change itself, no phantom default row
