"""docs/ci/rollback.sh — the CI rollback job docs/ci.md shows — run as it is, against a
real database, through every branch: success, an idempotent retry, lock conflicts
(retried), a policy refusal and a permission refusal (not retried)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg

from tests.conftest import WS8_MANIFEST, Cli, p3_state

SCRIPT = Path(__file__).resolve().parents[2] / "docs" / "ci" / "rollback.sh"
FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def rollback(
    dsn: str, pipeline: str = "841", manifest: Path = WS8_MANIFEST, **env: str
) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(manifest), "FLAGCTL": FLAGCTL,
        "CI_PIPELINE_ID": pipeline, "FLAGCTL_RETRY_DELAY": "0", **env,
    }  # fmt: skip
    return subprocess.run(
        ["bash", str(SCRIPT), "p3", "deploy abc123 failed"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_success_and_an_idempotent_retry(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "limited", "--force", "-r", "deploy", "-y")
    first = rollback(ws8.dsn)
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["applied"] is True and p3_state(ws8) == (True, 1)  # limited → canary
    again = rollback(ws8.dsn)  # the job re-run after a lost answer: same pipeline, same request id
    assert again.returncode == 0 and "already applied" in again.stdout
    assert p3_state(ws8) == (True, 1)  # not two stages back
    other = rollback(ws8.dsn, pipeline="842")
    assert other.returncode == 0 and p3_state(ws8) == (False, 0)


def test_a_held_lock_is_retried_three_times_then_exit_4(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "deploy", "-y")
    with psycopg.connect(ws8.dsn) as holder:
        holder.execute("SELECT * FROM p3_feature_state FOR UPDATE")
        result = rollback(ws8.dsn, FLAGCTL_LOCK_TIMEOUT="100ms")
        holder.rollback()
    assert result.returncode == 4, result.stderr
    assert (
        result.stderr.count("(busy)") == 3 and result.stderr.count("retrying") == 2
    )  # no wait after the last
    assert "gave up after 3 attempts (last exit 4)" in result.stderr
    assert p3_state(ws8) == (True, 1)


def test_an_unreachable_database_is_retried_and_ends_with_exit_3(tmp_path: Path) -> None:
    """Three tries against a database that cannot be reached ended in exit 4 ("busy"):
    alerting could not tell an outage from lock contention. The last try's code is kept."""
    result = rollback(f"host={tmp_path} dbname=nowhere connect_timeout=1")
    assert result.returncode == 3, result.stderr
    assert result.stderr.count("(database unreachable)") == 3
    assert "gave up after 3 attempts (last exit 3)" in result.stderr


HELD = """
version: 1
system: shop
flags:
  checkout_v2: {type: rollout, description: the new checkout}
  fraud_rules: {type: bool, default: true, description: strict fraud rules}
ladders:
  p3:
    stages:
      - {name: dark, set: {checkout_v2: {enabled: false, percent: 0}, fraud_rules: true}}
      - {name: canary, set: {checkout_v2: {enabled: true, percent: 1}, fraud_rules: false}}
kill_switches:
  rules-off: {level: 1, description: fraud rules off, set: {fraud_rules: false}}
"""


def test_a_policy_refusal_is_not_retried(make_cli) -> None:  # type: ignore[no-untyped-def]
    """A kill switch holds one of the ladder's flags, and the rollback would turn it on
    beneath the kill (dark has strict fraud rules): refused, exit 1 — a person must look,
    and the script does not retry."""
    shop = make_cli(HELD)
    assert shop("db", "init").exit_code == 0
    assert shop("stage", "set", "p3", "canary", "-r", "deploy", "-y").exit_code == 0
    assert shop("kill", "rules-off", "-r", "INC-1", "-y").exit_code == 0
    result = rollback(shop.dsn, manifest=shop.manifest)
    assert result.returncode == 1, result.stderr
    assert "not retrying" in result.stderr and "retrying in" not in result.stderr
    error = json.loads(result.stdout)["error"]
    assert error["exit_code"] == 1 and "rules-off" in error["message"]


def test_a_rollback_under_a_kill_is_what_the_release_restores(ws8: Cli) -> None:
    """Finding 2: under a kill the script printed "rolled back" while nothing moved, and the
    release brought the failed stage back. Now the stage beneath the kill moves, for the CI
    job's own release-only user too, and the release lands there."""
    ws8("stage", "set", "p3", "limited", "--force", "-r", "deploy", "-y")
    assert ws8("kill", "p3-off", "-r", "INC-17", "-y").exit_code == 0
    name = f"ci_{uuid.uuid4().hex[:8]}"
    ws8.sql(f"CREATE ROLE {name} LOGIN")
    try:
        assert ws8("db", "grant", "release", name).exit_code == 0
        result = rollback(ws8.dsn.replace("user=postgres", f"user={name}"))
    finally:
        ws8.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")
    assert result.returncode == 0, result.stderr
    assert "rolled back p3" in result.stderr
    doc = json.loads(result.stdout)
    assert doc["applied"] is True and doc["killed_by"] == ["p3-off"]
    assert p3_state(ws8) == (False, 0)  # still killed
    assert ws8("release", "p3-off", "-r", "INC-17 mitigated", "-y").exit_code == 0
    assert p3_state(ws8) == (True, 1)  # limited → canary, as the job said


def test_a_permission_refusal_is_not_retried(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", "-r", "deploy", "-y")
    name = f"ci_{uuid.uuid4().hex[:8]}"
    ws8.sql(f"CREATE ROLE {name} LOGIN")
    try:
        assert ws8("db", "grant", "viewer", name).exit_code == 0
        result = rollback(ws8.dsn.replace("user=postgres", f"user={name}"))
    finally:
        ws8.sql(f"DROP OWNED BY {name}; DROP ROLE {name}")
    assert result.returncode == 5 and "grant the release role" in result.stderr, result.stderr
    assert p3_state(ws8) == (True, 1)
