"""`kill --break-locks` ends exactly the kill's blockers, and the audit says truthfully who
they were (findings 3–5 of the trust review): each test holds real locks from real sessions,
as another user than the killer, and failed before the lock breaker watched the kill's own
waiting backend."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import psycopg
import pytest

from tests.conftest import Cli
from tests.db.test_trust import declared, denied, member

GO = ("-r", "INC-42", "-y")
FAST = ("--lock-timeout", "300ms")


@contextmanager
def app_user(cli: Cli) -> Iterator[str]:
    """An application's LOGIN user, not a superuser, that owns and writes the bound table —
    as a deploy's migration would run."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    cli.sql(f"CREATE ROLE {name} LOGIN; ALTER TABLE p3_feature_state OWNER TO {name}")
    try:
        yield cli.dsn.replace("user=postgres", f"user={name}")
    finally:
        cli.sql(f"ALTER TABLE p3_feature_state OWNER TO postgres; DROP OWNED BY {name}; DROP ROLE {name}")


def session(dsn: str, name: str, *statements: str) -> psycopg.Connection:
    """A session that ran these statements in a transaction it keeps open."""
    conn = psycopg.connect(dsn, application_name=name)
    for statement in statements:
        conn.execute(statement.encode())
    return conn


def alive(conn: psycopg.Connection) -> bool:
    """Whether the session and its transaction survived (a cancelled statement aborts it)."""
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


def close(*conns: psycopg.Connection) -> None:
    for conn in conns:
        with suppress(psycopg.Error):
            conn.close()


def break_lock_rows(cli: Cli) -> list[dict]:
    return [
        after
        for (after,) in cli.sql(
            "SELECT after FROM flagctl.audit WHERE action = 'kill.break_lock' ORDER BY seq"
        )
    ]


def test_break_locks_ends_the_blocker_and_records_who_it_was(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    with app_user(ws8) as app:
        stuck = session(
            app, "stuck-deploy", "SELECT * FROM p3_feature_state FOR UPDATE"
        )  # then nothing, for an hour
        pid = stuck.info.backend_pid
        try:
            blocked = ws8(*FAST, "kill", "p3-off", *GO)
            assert (
                blocked.exit_code == 4
                and "--break-locks" in blocked.stderr
                and f"pid {pid}" in blocked.stderr
            )
            result = ws8(*FAST, "kill", "p3-off", "--break-locks", "-o", "json", *GO)
            assert result.exit_code == 0, result.stderr
            assert f"pid {pid}" in result.stderr and "terminated" in result.stderr
            (broken,) = json.loads(result.stdout)["broken_locks"]
            assert broken["pid"] == pid and broken["ended"] == "terminated"
            assert not alive(stuck)  # its transaction was ended
        finally:
            close(stuck)
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    (reason,) = {r for (r,) in ws8.sql("SELECT reason FROM flagctl.audit WHERE action = 'kill'")}
    assert reason == "INC-42"
    (row,) = break_lock_rows(ws8)
    assert row["pid"] == pid and row["application"] == "stuck-deploy" and row["done"] == "terminated"


def test_break_locks_ends_only_the_sessions_the_kill_waits_for(ws8: Cli) -> None:
    """Finding 3: two sessions hold the flag's row FOR SHARE (its xmax is then a MultiXact).
    flagctl fell back to every session with a lock on the table's OID, in any database, and
    cancelled one updating an unrelated row and one in a copy of the database."""
    ws8("stage", "set", "p3", "canary", *GO)
    ws8.sql("INSERT INTO p3_feature_state VALUES ('other_feature', true, 100)")
    copy = f"copy_{uuid.uuid4().hex[:8]}"
    here = ws8.sql("SELECT current_database()")[0][0]
    with app_user(ws8) as app, member(ws8, "security") as (_, alice):
        ws8.sql(f'CREATE DATABASE {copy} TEMPLATE "{here}"')  # the same table, the same OID
        share = "SELECT * FROM p3_feature_state WHERE feature_name = 'p3_advisory' FOR SHARE"
        first = session(app, "report-1", share)
        second = session(app, "report-2", share)
        unrelated = session(
            app,
            "unrelated",
            "UPDATE p3_feature_state SET rollout_percent = 50 WHERE feature_name = 'other_feature'",
        )
        elsewhere = session(
            app.replace(f"dbname={here}", f"dbname={copy}"),
            "other-database",
            "UPDATE p3_feature_state SET rollout_percent = 60",
        )
        try:
            result = ws8(*FAST, "kill", "p3-off", "--break-locks", *GO, FLAGCTL_DSN=alice)
            assert result.exit_code == 0, result.stderr
            assert not alive(first) and not alive(second)
            assert alive(unrelated) and alive(elsewhere)
        finally:
            close(first, second, unrelated, elsewhere)
            ws8.sql(f"DROP DATABASE {copy} WITH (FORCE)")
    assert ws8.sql(
        "SELECT enabled, rollout_percent FROM p3_feature_state WHERE feature_name = 'p3_advisory'"
    ) == [(False, 0)]
    ended = {row["application"]: row["done"] for row in break_lock_rows(ws8)}
    assert set(ended) == {"report-1", "report-2"}


def test_break_locks_ends_a_migration_holding_access_exclusive(ws8: Cli) -> None:
    """Finding 4: a migration's ALTER TABLE in an open transaction: exit 4 after the lock
    timeout, no blocker named, nothing broken, the flag still on."""
    ws8("stage", "set", "p3", "canary", *GO)
    with app_user(ws8) as app, member(ws8, "security") as (_, alice):
        migration = session(app, "deploy-migrate", "ALTER TABLE p3_feature_state ADD COLUMN note text")
        pid = migration.info.backend_pid
        try:
            blocked = ws8(*FAST, "kill", "p3-off", *GO, FLAGCTL_DSN=alice)
            assert (
                blocked.exit_code == 4
                and f"pid {pid}" in blocked.stderr
                and "deploy-migrate" in blocked.stderr
            )
            assert "--break-locks" in blocked.stderr
            result = ws8(*FAST, "kill", "p3-off", "--break-locks", *GO, FLAGCTL_DSN=alice)
            assert result.exit_code == 0, result.stderr
            assert f"pid {pid}" in result.stderr and "deploy-migrate" in result.stderr
            assert not alive(migration)
        finally:
            close(migration)
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    assert "note" not in {
        c
        for (c,) in ws8.sql(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'p3_feature_state'::regclass AND attnum > 0"
        )
    }


def test_the_audit_names_each_blocker_as_the_database_saw_it(ws8: Cli) -> None:
    """Finding 5: the record said every blocker was "0s in a transaction" with query
    "<insufficient privilege>", and "cancelled" whatever happened: the killer's own view of
    another user's session. Now the database records it as it is."""
    ws8("stage", "set", "p3", "canary", *GO)
    with app_user(ws8) as app, member(ws8, "security") as (_, alice):
        stuck = session(app, "stuck-deploy", "SELECT * FROM p3_feature_state FOR UPDATE")
        pid = stuck.info.backend_pid
        (started,) = ws8.sql("SELECT xact_start FROM pg_stat_activity WHERE pid = %s", (pid,))[0]
        try:
            result = ws8(*FAST, "kill", "p3-off", "--break-locks", *GO, FLAGCTL_DSN=alice)
            assert result.exit_code == 0, result.stderr
        finally:
            close(stuck)
        user = app.split("user=")[1].split()[0]
        (row,) = break_lock_rows(ws8)
        assert row["pid"] == pid and row["db_user"] == user and row["application"] == "stuck-deploy"
        assert row["query"] == "SELECT * FROM p3_feature_state FOR UPDATE"
        assert (
            row["state"] == "idle in transaction" and row["done"] == "terminated"
        )  # cancel ends no idle one
        (recorded,) = ws8.sql(
            "SELECT (after->>'xact_start')::timestamptz FROM flagctl.audit WHERE action = 'kill.break_lock'"
        )[0]
        assert recorded == started
        (actor, reason) = ws8.sql(
            "SELECT db_user, reason FROM flagctl.audit WHERE action = 'kill.break_lock'"
        )[0]
        assert actor.startswith("u_") and reason == "INC-42"


def test_a_superusers_session_is_never_ended_and_the_hint_says_so(ws8: Cli) -> None:
    """Finding 5: when a superuser blocked, the hint said the caller needed the security role
    it already had."""
    ws8("stage", "set", "p3", "canary", *GO)
    with member(ws8, "security") as (_, alice):
        dba = session(ws8.dsn, "dba-console", "SELECT * FROM p3_feature_state FOR UPDATE")
        pid = dba.info.backend_pid
        try:
            result = ws8(*FAST, "kill", "p3-off", "--break-locks", *GO, FLAGCTL_DSN=alice)
            assert result.exit_code == 4
            assert "superuser" in result.stderr and f"pg_terminate_backend({pid})" in result.stderr
            assert "db grant" not in result.stderr
            assert alive(dba)
        finally:
            close(dba)
    (row,) = break_lock_rows(ws8)
    assert row["pid"] == pid and row["done"].startswith("not ended: a superuser")
    assert ws8.sql("SELECT enabled FROM p3_feature_state") == [(True,)]


def waiting_on(dsn: str, statement: str, *setup: str) -> tuple[psycopg.Connection, threading.Thread]:
    """A session left waiting on a lock (its statement runs in a thread until it is let go)."""
    conn = psycopg.connect(dsn)
    for line in setup:
        conn.execute(line.encode())

    def wait() -> None:
        with suppress(psycopg.Error):
            conn.execute(statement.encode())

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return conn, thread


# A kill's own wait, as a security member makes it in psql: a declared kill taking the
# kill's locks (the role holds no UPDATE to lock the row with SELECT … FOR UPDATE itself).
KILL_WAIT = ("SELECT flagctl.kill_hold('phase3', 'p3-off', 'global')", declared("kill"))


def end_blocker(dsn: str, waiter: int, pid: int) -> str:
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "SELECT flagctl.end_blocker(%s, %s, true, 'phase3', 'mallory', 'r', 'c')", (waiter, pid)
        ).fetchone()
        return str(row[0]) if row else ""


def blocked(admin: Cli, pid: int) -> None:
    """Wait until the session is waiting on a lock (the server says so; no fixed sleep)."""
    with psycopg.connect(admin.dsn, autocommit=True) as conn:
        conn.execute(
            "SET statement_timeout = '20s'"
        )  # a session that never waits fails the test, not hangs it
        conn.execute("SELECT set_config('flagctl.test_pid', %s, false)", (str(pid),))
        conn.execute(
            "DO $$ BEGIN WHILE NOT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted"
            " AND pid = current_setting('flagctl.test_pid')::int) LOOP PERFORM pg_sleep(0.01); END LOOP; END $$"
        )


@pytest.mark.parametrize("role", ["security", "release", "viewer"])
def test_the_lock_breaker_ends_only_what_blocks_the_callers_own_wait_on_a_kills_lock(
    ws8: Cli, role: str
) -> None:
    """As an attacker in psql: the breaker ends a session only if it blocks a backend of the
    caller's own that waits on a lock a kill takes (a bound table's row here) — not one
    blocking the caller's wait on an application table, not one blocking another user's
    kill; and only for the security role."""
    with (
        member(ws8, role) as (mallory_name, mallory),
        member(ws8, "security") as (_, bob),
        app_user(ws8) as app,
    ):
        ws8.sql(
            f"GRANT SELECT ON resumes TO {mallory_name}; GRANT ALL ON resumes TO {app.split('user=')[1].split()[0]}"
        )
        victim = session(
            app,
            "victim",
            "SELECT * FROM p3_feature_state FOR UPDATE",
            "LOCK TABLE resumes IN ACCESS EXCLUSIVE MODE",
        )
        own, own_thread = waiting_on(mallory, "SELECT * FROM resumes")
        kill, kill_thread = waiting_on(bob, *KILL_WAIT)
        target = victim.info.backend_pid
        try:
            blocked(ws8, own.info.backend_pid)
            blocked(ws8, kill.info.backend_pid)
            for waiter in (own.info.backend_pid, kill.info.backend_pid):
                assert denied(
                    mallory, f"SELECT flagctl.end_blocker({waiter}, {target}, true, 'phase3', 'm', 'r', 'c')"
                )
            assert alive(victim)
            # the control: bob's own wait on the flag's row may have its blocker ended
            assert end_blocker(bob, kill.info.backend_pid, target) == "terminated"
            kill_thread.join(10)
            assert not alive(victim)
        finally:
            for conn in (own, kill):
                with suppress(psycopg.Error):
                    ws8.sql(f"SELECT pg_cancel_backend({conn.info.backend_pid})")
            own_thread.join(10)
            close(victim, own, kill)


def test_a_breaker_call_declares_nothing_for_its_transaction(ws8: Cli) -> None:
    """end_blocker left its `kill.break_lock` declaration in the caller's transaction, under
    an actor of the caller's choosing: a flag write after it in the same transaction passed
    as declared (and was recorded as "the-ceo"). Now it leaves nothing declared (a later
    write is plain SQL, refused to a flagctl role) and runs only in a transaction of its own."""
    with app_user(ws8) as app, member(ws8, "security") as (_, alice):
        victim = session(app, "victim", "SELECT * FROM p3_feature_state FOR UPDATE")
        kill, thread = waiting_on(alice, *KILL_WAIT)
        try:
            blocked(ws8, kill.info.backend_pid)
            end = (
                f"SELECT flagctl.end_blocker({kill.info.backend_pid}, {victim.info.backend_pid}, false,"
                " 'phase3', 'the-ceo', 'approved', 'flagctl set')"
            )
            with psycopg.connect(alice) as conn:  # one transaction: the call, then what it declared
                conn.execute(end.encode())
                (declared,) = conn.execute("SELECT (flagctl.current_change()).action").fetchone()
                conn.rollback()
            assert declared is None
            assert denied(alice, "SELECT txid_current()", end)  # not inside a transaction that wrote
        finally:
            close(victim)
            thread.join(10)
            close(kill)


@pytest.mark.parametrize(
    "wait",
    [
        "SELECT pg_advisory_lock(424242)",  # the application's own advisory lock (its job queue)
        # a mode no kill asks for (and no flagctl role may ask for: a DBA granted UPDATE here)
        "LOCK TABLE p3_feature_state IN ACCESS EXCLUSIVE MODE",
    ],
)
def test_a_wait_of_the_callers_own_choosing_gives_no_licence_to_end_sessions(ws8: Cli, wait: str) -> None:
    """A security member made a psql session of theirs wait on a lock of their choosing —
    the application's advisory lock, or ACCESS EXCLUSIVE on a bound table, which every
    reader then "blocks" — and ended whoever held it. Only the locks a kill itself takes count."""
    with app_user(ws8) as app, member(ws8, "security") as (name, mallory):
        if wait.startswith("LOCK TABLE"):
            ws8.sql(f"GRANT UPDATE ON p3_feature_state TO {name}")
        holder = session(
            app, "job-queue", "SELECT pg_advisory_lock(424242)", "SELECT count(*) FROM p3_feature_state"
        )
        waiter, thread = waiting_on(mallory, wait)
        try:
            blocked(ws8, waiter.info.backend_pid)
            end = (
                f"SELECT flagctl.end_blocker({waiter.info.backend_pid}, {holder.info.backend_pid}, true,"
                " 'phase3', 'm', 'r', 'c')"
            )
            assert denied(mallory, end)
            assert alive(holder)
        finally:
            with suppress(psycopg.Error):
                ws8.sql(f"SELECT pg_cancel_backend({waiter.info.backend_pid})")
            thread.join(10)
            close(holder, waiter)
