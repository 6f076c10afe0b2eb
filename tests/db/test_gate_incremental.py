"""The gate reads the catalogue once, then, on a change, only what changed: the audit rows
after its change sequence name the flags, exemptions and switches to read again. Counted on
the wire with 200 flags: a one-flag change reads a handful of rows, not the 200 flags'; and
the state it ends with is the one a full read gives."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from flagctl.gate import Gate
from tests.conftest import Cli
from tests.wire import traced

GO = ("-r", "INC-19", "-y")
FLAGS = 200
MANIFEST = (
    "version: 1\nsystem: wide\nflags:\n"
    + "".join(f"  f{i:03d}: {{type: bool, scopes: [workspace]}}\n" for i in range(FLAGS))
    + "  roll: {type: rollout, scopes: [workspace]}\n"
    + "kill_switches:\n  stop: {level: 1, set: {roll: {enabled: false}, f001: false}}\n"
)
# Every flag stored, in one declared change (as the schema's owner): 200 `set`s take long.
STORE_ALL = (
    "SELECT flagctl.begin_change('set', 'test', 'test', NULL, NULL);"
    " INSERT INTO flagctl.flag_state (system, flag, scope, value)"
    " SELECT 'wide', 'f' || lpad(g::text, 3, '0'), 'global', 'true' FROM generate_series(0, 199) g"
)


class Ticks:
    now = 1000.0

    def __call__(self) -> float:
        return self.now


def data_rows(lines: list[str]) -> int:
    """Rows the server sent (DataRow messages)."""
    return sum(1 for line in lines if line.startswith("B\t") and "\tDataRow\t" in line)


def between(lines: list[str], start: str, end: str) -> list[str]:
    first = next(i for i, line in enumerate(lines) if start in line)
    last = next(i for i, line in enumerate(lines) if end in line)
    return lines[first:last]


def full_read(cli: Cli) -> Any:
    """The state a gate reading everything now holds."""
    gate = Gate(cli.dsn, manifest=cli.manifest, register=False, start=False)
    with psycopg.connect(cli.dsn, autocommit=True) as conn:
        gate.reload(conn)
    return gate._state


def same_state(mine: Any, full: Any) -> None:
    assert mine.snapshot == full.snapshot
    assert mine.engaged == full.engaged
    assert mine.exemptions == full.exemptions
    assert (mine.seq, mine.digest) == (full.seq, full.digest)


def test_a_change_reads_only_what_changed(
    make_cli: Callable[[str], Cli], monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = make_cli(MANIFEST)
    assert cli("db", "init").exit_code == 0
    cli.sql(STORE_ALL)
    ticks = Ticks()
    gate = Gate(cli.dsn, manifest=cli.manifest, register=False, start=False, clock=ticks,
                check=timedelta(hours=1), resync=None)  # fmt: skip
    gate.wake = 5  # a step waits for the notification the change sends
    changes: list[tuple[str, Callable[[], object]]] = [
        ("a flag", lambda: cli("set", "f007", "false", *GO)),
        ("a scoped override", lambda: cli("set", "f008", "false", "--scope", "workspace:1", *GO)),
        ("an exemption", lambda: cli("exempt", "add", "roll", "workspace:9", "--allow", *GO)),
        ("a kill", lambda: cli("kill", "stop", *GO)),
    ]
    with traced(monkeypatch) as wire, psycopg.connect(cli.dsn, autocommit=True) as conn:
        conn.execute("LISTEN flagctl")
        conn.execute("SELECT 'full read starts'")
        gate.reload(conn)
        conn.execute("SELECT 'full read ends'")
        for name, change in changes:
            assert change().exit_code == 0, name  # type: ignore[attr-defined]
            conn.execute(f"SELECT '{name} starts'")
            gate.step(conn)
            conn.execute(f"SELECT '{name} ends'")
            same_state(gate._state, full_read(cli))
    lines = wire.traces[0].splitlines()  # the gate's connection
    assert data_rows(between(lines, "full read starts", "full read ends")) >= FLAGS  # a full read: every flag
    for name, _ in changes:
        read = data_rows(between(lines, f"{name} starts", f"{name} ends"))
        assert read <= 10, f"{name}: {read} rows read"
    assert (gate.stats.incremental, gate.stats.notifications, gate.stats.reloads) == (4, 4, 5)
    assert (
        not gate.enabled("f007", "u")
        and gate.enabled("f008", "u")
        and not gate.enabled("f008", "u", ["workspace:1"])
    )
    assert not gate.enabled("roll", "u", ["workspace:9"]) and not gate.enabled("f001", "u")  # killed


def test_a_change_around_the_audit_trail_is_still_a_full_read(make_cli: Callable[[str], Cli]) -> None:
    """A notification with no audit row to tell what changed, but a digest that moved: the
    gate reads everything (the incremental read cannot see what no audit row names)."""
    cli = make_cli(MANIFEST)
    assert cli("db", "init").exit_code == 0
    cli.sql(STORE_ALL)
    gate = Gate(cli.dsn, manifest=cli.manifest, register=False, start=False, resync=None)
    with psycopg.connect(cli.dsn, autocommit=True) as conn:
        conn.execute("LISTEN flagctl")
        gate.reload(conn)
        cli.sql(
            "ALTER TABLE flagctl.flag_state DISABLE TRIGGER USER;"
            " UPDATE flagctl.flag_state SET value = 'false' WHERE system = 'wide' AND flag = 'f003';"
            ' ALTER TABLE flagctl.flag_state ENABLE TRIGGER USER; NOTIFY flagctl, \'{"system": "wide"}\''
        )
        gate.step(conn)
    assert gate.stats.incremental == 0 and not gate.enabled("f003", "u")
    same_state(gate._state, full_read(cli))


def test_a_change_that_commits_after_a_later_one_is_still_read(make_cli: Callable[[str], Cli]) -> None:
    """Transaction A takes its audit seq first but commits after B: the gate, having read B
    while A was in progress, reads A's rows by its transaction id, not by seq."""
    cli = make_cli(MANIFEST)
    assert cli("db", "init").exit_code == 0
    cli.sql(STORE_ALL)
    gate = Gate(cli.dsn, manifest=cli.manifest, register=False, start=False, resync=None)
    gate.wake = 5
    with psycopg.connect(cli.dsn, autocommit=True) as conn, psycopg.connect(cli.dsn) as slow:
        conn.execute("LISTEN flagctl")
        gate.reload(conn)
        slow.execute("SELECT flagctl.begin_change('set', 'test', 'test', NULL, NULL)")
        slow.execute("UPDATE flagctl.flag_state SET value = 'false' WHERE system = 'wide' AND flag = 'f010'")
        assert cli("set", "f011", "false", *GO).exit_code == 0  # B: a later seq, committed first
        gate.step(conn)
        assert not gate.enabled("f011", "u") and gate.enabled("f010", "u")
        slow.commit()  # A
        gate.step(conn)
    assert not gate.enabled("f010", "u")
    assert (gate.stats.incremental, gate.stats.drift) == (2, 0)
    same_state(gate._state, full_read(cli))
