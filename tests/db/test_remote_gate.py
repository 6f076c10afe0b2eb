"""The gate reading through flagctl serve (RemoteGate): the same decisions as a gate reading
PostgreSQL, kept current by the push stream, acknowledged through the relay, fail closed
when the relay goes quiet — and no database connection of its own."""

from __future__ import annotations

import json

from flagctl.gate import Gate, RemoteGate
from flagctl.gate.remote import _events
from tests.conftest import CANARY_MANIFEST, Cli
from tests.db.test_gate import Ticks
from tests.serving import serving

GO = ("-r", "INC-2: remote gate test", "-y")


def test_a_remote_gate_decides_as_a_database_gate_and_follows_a_kill(canary: Cli) -> None:
    canary("stage", "set", "canary", "internal", *GO)
    canary("stage", "set", "canary", "50pct", *GO)
    canary("exempt", "add", "canary_feature", "publisher:42", "--allow", *GO)
    with (
        serving(canary) as served,
        Gate(canary.dsn, manifest=CANARY_MANIFEST, register=False) as local,
        RemoteGate(served.url, served.token, system="canary", name="pod-r") as remote,
    ):
        assert local.wait_ready() and remote.wait_ready(10), remote.stats.errors
        assert remote.seq == local.seq
        cases = [(f"u{i}", [f"publisher:{i % 60}"], i % 7 == 0) for i in range(300)]
        for subject, scopes, internal in cases:
            assert remote.decide("canary_feature", subject, scopes, internal=internal) == local.decide(
                "canary_feature", subject, scopes, internal=internal
            )
        heard: list[int] = []
        remote.on_change(heard.append)
        result = canary("kill", "canary-off", "--wait-ack", "--timeout", "10s", *GO)
        assert result.exit_code == 0, result.stderr  # the remote gate's refetch is its acknowledgement
        assert remote.wait_for_seq(local.seq or 0) or remote.wait_until(
            lambda g: not g.enabled("canary_feature", "u1")
        )
        assert not remote.enabled("canary_feature", "u1", ["publisher:42"])  # the kill over the exemption
        assert heard and heard[-1] == remote.seq
        names = [
            c["host"] for c in json.loads(canary("clients", "-o", "json").stdout)["clients"] if c["relay"]
        ]
        assert names == ["pod-r"]


def test_a_remote_gate_fails_closed_when_the_relay_goes_quiet(canary: Cli) -> None:
    canary("stage", "set", "canary", "internal", *GO)
    clock = Ticks()
    with serving(canary) as served:
        remote = RemoteGate(served.url, served.token, system="canary", clock=clock)
        try:
            assert remote.wait_ready(10)
            assert remote.enabled("canary_feature", "u1", internal=True)  # the internal audience
            dbname = canary.sql("SELECT current_database()")[0][0]
            gates = canary.sql(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'flagctl-gate'",
                (dbname,),
            )
            assert gates == [(1,)]  # the relay's; the remote gate holds none
            served.server.should_exit = True  # the relay goes away
            clock.now += 31  # past the staleness bound with no word from it
            assert not remote.fresh() and not remote.enabled("canary_feature", "u1", internal=True)
        finally:
            remote.close()


def test_a_bad_token_leaves_the_remote_gate_never_ready(canary: Cli) -> None:
    with serving(canary) as served:
        remote = RemoteGate(served.url, "fct_wrong", system="canary")
        try:
            assert not remote.wait_ready(1)
            assert remote.stats.errors and "401" in remote.stats.errors[0]
            assert remote.enabled("canary_feature", "u1") is False
        finally:
            remote.close()


def test_the_event_reader_reads_the_streams_framing() -> None:
    lines = [
        "event: hello",
        'data: {"seq": 3}',
        "",
        ": a comment",
        "",
        "event: change",
        'data: {"seq":',
        "data: 4}",
        "",
    ]
    assert list(_events(iter(lines))) == [("hello", {"seq": 3}), ("change", {"seq": 4})]
