"""A global kill over many scoped overrides costs statements per flag, not per override (issue
19): its writes of the overrides are one UPDATE, their audit rows one INSERT, and the audit's
unsealed list and NOTIFY one statement each — while every changed row still gets its own audit
row from the database, the guard still judges each row, and the release restores each override.

Counted exactly, in the kill's own transaction: pg_stat_xact_user_functions (track_functions =
all) says how often each of flagctl's functions ran."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest

from tests.conftest import Cli

pytestmark = pytest.mark.db

MANIFEST = """\
version: 1
system: wide
flags:
  f0: {type: bool, default: true, scopes: [workspace]}
  f1: {type: bool, default: true}
kill_switches:
  one: {level: 1, set: {f0: false}}
"""
# Functions that run once per changed row by design: the guard judges each row (BEFORE each
# row), audit_chain seals each audit row's seq and digest (BEFORE each row), and the value a
# kill writes is computed per row inside one query.
PER_ROW = {"guard_flag_write", "audit_chain", "audit_digest", "kill_overlay", "kill_norm"}
CALLS = "SELECT funcname, calls FROM pg_stat_xact_user_functions WHERE schemaname = 'flagctl'"
AUDITED = (
    "SELECT flag, scope, before, after FROM flagctl.audit"
    " WHERE txid = %s AND target = 'flagctl.flag_state' ORDER BY flag, scope"
)


def switched(cli: Cli, statement: str) -> tuple[dict[str, int], list[tuple[Any, ...]], int]:
    """Run flagctl.kill or flagctl.release in one transaction: the calls of each function, the
    flag rows it audited, and how many rows it returned."""
    with psycopg.connect(cli.dsn) as conn:
        conn.execute("SET track_functions = 'all'")
        changed = len(conn.execute(statement).fetchall())
        calls = dict(conn.execute(CALLS).fetchall())
        txid = conn.execute("SELECT txid_current()").fetchone()[0]  # type: ignore[index]
        conn.commit()
    return calls, cli.sql(AUDITED, (txid,)), changed


def overrides_up_to(cli: Cli, count: int) -> None:
    """f0's workspace overrides 1..count, on: written as the schema's owner (plain SQL, audited)."""
    cli.sql(
        "INSERT INTO flagctl.flag_state (system, flag, scope, value)"
        " SELECT 'wide', 'f0', 'workspace:' || i, 'true' FROM generate_series(1, %s) AS i"
        " ON CONFLICT DO NOTHING",
        (count,),
    )


def test_a_global_kill_and_its_release_make_no_call_per_override(make_cli: Callable[[str], Cli]) -> None:
    cli = make_cli(MANIFEST)
    assert cli("db", "init").exit_code == 0
    counted = {}
    for overrides in (20, 60):
        overrides_up_to(cli, overrides)
        kill, killed, changed = switched(cli, "SELECT * FROM flagctl.kill('wide', 'one', 'INC-1')")
        assert changed == overrides + 1
        # Each override and the global row: its own audit row, with the value it replaced.
        assert len(killed) == overrides + 1
        assert {(b, a) for f, s, b, a in killed if s != "global"} == {(True, False)}
        assert kill["guard_flag_write"] == overrides + 1  # the guard judged each row, once
        assert kill["audit_chain"] == overrides + 2  # and the engagement's own audit row
        release, restored, changed = switched(cli, "SELECT * FROM flagctl.release('wide', 'one', 'INC-1')")
        assert changed == overrides + 1
        assert {(b, a) for f, s, b, a in restored if s != "global"} == {(False, True)}
        assert len(restored) == overrides + 1
        assert cli.sql("SELECT count(*) FROM flagctl.flag_state WHERE value = 'true'") == [(overrides,)]
        counted[overrides] = (
            {f: n for f, n in kill.items() if f not in PER_ROW},
            {f: n for f, n in release.items() if f not in PER_ROW},
        )
    # Every other function ran as often over 60 overrides as over 20: no call per override
    # (there were 10,001 kill_write and 10,002 audit_row calls over 10,000).
    assert counted[60] == counted[20]
    kill, release = counted[60]
    assert "kill_write" not in kill and "kill_write" not in release
    assert kill["audit_flag_rows"] <= 3 and kill["audit_row"] == 1  # the engagement's row
