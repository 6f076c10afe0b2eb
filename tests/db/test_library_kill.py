"""The kill as a library caller gets it (``flagctl.actions.engage``): the same kill as
``flagctl kill``, with what follows its COMMIT — the drift it wrote over and the gate
clients' acknowledgement — as data, not as lines on stderr."""

from __future__ import annotations

from datetime import timedelta

import psycopg

from flagctl.actions.engage import AckWait, engage
from flagctl.gate import Gate
from flagctl.model.manifest import load_manifest
from flagctl.store.db import AuditContext
from flagctl.views.drift import Drift
from tests.conftest import WS8_MANIFEST, Cli

GO = ("-r", "INC-7", "-y")


def audit(reason: str = "INC-7: library kill") -> AuditContext:
    return AuditContext.given("kill", reason=reason, actor="oncall", command="runbook.py")


def test_a_library_kill_reports_the_drift_it_wrote_over_and_the_acknowledgement(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    ws8.sql(  # changed around the audit trigger: no audit row
        "SET session_replication_role = replica;"
        " UPDATE p3_feature_state SET enabled = true, rollout_percent = 100;"
        " SET session_replication_role = origin"
    )
    loaded = load_manifest(str(WS8_MANIFEST))
    with Gate(ws8.dsn, manifest=WS8_MANIFEST, application="search-api") as gate:
        assert gate.wait_ready()
        with psycopg.connect(ws8.dsn, autocommit=True) as conn:
            wait = AckWait(timeout=timedelta(seconds=10), live=timedelta(seconds=30))
            report = engage(conn, loaded, "p3-off", "global", audit(), wait=wait)
        assert report.outcome.applied
        assert [
            (d["flag"], d["scope"], d["live"], d["audited"]) for d in map(Drift.to_json, report.drift)
        ] == [("p3_advisory", "global", {"enabled": True, "percent": 100}, {"enabled": True, "percent": 1})]
        assert report.acks is not None and report.acks.failure() is None
        assert [c.application for c in report.acks.clients] == ["search-api"] and report.acks.late == []
        assert gate.value("p3_advisory").enabled is False
    rows = ws8.sql("SELECT actor, reason FROM flagctl.audit WHERE action = 'kill'")
    assert rows and set(rows) == {("oncall", "INC-7: library kill")}


def test_a_library_kill_without_drift_or_wait_reports_neither(ws8: Cli) -> None:
    loaded = load_manifest(str(WS8_MANIFEST))
    with psycopg.connect(ws8.dsn, autocommit=True) as conn:
        report = engage(conn, loaded, "p3-off", "global", audit())
        again = engage(conn, loaded, "p3-off", "global", audit(), dry_run=True)
    assert report.outcome.applied and report.drift == [] and report.acks is None
    assert again.outcome.dry_run and not again.outcome.applied and again.drift == []
