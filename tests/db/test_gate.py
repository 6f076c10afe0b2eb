"""flagctl.gate in an application process: it sees a kill without polling, detects a
missed notification, fails closed when the database is gone, and decides exactly as
`flagctl eval` does."""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from flagctl import local
from flagctl.gate import Gate
from tests.conftest import GROUPS_MANIFEST, WS8_MANIFEST, Cli, private_ws8, start_private_server
from tests.wire import Wire, traced

GO = ("-r", "INC-5", "-y")
NEWEST = "SELECT max(seq) FROM flagctl.audit"


class Ticks:
    """A monotonic clock the test moves (the gate's staleness and check intervals)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def newest(cli: Cli) -> int:
    return int(cli.sql(NEWEST)[0][0])


def test_the_gate_sees_a_kill_without_polling(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "broad", "--percent", "50", "--force", *GO)
    with Gate(ws8.dsn, manifest=WS8_MANIFEST, check=_hours(1), resync=None) as gate:
        assert gate.wait_ready()
        on = [s for s in range(200) if gate.enabled("p3_advisory", s)]
        assert 60 < len(on) < 140  # about half
        assert ws8("kill", "p3-off", *GO).exit_code == 0
        assert gate.wait_for_seq(newest(ws8), timeout=10)
        assert not any(gate.enabled("p3_advisory", s) for s in on)
        assert gate.stats.notifications >= 1 and gate.stats.missed == 0  # told, not polled
        decision = gate.decide("p3_advisory", on[0])
        assert decision is not None and "kill switch p3-off" in decision.rule


def test_a_notification_is_acted_on_when_it_arrives(ws8: Cli) -> None:
    """Not when the listener's wait ends: with a 30 s wait, the kill is seen well before.
    (The listener used to read notifications until its wait was over, and only then reload:
    every kill reached the gates up to 250 ms late.)"""
    gate = Gate(ws8.dsn, manifest=WS8_MANIFEST, check=_hours(1), resync=None, start=False)
    gate.wake = 30
    gate.start()
    try:
        assert gate.wait_ready()
        assert ws8("kill", "p3-off", *GO).exit_code == 0
        assert gate.wait_for_seq(newest(ws8), timeout=10)
        assert not gate.enabled("p3_advisory", 1)
        gate._stop.set()  # a last change ends the thread's wait, so close() need not time out
        assert ws8("release", "p3-off", *GO).exit_code == 0
    finally:
        gate.close()


def test_the_gate_decides_exactly_as_eval(groups: Cli) -> None:
    import json

    groups("stage", "set", "groups", "stage0-dogfood", *GO)
    groups("set", "F3", "true", "--scope", "workspace:42", *GO)
    groups("kill", "KS1", "--scope", "workspace:7", *GO)
    with Gate(groups.dsn, manifest=GROUPS_MANIFEST) as gate:
        assert gate.wait_ready()
        for flag in ("F1", "F2", "F3"):
            for scopes in ([], ["workspace:42"], ["workspace:7"]):
                args = [a for s in scopes for a in ("--scope", s)]
                expected = json.loads(groups("eval", flag, "--id", "u-1", *args, "-o", "json").stdout)
                mine = gate.decide(flag, "u-1", scopes)
                assert mine is not None and (mine.eligible, mine.rule) == (
                    expected["eligible"],
                    expected["rule"],
                )


def test_a_missed_notification_is_detected_by_the_change_sequence(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ticks = Ticks()
    with Gate(ws8.dsn, manifest=WS8_MANIFEST, check=_seconds(5), resync=None, clock=ticks) as gate:
        assert gate.wait_ready()
        ws8.sql("ALTER TABLE flagctl.audit DISABLE TRIGGER audit_notify")  # this change notifies no one
        assert ws8("kill", "p3-off", *GO).exit_code == 0
        ws8.sql("ALTER TABLE flagctl.audit ENABLE TRIGGER audit_notify")
        ticks.now += 6  # past the check interval: the gate compares change sequences
        assert gate.wait_for_seq(newest(ws8), timeout=10)
        assert gate.stats.missed >= 1
        assert gate.value("p3_advisory").enabled is False


# A change around the audit trail (finding 13): the owner disables the user triggers, so no
# audit row, no notification, no flag guard; `status` sees the drift, and so must the gate.
AROUND = {
    "ws8": (
        "p3_feature_state",
        "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0 WHERE feature_name = 'p3_advisory'",
    ),
    "groups": (
        "flagctl.flag_state",
        "UPDATE flagctl.flag_state SET value = 'false'"
        " WHERE system = 'groups' AND flag = 'F3' AND scope = 'workspace:42'",
    ),
}


def around_the_trigger(cli: Cli, example: str) -> None:
    table, update = AROUND[example]
    before = newest(cli)
    cli.sql(f"ALTER TABLE {table} DISABLE TRIGGER USER; {update}; ALTER TABLE {table} ENABLE TRIGGER USER")
    assert newest(cli) == before  # no audit row: the change sequence cannot tell


def prepared(request: pytest.FixtureRequest, example: str) -> tuple[Cli, Any, Callable[[Gate], bool]]:
    """The example with a flag on, its manifest, and how to tell the gate sees it off."""
    cli: Cli = request.getfixturevalue(example)
    if example == "ws8":
        assert cli("stage", "set", "p3", "canary", *GO).exit_code == 0
        return cli, WS8_MANIFEST, lambda gate: gate.value("p3_advisory").enabled is False
    assert cli("set", "F3", "true", "--scope", "workspace:42", *GO).exit_code == 0
    return cli, GROUPS_MANIFEST, lambda gate: gate.value("F3", ["workspace:42"]) is False


@pytest.mark.parametrize("example", ["ws8", "groups"])
def test_a_change_around_the_audit_trigger_is_seen_by_the_next_check(
    request: pytest.FixtureRequest, example: str
) -> None:
    """A bound table (WS8) and flagctl's own table (Groups): the next check, one interval
    on the gate's clock, finds the rows changed and reloads — not the resync (off here)."""
    cli, manifest, off = prepared(request, example)
    ticks = Ticks()
    changed = threading.Event()
    with Gate(cli.dsn, manifest=manifest, check=_seconds(5), resync=None, clock=ticks) as gate:
        assert gate.wait_ready() and not off(gate)
        gate.on_change(lambda seq: changed.set())
        around_the_trigger(cli, example)
        ticks.now += 6  # one check interval: the gate compares the digest of its rows
        assert changed.wait(10), "the gate did not see a change made around the audit trigger"
        assert off(gate)
        assert (gate.stats.drift, gate.stats.missed, gate.stats.notifications) == (1, 0, 0)


def test_a_check_that_finds_nothing_new_is_one_statement_and_a_heartbeat(
    ws8: Cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Driven step by step on the test's own connection: a check with no change sends the
    check (change sequence and digest in one statement) and the heartbeat, and reloads
    nothing; between check intervals a step sends nothing; a change around the trigger is
    a reload at the next check."""
    import psycopg

    ws8("stage", "set", "p3", "canary", *GO)
    ticks = Ticks()
    gate = Gate(ws8.dsn, manifest=WS8_MANIFEST, check=_seconds(5), resync=None, clock=ticks, start=False)
    gate.wake = 0.01
    with traced(monkeypatch) as wire, psycopg.connect(ws8.dsn, autocommit=True) as conn:
        conn.execute("LISTEN flagctl")
        gate.reload(conn)
        conn.execute("SELECT 'checks start here'")
        gate.step(conn)  # within the interval: nothing to do
        ticks.now += 6
        gate.step(conn)  # a check: nothing new
        assert (gate.stats.reloads, gate.stats.checks) == (1, 1)
        conn.execute("SELECT 'checks end here'")
    lines = wire.traces[0].splitlines()  # the gate's connection
    start, end = (
        next(i for i, line in enumerate(lines) if mark in line) for mark in ("start here", "end here")
    )
    checks = lines[start:end]
    sent = [statement for statement in Wire._statements(checks) if "checks start" not in statement]
    assert len(sent) == 2, sent
    assert "md5" in sent[0] and "flagctl.client_ack" in sent[1]
    assert (
        sum(1 for line in checks if line.startswith("B\t") and "\tReadyForQuery\t" in line) == 3
    )  # + marker

    with psycopg.connect(ws8.dsn, autocommit=True) as conn:
        conn.execute("LISTEN flagctl")
        gate.reload(conn)
        around_the_trigger(ws8, "ws8")
        ticks.now += 6
        gate.step(conn)
        assert (gate.stats.reloads, gate.stats.checks, gate.stats.drift) == (3, 1, 1)
        assert gate.value("p3_advisory").enabled is False


def test_the_gate_fails_closed_when_the_database_is_gone() -> None:
    root = Path(tempfile.mkdtemp(prefix="flagctl-gate-"))
    pgdata = root / "pg"
    ticks = Ticks()
    try:
        cli = private_ws8(pgdata, "gate")
        assert cli("stage", "set", "p3", "full", "--force", *GO).exit_code == 0
        gate = Gate(
            cli.dsn, manifest=WS8_MANIFEST, staleness=_seconds(30), backoff=_seconds(0.5), clock=ticks
        )
        try:
            assert gate.wait_ready() and gate.enabled("p3_advisory", "anyone")
            local.stop(pgdata, mode="immediate")
            ticks.now += 31  # no read for longer than the staleness bound
            assert not gate.enabled("p3_advisory", "anyone")  # fail closed
            assert gate.value("p3_advisory").enabled is False
            start_private_server(pgdata)
            assert gate.wait_fresh(timeout=60)  # reconnected (backing off) and reloaded
            assert gate.enabled("p3_advisory", "anyone")
            assert gate.stats.reconnects >= 1
        finally:
            gate.close()
    finally:
        local.stop(pgdata, mode="immediate")
        shutil.rmtree(root, ignore_errors=True)


def _seconds(n: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(seconds=n)


def _hours(n: float):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    return timedelta(hours=n)


def test_a_gate_without_the_right_to_register_still_decides(ws8: Cli) -> None:
    import uuid

    ws8("stage", "set", "p3", "full", "--force", *GO)
    name = f"reader_{uuid.uuid4().hex[:8]}"
    ws8.sql(
        f"CREATE ROLE {name} LOGIN; GRANT USAGE ON SCHEMA flagctl TO {name};"
        f" GRANT SELECT ON ALL TABLES IN SCHEMA flagctl TO {name}; GRANT SELECT ON p3_feature_state TO {name}"
    )
    try:
        dsn = ws8.dsn.replace("user=postgres", f"user={name}")
        with Gate(dsn, manifest=WS8_MANIFEST) as gate:
            assert gate.wait_ready() and gate.enabled("p3_advisory", "anyone")
            assert gate.register is False  # it said so in the log, and goes on deciding
    finally:
        ws8.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")


# The finding: a stale gate turned payment_provider from adyen to stripe (its default) for
# the length of a database blip. Rollouts and bools fail closed; a config value keeps the
# last value the gate read; `when_stale` on a flag says otherwise.
PAYMENTS = """
version: 1
system: pay
flags:
  payment_provider: {type: enum, values: [stripe, adyen], scopes: [region]}
  retries: {type: int, default: 1}
  checkout_v2: {type: rollout}
  fraud_rules: {type: bool}
  strict_mode: {type: bool, when_stale: last}
  theme: {type: enum, values: [light, dark], when_stale: "off"}
"""


def test_a_stale_gate_keeps_config_values_and_fails_rollouts_and_bools_closed(
    make_cli: Callable[[str], Cli],
) -> None:
    import psycopg

    cli = make_cli(PAYMENTS)
    assert cli("db", "init").exit_code == 0
    for flag, value, *scope in (
        ("payment_provider", "adyen"),
        ("payment_provider", "stripe", "--scope", "region:us"),
        ("retries", "5"),
        ("checkout_v2", "100%"),
        ("fraud_rules", "true"),
        ("strict_mode", "true"),
        ("theme", "dark"),
    ):
        assert cli("set", flag, value, *scope, *GO).exit_code == 0
    ticks = Ticks()
    gate = Gate(
        cli.dsn, manifest=cli.manifest, staleness=_seconds(30), clock=ticks, register=False, start=False
    )
    with psycopg.connect(cli.dsn, autocommit=True) as conn:
        gate.reload(conn)
    fresh = {flag: gate.value(flag) for flag in ("payment_provider", "retries", "theme")}
    assert fresh == {"payment_provider": "adyen", "retries": 5, "theme": "dark"}

    ticks.now += 31  # the database blipped: no read for longer than the staleness bound
    assert not gate.fresh()
    assert gate.value("payment_provider") == "adyen"  # its last value, not its default (stripe)
    assert gate.value("payment_provider", ["region:us"]) == "stripe"  # the last value in that scope
    assert gate.value("retries") == 5
    assert gate.value("theme") == "light"  # when_stale: off — its default
    assert gate.value("checkout_v2").enabled is False and not gate.enabled(
        "checkout_v2", "u-1"
    )  # fail closed
    assert gate.value("fraud_rules") is False and not gate.enabled("fraud_rules", "u-1")
    assert gate.decide("fraud_rules", "u-1") is None
    assert gate.value("strict_mode") is True and gate.enabled("strict_mode", "u-1")  # when_stale: last
    decision = gate.decide("strict_mode", "u-1")
    assert decision is not None and decision.eligible

    with psycopg.connect(cli.dsn, autocommit=True) as conn:  # back: current again
        gate.reload(conn)
    assert gate.fresh() and gate.enabled("fraud_rules", "u-1") and gate.value("theme") == "dark"


def test_before_the_first_read_every_flag_is_off_or_its_default(make_cli: Callable[[str], Cli]) -> None:
    """Nothing read yet: there is no last value to keep."""
    cli = make_cli(PAYMENTS)
    gate = Gate(cli.dsn, manifest=cli.manifest, register=False, start=False)
    assert gate.value("payment_provider") == "stripe" and gate.value("retries") == 1
    assert not gate.enabled("strict_mode", "u-1") and gate.decide("strict_mode", "u-1") is None
