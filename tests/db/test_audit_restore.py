"""`restore --as-of` against a long audit trail: the database picks the one row per flag and
scope that tells its value at the moment, through the index of value rows (schema 34), so
the read neither holds the history in memory nor stops at a row cap. Counted exactly: the
audit rows the read touched in its own transaction (PostgreSQL's per-transaction counters),
and, from the plan, the rows the statement reads."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import psycopg

from flagctl.actions.profile import state_as_of
from flagctl.model.manifest import load_manifest
from flagctl.model.values import Rollout
from flagctl.store.audit import AS_OF
from tests.conftest import WS8_MANIFEST, Cli
from tests.db.test_audit_scale import HISTORY, audit_rows_read, history

DARK = Rollout(enabled=False, percent=0)
CANARY = Rollout(enabled=True, percent=1)
# Every audit row the transaction read: by sequential scans, and through any index of it.
TOUCHED = """
SELECT coalesce(t.seq_tup_read, 0) + coalesce(t.idx_tup_fetch, 0)
       + (SELECT coalesce(sum(pg_stat_get_xact_tuples_returned(i.indexrelid)), 0)
            FROM pg_index i WHERE i.indrelid = t.relid)
  FROM pg_stat_xact_user_tables t WHERE t.relid = 'flagctl.audit'::regclass
"""


def now(cli: Cli) -> datetime:
    moment: datetime = cli.sql("SELECT now()")[0][0]
    return moment


def rebuilt(cli: Cli, moment: datetime) -> tuple[dict[str, Any], int]:
    """The state as of the moment, as restore computes it, and the audit rows its read touched."""
    manifest = load_manifest(str(WS8_MANIFEST))
    with psycopg.connect(cli.dsn) as conn:  # one transaction: its own counters
        desired = state_as_of(conn, manifest, moment, None)
        row = conn.execute(TOUCHED).fetchone()
    assert row is not None
    return desired.state, int(row[0])


def test_restore_reads_a_handful_of_rows_whatever_the_history_before_the_moment(ws8: Cli) -> None:
    history(ws8)  # 20,000 old rows: it was dark
    moment = now(ws8)
    assert ws8("stage", "set", "p3", "canary", "-r", "go", "-y").exit_code == 0
    state, touched = rebuilt(ws8, moment)
    assert state == {"global": {"p3_advisory": DARK}}
    # The old read fetched every row of the flag (all 20,001, up to a million) into memory.
    assert touched <= 10, touched
    read = audit_rows_read(ws8, AS_OF, {"system": "phase3", "flags": ["p3_advisory"], "when": moment})
    assert read <= 10, read


def test_restore_finds_the_value_before_a_long_history_after_the_moment(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", "-r", "go", "-y").exit_code == 0
    moment = now(ws8)
    history(ws8)  # 20,000 rows after the moment, each writing dark
    ws8.sql(
        "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0 WHERE feature_name = 'p3_advisory'"
    )
    state, touched = rebuilt(ws8, moment)
    assert state == {"global": {"p3_advisory": CANARY}}
    assert touched <= HISTORY + 10, touched  # the rows since the moment, each once
    plan = ws8("restore", "--as-of", moment.isoformat(), "-r", "undo", "--force", "--dry-run", "-o", "json")
    assert plan.exit_code == 0, plan.stderr
    assert [c["flag"] for c in json.loads(plan.stdout)["changes"]] == ["p3_advisory"]


def test_restore_before_any_change_takes_the_value_the_first_change_found(ws8: Cli) -> None:
    moment = now(ws8)
    assert ws8("stage", "set", "p3", "canary", "-r", "go", "-y").exit_code == 0
    history(ws8, 3)
    state, _ = rebuilt(ws8, moment)
    assert state == {"global": {"p3_advisory": DARK}}
