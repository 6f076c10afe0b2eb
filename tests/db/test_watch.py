"""watch and the six-state rollback machine, on the recommender with synthetic traffic."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli, audit_count, values

GO = ("-r", "watch", "-y")


def traffic(cli: Cli, *, requests: int = 500, coverage: float = 0.99, latency: int = 80,
            cache_hit: bool = True, errors: int = 0) -> None:  # fmt: skip
    cli.sql(
        "INSERT INTO ranking_events (request_id, bucket, k, k_returned, coverage, latency_ms, cache_hit)"
        " SELECT 'req-' || g, g %% 100, 10, 10, %s, %s, %s FROM generate_series(1, %s) g",
        (coverage, latency, cache_hit, requests),
    )
    if errors:
        cli.sql(
            "INSERT INTO error_events (request_id, component, severity)"
            " SELECT 'req-' || g, 'ranker', 'high' FROM generate_series(1, %s) g",
            (errors,),
        )


def clear(cli: Cli) -> None:
    cli.sql("DELETE FROM ranking_events; DELETE FROM error_events")


def watch_once(cli: Cli, *extra: str) -> tuple[int, dict[str, object]]:
    result = cli("watch", "--once", "-o", "json", *extra)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, result.stdout + result.stderr  # one JSON line per evaluation
    return result.exit_code, json.loads(lines[0])


def state(cli: Cli) -> str:
    return json.loads(cli("rollback", "--status", "-o", "json").stdout)["state"]  # type: ignore[no-any-return]


def test_healthy_traffic_stays_normal(recsys: Cli) -> None:
    traffic(recsys)
    code, tick = watch_once(recsys)
    assert code == 0 and tick["state"] == "NORMAL" and tick["rollback_needed"] is False
    assert all(g["passed"] for g in tick["guardrails"])  # type: ignore[union-attr]


def test_no_traffic_fails_closed(recsys: Cli) -> None:
    code, tick = watch_once(recsys)
    assert code == 1 and tick["state"] == "ROLLBACK_PENDING"
    coverage = next(g for g in tick["guardrails"] if g["name"] == "coverage_p1")  # type: ignore[union-attr]
    assert coverage["verdict"] == "no_data" and coverage["counts_as"] == "fail"
    assert "NULL" in coverage["error"]


def test_p2_breach_degrades_and_recovers(recsys: Cli) -> None:
    traffic(recsys, cache_hit=False)  # cache hit rate 0: a P2 breach only
    code, tick = watch_once(recsys)
    assert code == 0 and (tick["state_before"], tick["state"]) == ("NORMAL", "DEGRADED")
    clear(recsys)
    traffic(recsys)
    code, tick = watch_once(recsys)
    assert code == 0 and tick["state"] == "NORMAL"


def test_p1_breach_without_auto_leaves_the_rollback_pending(recsys: Cli) -> None:
    traffic(recsys, errors=5)  # 1% errors: P1
    before = values(recsys)
    code, tick = watch_once(recsys)
    assert code == 1 and tick["state"] == "ROLLBACK_PENDING" and tick["actions"] == []
    assert values(recsys) == before


def test_auto_rollback_applies_the_emergency_baseline_and_recovery_is_verified(recsys: Cli) -> None:
    traffic(recsys, latency=450)  # p95 far above target: P1
    code, tick = watch_once(recsys, "--auto", *GO)
    assert code == 1  # a rollback was needed (and done)
    assert (tick["state_before"], tick["state"]) == ("NORMAL", "ROLLED_BACK")
    assert tick["actions"] == ["apply profile emergency"]
    assert recsys("profile", "diff", "emergency").exit_code == 0
    audited = recsys.sql("SELECT DISTINCT action FROM flagctl.audit WHERE action LIKE 'rollback%' ORDER BY 1")
    assert audited == [("rollback.auto",), ("rollback.state",)]
    # still breaching: stays rolled back
    assert watch_once(recsys, "--auto", *GO)[1]["state"] == "ROLLED_BACK"
    clear(recsys)
    traffic(recsys)
    assert watch_once(recsys)[1]["state"] == "RECOVERY_VERIFY"
    recsys.clock.advance(minutes=10)
    assert watch_once(recsys)[1]["state"] == "RECOVERY_VERIFY"  # green for 10 of 15 minutes
    recsys.clock.advance(minutes=6)
    assert watch_once(recsys)[1]["state"] == "NORMAL"
    transitions = recsys.sql(
        "SELECT before->>'state', after->>'state' FROM flagctl.audit WHERE target = 'flagctl.rollback_state'"
        " AND before IS DISTINCT FROM after ORDER BY seq"
    )
    assert [t for t in transitions if t[0] != t[1]] == [
        (None, "ROLLED_BACK"),
        ("ROLLED_BACK", "RECOVERY_VERIFY"),
        ("RECOVERY_VERIFY", "NORMAL"),
    ]


def test_a_breach_during_recovery_verify_goes_back_to_rolled_back(recsys: Cli) -> None:
    traffic(recsys, errors=10)
    watch_once(recsys, "--auto", *GO)
    clear(recsys)
    traffic(recsys)
    assert watch_once(recsys)[1]["state"] == "RECOVERY_VERIFY"
    traffic(recsys, errors=10)
    assert watch_once(recsys)[1]["state"] == "ROLLED_BACK"


def test_manual_override_back_to_normal(recsys: Cli) -> None:
    traffic(recsys, errors=10)
    watch_once(recsys)
    assert state(recsys) == "ROLLBACK_PENDING"
    assert recsys("rollback", "--override-normal", "-y").exit_code == 2  # needs a reason
    result = recsys("rollback", "--override-normal", *GO)
    assert result.exit_code == 0 and "ROLLBACK_PENDING → NORMAL (manual override)" in result.stdout
    assert "nothing to do" in recsys("rollback", "--override-normal", *GO).stdout
    assert state(recsys) == "NORMAL"
    assert recsys.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'rollback.override'") == [(1,)]


def test_auto_needs_yes_without_a_terminal(recsys: Cli) -> None:
    traffic(recsys, errors=10)
    result = recsys("watch", "--once", "--auto")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert state(recsys) == "NORMAL"


def test_watch_counts_evaluations_and_prints_one_line_each(recsys: Cli) -> None:
    traffic(recsys)
    result = recsys("watch", "--count", "3", "--interval", "30s", "-o", "json")
    assert result.exit_code == 0
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 3 and all(line["state"] == "NORMAL" for line in lines)
    assert recsys.sleeper.slept == [30.0, 30.0]  # between evaluations, never after the last
    ticks = [line["at"] for line in lines]
    assert ticks == sorted(ticks) and len(set(ticks)) == 3  # each evaluation at its own (fake) time


def test_ws8_watch_auto_kills_phase3_on_a_contract_violation(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "go", "-y")
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    code, tick = watch_once(ws8, "--auto", *GO)
    assert code == 1 and tick["actions"] == ["engage kill switch p3-off"]
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    # an emergency action like any kill: it waits for its post-action review (it did not)
    pending = json.loads(ws8("review", "pending", "-o", "json").stdout)["pending"]
    assert [(e["action"], e["flags"]) for e in pending] == [
        ("rollback.auto", "kill_switch:p3-off, p3_advisory")
    ]


def test_watch_survives_a_dropped_connection(recsys: Cli) -> None:
    """A watchdog that dies on one dropped connection guards nothing. The lost connection is
    reported, never mistaken for failing guardrails, and watch reconnects and goes on."""
    traffic(recsys)

    def drop_the_watchers_connection(seconds: float) -> None:
        if len(recsys.sleeper.slept) == 1:  # after the first evaluation
            recsys.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'flagctl' AND pid <> pg_backend_pid() AND datname = current_database()"
            )

    recsys.sleeper.hooks.append(drop_the_watchers_connection)
    result = recsys("watch", "--count", "3", "--interval", "30s", "-o", "json")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert len(lines) == 3 and all(line["state"] == "NORMAL" for line in lines)
    assert (
        "lost the connection" in result.stderr
        and "reconnected to the database after 1s blind" in result.stderr
    )
    assert state(recsys) == "NORMAL"  # no false rollback


def test_a_blind_watch_does_not_count_the_gap_as_green(recsys: Cli) -> None:
    """Rolled back and verifying recovery (15 minutes of green): the watcher loses its
    connection for 20 minutes. Before, the first green evaluation after the gap declared
    NORMAL — on green nobody saw. The window restarts at the reconnect."""
    traffic(recsys, errors=10)
    watch_once(recsys, "--auto", *GO)
    clear(recsys)
    traffic(recsys)
    assert watch_once(recsys)[1]["state"] == "RECOVERY_VERIFY"

    def blind_for_twenty_minutes(seconds: float) -> None:
        if len(recsys.sleeper.slept) == 1:
            recsys.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE application_name = 'flagctl' AND pid <> pg_backend_pid() AND datname = current_database()"
            )
            recsys.clock.advance(minutes=20)

    recsys.sleeper.hooks.append(blind_for_twenty_minutes)
    result = recsys("watch", "--count", "2", "--interval", "30s", "-o", "json")
    assert result.exit_code == 0, result.stderr
    states = [json.loads(line)["state"] for line in result.stdout.strip().splitlines()]
    assert states == ["RECOVERY_VERIFY", "RECOVERY_VERIFY"], states
    assert "blind" in result.stderr
    recsys.sleeper.hooks.clear()
    recsys.clock.advance(minutes=16)  # 15 minutes of green, watched this time
    assert watch_once(recsys)[1]["state"] == "NORMAL"


def test_the_watchdog_kills_as_a_release_member_not_only_as_the_owner(ws8: Cli) -> None:
    """watch --auto's kill ran only as the schema's owner: for a release member (the role
    the rollback machine needs) the engagement guard took only a `kill`, not the declared
    `rollback.auto`, and the automatic kill failed with exit 5."""
    from tests.db.test_trust import member

    ws8("stage", "set", "p3", "canary", "-r", "go", "-y")
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    with member(ws8, "release") as (name, dsn):
        ws8.sql(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
        watchdog = Cli(dsn, ws8.manifest, clock=ws8.clock, admin_dsn=ws8.dsn)
        code, tick = watch_once(watchdog, "--auto", *GO)
        assert tick.get("errors") in (None, []), tick
        assert code == 1 and tick["actions"] == ["engage kill switch p3-off"]
    assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
    assert ws8.sql("SELECT switch FROM flagctl.engaged_switch") == [("p3-off",)]


@pytest.mark.parametrize(
    ("option", "value"),
    [("--reason", "x\x1b[2K\ny"), ("--actor", "alice\r\nbob"), ("--reason", "x" * 2001)],
)
def test_watch_holds_its_reason_and_actor_to_the_rules_of_every_change(
    recsys: Cli, option: str, value: str
) -> None:
    # The watchdog records what it does under this reason and actor, as `kill` does: the
    # same refusal (exit 2, naming the option), before it evaluates or rolls back anything.
    traffic(recsys, errors=50)  # a P1 breach: an --auto watch would roll back
    args = ["--reason", "watch"] if option != "--reason" else []
    result = recsys("watch", "--once", "--auto", "--yes", option, value, *args)
    assert result.exit_code == 2 and option in result.stderr, result.stderr
    assert audit_count(recsys) == 0
    assert state(recsys) == "NORMAL"


def test_the_library_watchdog_yields_each_evaluation_loss_retry_and_reconnection(recsys: Cli) -> None:
    """flagctl.actions.watchdog.watch, as a library caller runs it: the loop's events as data
    (the CLI only renders them), through a lost connection and two failed reconnections."""
    import psycopg

    from flagctl.actions.rollback import Tick
    from flagctl.actions.watchdog import Lost, Reconnected, StillDown, watch
    from flagctl.errors import ConnectionFailed
    from flagctl.model.manifest import load_manifest
    from flagctl.store.db import AuditContext

    traffic(recsys)
    attempts: list[int] = []
    slept: list[float] = []

    def connect() -> psycopg.Connection[tuple[object, ...]]:
        attempts.append(1)
        if len(attempts) in (2, 3):  # the database is still down for two retries
            raise ConnectionFailed("connection refused")
        return psycopg.connect(recsys.dsn, autocommit=True, application_name="watchdog-test")

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 1:  # after the first evaluation
            recsys.sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'watchdog-test'"
            )

    audit = AuditContext.given("watch", reason="watch", actor="bot", command="watchdog.py")
    events = list(
        watch(connect, load_manifest(str(recsys.manifest)), audit, clock=recsys.clock, sleep=sleep,
              interval=30.0, ticks=2)
    )  # fmt: skip
    kinds = [type(e) for e in events]
    assert kinds == [Tick, Lost, StillDown, StillDown, Reconnected, Tick], kinds
    assert [e.next_delay for e in events if isinstance(e, StillDown)] == [2.0, 4.0]
    assert slept == [30.0, 1.0, 2.0, 4.0]  # the interval, then the back-off; nothing after the last tick
    assert all(e.after == "NORMAL" for e in events if isinstance(e, Tick))
