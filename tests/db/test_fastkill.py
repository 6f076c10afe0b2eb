"""The kill's fast path against a real server: the same command line gives the same
outcome, output and audit trail as through the parser, and the process running it imports
neither the command-line framework nor the manifest validator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GROUPS_MANIFEST, Cli, Templates

pytestmark = pytest.mark.db

AUDITED = """
SELECT actor, action, system, flag, scope, target, before, reason, command, forced,
       CASE WHEN jsonb_typeof(after) = 'object' THEN after - 'engaged_at' ELSE after END  -- the clock's
FROM flagctl.audit ORDER BY seq"""
STATE = "SELECT system, flag, scope, value FROM flagctl.flag_state ORDER BY 1, 2, 3"


@pytest.fixture
def twins(templates: Templates) -> Iterator[tuple[Cli, Cli]]:
    """Two identical Groups databases: one driven the way the entry point does (the fast
    path first), one through typer only."""
    dsns = [templates.database("groups", GROUPS_MANIFEST, None) for _ in range(2)]
    try:
        yield Cli(dsns[0], GROUPS_MANIFEST), Cli(dsns[1], GROUPS_MANIFEST, parser_only=True)
    finally:
        for dsn in dsns:
            templates.drop(dsn)


CASES = {
    "global kill": (["kill", "KS5", "-r", "INC-1", "-y"], {}),
    "scoped, json, = forms": (
        ["kill", "KS1", "--scope", "workspace:42", "--reason=INC 2", "--yes", "-o", "json"],
        {},
    ),
    "dry run": (["kill", "KS5", "-r", "INC-1", "-y", "--dry-run"], {}),
    "options first, actor": (
        [
            "--lock-timeout",
            "2s",
            "--request-id",
            "r-1",
            "kill",
            "--yes",
            "KS3",
            "--actor",
            "alice",
            "-r",
            "x",
        ],
        {},
    ),
    "wait for gate clients (none)": (["kill", "KS2", "-r", "x", "-y", "--wait-ack", "--timeout", "1s"], {}),
    "unknown switch": (["kill", "KS9", "-r", "x", "-y"], {}),
    "unknown switch, json": (["kill", "KS9", "-r", "x", "-y", "-o", "json"], {}),
    "no reason": (["kill", "KS5", "-y"], {}),
    "no --yes and no terminal": (["kill", "KS5", "-r", "x"], {}),
    "reason on two lines": (["kill", "KS5", "-r", "a\nb", "-y"], {}),
    "bad scope": (["kill", "KS1", "--scope", "nowhere", "-r", "x", "-y"], {}),
    "blank request id": (["--request-id", " ", "kill", "KS5", "-r", "x", "-y"], {}),
    "empty request id": (["--request-id", "", "kill", "KS5", "-r", "x", "-y"], {}),
    "empty lock timeout": (["--lock-timeout=", "kill", "KS5", "-r", "x", "-y"], {}),
    "request id from the environment": (["kill", "KS5", "-r", "x", "-y"], {"FLAGCTL_REQUEST_ID": "from-env"}),
    "bad lock timeout from the environment": (
        ["kill", "KS5", "-r", "x", "-y"],
        {"FLAGCTL_LOCK_TIMEOUT": "soon"},
    ),
    "bad --timeout": (["kill", "KS5", "-r", "x", "-y", "--wait-ack", "--timeout", "later"], {}),
    "no database": (
        ["--dsn", "host=/nonexistent-flagctl dbname=x connect_timeout=1", "kill", "KS5", "-r", "x", "-y"],
        {},
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_the_fast_path_runs_exactly_the_parsers_kill(twins: tuple[Cli, Cli], case: str) -> None:
    fast, parsed = twins
    args, environ = CASES[case]
    one, other = fast(*args, **environ), parsed(*args, **environ)
    assert (fast.fast_runs, parsed.fast_runs) == (1, 0)  # each went the way it was meant to
    assert _seen(fast, one) == _seen(parsed, other)
    assert fast.sql(AUDITED) == parsed.sql(AUDITED)
    assert fast.sql(STATE) == parsed.sql(STATE)


def _seen(cli: Cli, result: Any) -> tuple[int, str, str]:
    """Exit code and output, with the database's own name (the twins differ there) masked."""
    name = cli.dsn.rsplit("dbname=", 1)[1]
    return result.exit_code, result.stdout.replace(name, "DB"), result.stderr.replace(name, "DB")


def test_the_parser_still_reports_what_the_fast_path_leaves_to_it(twins: tuple[Cli, Cli]) -> None:
    fast, _ = twins
    result = fast("kill", "KS5", "-r", "x", "-y", "-o", "yaml")
    assert result.exit_code == 2 and "'yaml' is not one of" in result.stderr
    listed = fast("kill", "--list")
    assert listed.exit_code == 0 and "KS5" in listed.stdout
    assert fast.fast_runs == 0


IMPORTS = ("typer", "click", "rich", "pydantic", "yaml", "tabulate")


def _process(cli: Cli, cache: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """flagctl as an operator starts it (``python -m flagctl``), with the modules it imported."""
    env = {
        **os.environ,
        "FLAGCTL_DSN": cli.dsn,
        "FLAGCTL_MANIFEST": str(cli.manifest),
        "FLAGCTL_CACHE_DIR": str(cache),
    }
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "flagctl", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    imported = {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in result.stderr.splitlines()
        if line.startswith("import time:")
    }
    return result, imported & set(IMPORTS)


def test_a_kill_process_imports_no_framework_and_no_validator(groups: Cli, tmp_path: Path) -> None:
    cold, heavy = _process(groups, tmp_path, "kill", "KS4", "-r", "INC-1", "-y")  # a rollout setting
    assert cold.returncode == 0, cold.stderr
    assert heavy == {"pydantic", "yaml"}  # first sight of this manifest: validated, then cached
    # KS5 reads back the engaged KS4's rollout setting too: by hand, not with a validator
    warm, heavy = _process(groups, tmp_path, "kill", "KS5", "-r", "INC-1", "-y", "-o", "json")
    assert warm.returncode == 0, warm.stderr
    assert heavy == set()
    assert json.loads(warm.stdout)["applied"] is True
    listed, heavy = _process(groups, tmp_path, "kill", "--list")  # not the fast path: the parser's
    assert listed.returncode == 0 and "typer" in heavy


def test_a_kill_process_ends_with_its_exit_code_and_all_its_output(groups: Cli, tmp_path: Path) -> None:
    """The fast path ends the process without the interpreter's teardown: what it printed
    still arrives whole, and its exit code is the command's."""
    refused, _ = _process(groups, tmp_path, "kill", "KS9", "-r", "x", "-y", "-o", "json")
    assert refused.returncode == 2
    assert json.loads(refused.stdout)["error"]["exit_code"] == 2
    assert "unknown kill switch 'KS9'" in refused.stderr
    done, _ = _process(groups, tmp_path, "kill", "KS5", "-r", "x", "-y")
    assert done.returncode == 0 and done.stdout.rstrip().endswith("(FLAGCTL_DSN)"), done.stdout
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(1,)]
