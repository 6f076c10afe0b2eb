"""Reads that must cost what the flags and scopes are, not the length of the audit history:
the last audited value of each flag and scope (status, the kill's drift report) and each
flag's last change. Counted exactly, from PostgreSQL's own plan: the rows read from
flagctl.audit stay a handful with 20,000 rows of history (they were all of them)."""

from __future__ import annotations

import json
from typing import Any

import psycopg

from flagctl.store.audit import LAST_AUDITED, LAST_CHANGES
from tests.conftest import Cli

HISTORY = 20_000


def history(cli: Cli, rows: int = HISTORY) -> None:
    cli.sql(
        "INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, before, after, reason)"
        " SELECT 'bench', 'sql.update', 'phase3', 'p3_advisory', NULL, 'p3_feature_state',"
        """ '{"enabled": false, "rollout_percent": 0}', '{"enabled": false, "rollout_percent": 0}', 'old'"""
        " FROM generate_series(1, %s)",
        (rows,),
    )
    cli.sql("ANALYZE flagctl.audit")


def audit_rows_read(cli: Cli, statement: str, params: Any) -> int:
    """Rows the plan read from flagctl.audit, over every loop of every node that scans it."""
    with psycopg.connect(cli.dsn, autocommit=True) as conn:
        plan = conn.execute(("EXPLAIN (ANALYZE, FORMAT JSON) " + statement).encode(), params).fetchone()
    assert plan is not None
    total = 0

    def walk(node: dict[str, Any]) -> None:
        nonlocal total
        if node.get("Relation Name") == "audit":
            total += int(node["Actual Rows"]) * int(node["Actual Loops"])
            total += int(node.get("Rows Removed by Filter", 0)) * int(node["Actual Loops"])
        for child in node.get("Plans", []):
            walk(child)

    document = json.loads(plan[0]) if isinstance(plan[0], str) else plan[0]
    walk(document[0]["Plan"])
    return total


def test_the_last_audited_values_read_a_handful_of_rows_whatever_the_history(ws8: Cli) -> None:
    history(ws8)  # 20,000 old rows, then the move that set the live value
    assert ws8("stage", "set", "p3", "canary", "-r", "go", "-y").exit_code == 0
    read = audit_rows_read(ws8, LAST_AUDITED, {"system": "phase3", "flags": ["p3_advisory"], "txid": None})
    assert read <= 10, read
    # What it read is the newest row: the move, so no drift; then a newer row that disagrees
    # with the live value (written around the trigger) is the one drift compares with.
    assert json.loads(ws8("status", "-o", "json").stdout)["drift"] == []
    history(ws8, 1)
    (newest,) = ws8.sql("SELECT max(seq) FROM flagctl.audit")[0]
    drift = json.loads(ws8("status", "-o", "json").stdout)["drift"]
    assert [(d["flag"], d["audit_seq"]) for d in drift] == [("p3_advisory", newest)]


def test_each_flags_last_change_reads_one_row_per_flag(ws8: Cli) -> None:
    history(ws8)
    read = audit_rows_read(ws8, LAST_CHANGES, (["p3_advisory"], "phase3"))
    assert read <= 3, read


def test_the_kills_drift_report_reads_a_handful_of_rows_whatever_the_history(ws8: Cli) -> None:
    history(ws8)
    assert ws8("stage", "set", "p3", "canary", "-r", "go", "-y").exit_code == 0
    assert ws8("kill", "p3-off", "-r", "INC-1", "-y").exit_code == 0
    (txid,) = ws8.sql("SELECT max(txid) FROM flagctl.audit WHERE action = 'kill'")[0]
    read = audit_rows_read(ws8, LAST_AUDITED, {"system": "phase3", "flags": ["p3_advisory"], "txid": txid})
    assert read <= 10, read
