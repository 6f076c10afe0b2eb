"""`flagctl demo` fast-forwards its clock past a bake time and a recovery period; every time
it shows must be on that one timeline. It used to mix it with the database's wall-clock
stamps: the audit trail had the promotion at 21:15 beside a refusal saying "allowed from
21:45", and `rollback --status` said "ROLLED_BACK for 31m" right after the rollback."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from typer.testing import CliRunner

from flagctl.cli.app import app
from flagctl.cli.env import Capabilities, Environment
from tests.conftest import FakeClock, FakeSleeper, Server

TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC"


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def demo(server: Server, *args: str) -> Any:
    """The demo in-process on the test's embedded server (its data dir is its socket dir),
    with a fake sleeper: the kill proof's window costs no wall time."""
    if server.kind != "embedded":
        pytest.skip("the demo runs on the embedded PostgreSQL")
    environ = {"FLAGCTL_DATA_DIR": server.host, "FLAGCTL_CONFIG": "/dev/null"}
    obj = Environment(
        Capabilities(
            environ=environ,
            sleep=FakeSleeper(FakeClock()),
            stdin_isatty=False,
            argv=["flagctl", "demo", *args],
        )
    )
    result = CliRunner().invoke(app, ["demo", *args], env=environ, obj=obj)
    assert result.exit_code == 0, result.stdout + result.stderr
    return result


def audit_rows(stdout: str) -> list[tuple[datetime, str, str]]:
    """(at, action, reason) of each row the demo's last `audit log` printed, oldest first."""
    table = stdout.rsplit("$ flagctl audit log", 1)[1]
    rows = []
    for line in table.splitlines():
        cells = re.split(r"\s{2,}", line.strip())  # #, at, who, action, flag, change, reason
        if len(cells) >= 5 and cells[0].isdigit() and re.fullmatch(TIME, cells[1]):
            rows.append((at(cells[1].removesuffix(" UTC")), cells[3], cells[-1]))
    return rows[::-1]


def test_the_ws8_demo_shows_one_timeline(server: Server) -> None:
    result = demo(server)
    out = result.stdout
    rows = audit_rows(out)
    stage = {reason: when for when, action, reason in rows if action == "stage.set"}

    # the bake refusal names a time; the promotion it refused is recorded after it
    allowed = at(re.search(rf"is allowed from {TIME}", result.stderr)[1])  # type: ignore[index]
    assert stage["WS8 stage 2"] >= allowed
    assert stage["WS8 stage 2"] - stage["WS8 stage 1: internal validation"] >= timedelta(minutes=30)

    # `stage show` right after the promotion: limited since just now, at the promotion's time
    since = re.search(rf"ladder p3: limited since {TIME} \((\w+)\)", out)
    assert since is not None and since[2].endswith("s") and "m" not in since[2], since
    assert at(since[1]) == stage["WS8 stage 2"]

    # the watchdog's evaluation and the rows it wrote carry the same time
    tick = at(re.search(rf"{TIME}  state NORMAL → ROLLED_BACK", out)[1])  # type: ignore[index]
    [rolled] = [when for when, action, _ in rows if action == "rollback.state"]
    assert abs(rolled - tick) < timedelta(minutes=1)
    state = out.split("$ flagctl rollback --status\n", 1)[1].splitlines()[0]
    assert re.fullmatch(r"rollback state of phase3: ROLLED_BACK for \d+s", state), state  # not "for 31m"

    # no time shown is in the simulated past of a time shown before it
    assert [when for when, _, _ in rows] == sorted(when for when, _, _ in rows)


def test_the_recsys_demo_recovers_after_its_simulated_quarter_hour(server: Server) -> None:
    out = demo(server, "recsys").stdout
    moves = [(when, reason) for when, action, reason in audit_rows(out) if action == "rollback.state"]
    started = next(when for when, reason in moves if "→ RECOVERY_VERIFY" in reason)
    normal = next(when for when, reason in moves if "RECOVERY_VERIFY → NORMAL" in reason)
    assert normal - started >= timedelta(minutes=15)  # the trail shows the green quarter hour it required


def test_the_simulated_clock_maps_both_ways() -> None:
    """Wall clock → shown and back (no database): after a jump times show later by it; a
    shown time inside the skipped stretch stands for the moment of the jump."""
    from flagctl.cli.commands.demo import SimulatedClock

    clock = SimulatedClock()
    t0 = datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    clock.jumps = [(t0, timedelta(minutes=31)), (t0 + timedelta(minutes=5), timedelta(minutes=16))]
    before, between, after = t0 - timedelta(seconds=1), t0 + timedelta(minutes=1), t0 + timedelta(minutes=6)
    assert [clock.shown(t) for t in (before, between, after)] == [
        before, between + timedelta(minutes=31), after + timedelta(minutes=47)
    ]  # fmt: skip
    for t in (before, between, after):
        assert clock.real(clock.shown(t)) == t
    assert clock.real(t0 + timedelta(minutes=10)) == t0  # skipped: nobody was there
    assert clock.offset == timedelta(minutes=47)
