"""The embedded PostgreSQL end to end: `local status/start/stop` as subprocesses of the
installed script, and `flagctl demo` on it (in-process, with a fake sleeper so the proof's
window costs no wall time; tests/test_wheel.py runs the demos from an installed wheel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from flagctl.cli.app import app
from flagctl.cli.env import Capabilities, Environment
from tests.conftest import FakeClock, FakeSleeper

FLAGCTL = str(Path(sys.executable).parent / "flagctl")


@pytest.fixture
def data_dir() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="flagctl-embedded-"))
    try:
        yield root / "pg"
    finally:
        subprocess.run([FLAGCTL, "local", "stop"], env=_env(root / "pg"), capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "FLAGCTL_"))}
    return {**env, "FLAGCTL_DATA_DIR": str(data_dir), "FLAGCTL_CONFIG": os.devnull}


def flagctl(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLAGCTL, *args],
        env=_env(data_dir),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
    )


def in_process(data_dir: Path, *args: str) -> Any:
    env = _env(data_dir)
    sleeper = FakeSleeper(FakeClock())
    obj = Environment(Capabilities(environ=env, sleep=sleeper, stdin_isatty=False, argv=["flagctl", *args]))
    result = CliRunner().invoke(app, list(args), env=env, obj=obj)
    return result


def test_local_lifecycle_and_demo(data_dir: Path) -> None:
    assert json.loads(flagctl(data_dir, "local", "status", "-o", "json").stdout)["running"] is False

    demo = in_process(data_dir, "demo")
    assert demo.exit_code == 0, demo.stdout + demo.stderr
    assert "demo complete" in demo.stdout
    assert "canary has baked 0s of its 30m" in demo.stderr  # the bake refusal really happened
    assert "guardrail no_contract_violations: 1 (max 0) FAIL" in demo.stderr
    assert "audit chain intact" in demo.stdout
    assert "pass  kill: no phase table was written while killed" in demo.stdout
    assert "rolled back: engage kill switch p3-off" in demo.stdout

    recsys = in_process(data_dir, "demo", "recsys")
    assert recsys.exit_code == 0, recsys.stdout + recsys.stderr
    assert "rolled back: apply profile emergency" in recsys.stdout
    assert "state RECOVERY_VERIFY → NORMAL" in recsys.stdout

    running = json.loads(flagctl(data_dir, "local", "status", "-o", "json").stdout)
    demo_dsn = running["dsn"].replace("dbname=flagctl", "dbname=flagctl_demo")
    ws8_manifest = str(Path(__file__).resolve().parents[1] / "flagctl" / "examples" / "ws8" / "flagctl.yaml")

    # The demo's simulated clock ran 31 minutes ahead; nothing it recorded is in the future.
    state = flagctl(
        data_dir, "--dsn", demo_dsn, "--manifest", ws8_manifest, "rollback", "--status", "-o", "json"
    )
    since = datetime.fromisoformat(json.loads(state.stdout)["since"])
    assert since <= datetime.now(UTC)
    shown = flagctl(data_dir, "--dsn", demo_dsn, "--manifest", ws8_manifest, "rollback", "--status").stdout
    assert "ROLLED_BACK for " in shown and "for -" not in shown
    assert running["running"] is True and running["version"] == "18"

    # The demo database is left for the reader to explore, with the same commands.
    dsn = running["dsn"].replace("dbname=flagctl", "dbname=flagctl_demo")
    manifest = str(Path(__file__).resolve().parents[1] / "flagctl" / "examples" / "ws8" / "flagctl.yaml")
    status = flagctl(data_dir, "--dsn", dsn, "--manifest", manifest, "status", "-o", "json")
    assert json.loads(status.stdout)["flags"][0]["value"] == {
        "enabled": False,
        "percent": 0,
    }  # watch killed it

    # With no DSN at all, flagctl uses the embedded server's own database.
    schema = flagctl(data_dir, "db", "status", "-o", "json")
    assert schema.returncode == 0, schema.stderr
    assert json.loads(schema.stdout)["installed"] is False

    stopped = flagctl(data_dir, "local", "stop", "-o", "json")
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["running"] is False
