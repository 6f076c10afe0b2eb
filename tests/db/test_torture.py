"""Torture: several processes at once run random kills, releases, stage moves, sets,
profile applies and out-of-band SQL against one database. Afterwards nothing is lost and
nothing is invented: every command that reported a change is in the audit trail, no
command that failed is, the trail replays to the live state (no drift), the chain
verifies, and every engaged kill still holds (a re-kill finds nothing to re-assert once
the out-of-band writes are undone).

``make test`` runs a small variant; ``make torture`` the full one (8 processes × 200).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests import torture
from tests.conftest import Cli

ROOT = Path(__file__).resolve().parents[2]


def run(make_cli, tmp_path: Path, workers: int, ops: int) -> None:  # type: ignore[no-untyped-def]
    cli: Cli = make_cli(torture.MANIFEST)
    (cli.manifest.parent / "profiles").mkdir(exist_ok=True)
    for name, text in torture.PROFILES.items():
        (cli.manifest.parent / "profiles" / f"{name}.yaml").write_text(text)
    assert cli("db", "init").exit_code == 0
    seed = int(os.environ.get("FLAGCTL_TORTURE_SEED", "1"))
    worker = [sys.executable, "-m", "tests.torture", cli.dsn, str(cli.manifest)]
    procs = [
        subprocess.Popen([*worker, str(w), str(ops), str(seed)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        for w in range(workers)
    ]
    records = []
    for proc in procs:
        out, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0
        records.extend(json.loads(line) for line in out.splitlines())
    assert len(records) == workers * ops

    commands = [r for r in records if "actor" in r]
    crashes = [r for r in commands if r["crash"] or "Traceback" in r["stderr"]]
    assert not crashes, crashes[0]
    codes = Counter(r["exit"] for r in commands)
    assert set(codes) <= {0, 1, 4}, [r for r in commands if r["exit"] not in (0, 1, 4)][:3]
    assert codes[0] > len(commands) // 3, codes  # mostly real work, not a pile of conflicts

    # No lost update, no invented one: the actors that reported a change are exactly the
    # actors the audit trail has changes from.
    reported = {r["actor"] for r in commands if r["exit"] == 0 and r["applied"]}
    audited = {
        actor
        for (actor,) in cli.sql(
            "SELECT DISTINCT actor FROM flagctl.audit WHERE actor LIKE 'w%%-%%' AND action NOT LIKE '%%.refused'",
        )
    }
    assert audited == reported, (sorted(audited - reported)[:5], sorted(reported - audited)[:5])

    status = json.loads(cli("status", "-o", "json").stdout)
    assert status["drift"] == []  # the trail replays to the live state
    verified = cli("audit", "verify")
    assert verified.exit_code == 0, verified.stderr

    # Every engaged kill holds: re-kill (re-asserting what SQL undid), then nothing is left to do.
    for engaged in {(e["switch"], e["scope"]) for e in status["kill_switches_engaged"]}:
        switch, scope = engaged
        assert cli("kill", switch, "--scope", scope, "-r", "check", "-y").exit_code == 0
        again = cli("kill", switch, "--scope", scope, "-r", "check", "-y")
        assert again.exit_code == 0 and "already engaged" in again.stdout, again.stdout
    print(f"torture {workers}×{ops}: exit codes {dict(codes)}, {len(reported)} changes audited")


def test_torture_small(make_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run(make_cli, tmp_path, workers=4, ops=30)


@pytest.mark.slow
def test_torture_full(make_cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    run(make_cli, tmp_path, workers=8, ops=200)
