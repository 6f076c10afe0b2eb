"""Confirmed kills: `flagctl kill --wait-ack` returns once every live gate client applied
the kill, and names a client that did not (a paused process) — the kill staying engaged."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

from flagctl.gate import Gate
from tests.conftest import WS8_MANIFEST, Cli

GO = ("-r", "INC-6", "-y")
GATE_PROCESS = """
import sys
from flagctl.gate import Gate
gate = Gate(sys.argv[1], manifest=sys.argv[2], application="checkout-api")
gate.wait_ready()
print("ready", flush=True)
sys.stdin.read()  # runs until the test closes its stdin (or kills it)
"""


def test_wait_ack_confirms_every_live_client(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    with Gate(ws8.dsn, manifest=WS8_MANIFEST, application="search-api") as gate:
        assert gate.wait_ready()
        listed = json.loads(ws8("clients", "-o", "json").stdout)["clients"]
        assert [c["application"] for c in listed] == ["search-api"] and listed[0]["behind"] == 0
        result = ws8("kill", "p3-off", "--wait-ack", "--timeout", "10s", *GO)
        assert result.exit_code == 0, result.stderr
        assert "confirmed: the live gate client applied the kill: " in result.stderr  # not "all 1 … clients"
        assert gate.value("p3_advisory").enabled is False
    assert json.loads(ws8("clients", "-o", "json").stdout)["clients"] == []  # closed: unregistered


def test_wait_ack_names_a_paused_client_and_the_kill_stays(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    proc = subprocess.Popen(
        [sys.executable, "-c", GATE_PROCESS, ws8.dsn, str(WS8_MANIFEST)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.kill(proc.pid, signal.SIGSTOP)  # a process that stopped reading (GC pause, debugger, swap)
        result = ws8("kill", "p3-off", "--wait-ack", "--timeout", "1s", *GO)
        assert result.exit_code == 1, result.stderr
        assert f"pid {proc.pid} (checkout-api" in result.stderr and "did not apply the kill" in result.stderr
        assert ws8.sql("SELECT enabled, rollout_percent FROM p3_feature_state") == [(False, 0)]
        behind = json.loads(ws8("clients", "-o", "json").stdout)["clients"][0]["behind"]
        assert behind > 0
    finally:
        os.kill(proc.pid, signal.SIGCONT)
        proc.kill()
        proc.wait()


def test_wait_ack_with_no_live_client_says_so(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8.sql(
        "INSERT INTO flagctl.clients (system, host, pid, application, seen_at)"
        " VALUES ('phase3', 'old-host', 1, 'gone-api', now() - interval '1 hour')"
    )
    result = ws8("kill", "p3-off", "--wait-ack", *GO)
    assert result.exit_code == 0 and "no live gate client" in result.stderr


def test_one_stopped_client_of_two_is_named_with_the_timeout(ws8: Cli) -> None:
    """With more than one gate client the refusal ended at "did not apply the kill within ":
    no timeout, no names. It says how many of how many, for how long, and which."""
    ws8("stage", "set", "p3", "canary", *GO)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", GATE_PROCESS, ws8.dsn, str(WS8_MANIFEST)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        os.kill(procs[0].pid, signal.SIGSTOP)
        result = ws8("kill", "p3-off", "--wait-ack", "--timeout", "1s", *GO)
        assert result.exit_code == 1, result.stderr
        assert "1 of 2 live gate clients did not apply the kill within 1s: " in result.stderr
        assert (
            f"pid {procs[0].pid} (checkout-api" in result.stderr
            and f"pid {procs[1].pid}" not in result.stderr
        )
    finally:
        os.kill(procs[0].pid, signal.SIGCONT)
        for proc in procs:
            proc.kill()
            proc.wait()
