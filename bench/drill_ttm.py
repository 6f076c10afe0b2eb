"""Time-to-mitigate in drills: every Groups kill switch (KS1–KS5) and a rollback drill of
the WS8 ladder, run for real on one server, several times; per step, p50 and max of
"change committed" and "effect proved" (milliseconds from the step's command start),
as `flagctl drill` measures and records them.

    python bench/drill_ttm.py [--runs 5] [--dsn DSN]

Without --dsn a throw-away database is created on the embedded PostgreSQL. The Groups
switches have no kill proof window (the effect is proved by reading back every flag the
switch sets); a WS8 kill drill would add its --window and --stats-lag (10 s + 11 s) to
"proved".
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "flagctl" / "examples"
FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def flagctl(dsn: str, manifest: Path, *args: str) -> dict:  # type: ignore[type-arg]
    env = {"FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(manifest), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([FLAGCTL, *args], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"flagctl {' '.join(args)} failed ({done.returncode}): {done.stderr}")
    return json.loads(done.stdout) if done.stdout.strip().startswith("{") else {}


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dsn", help="a server to create the throw-away databases on")
    args = parser.parse_args()
    admin = admin_dsn(args.dsn)
    steps: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    reports = tempfile.mkdtemp(prefix="drill-bench-")
    with throwaway_database(admin) as groups, throwaway_database(admin) as ws8:
        manifest = EXAMPLES / "groups" / "flagctl.yaml"
        flagctl(groups, manifest, "db", "init")
        flagctl(groups, manifest, "stage", "set", "groups", "stage0-dogfood", "-r", "bench", "-y")
        ws8_manifest = EXAMPLES / "ws8" / "flagctl.yaml"
        with psycopg.connect(ws8, autocommit=True) as conn:
            conn.execute((EXAMPLES / "ws8" / "schema.sql").read_text().encode())
        flagctl(ws8, ws8_manifest, "db", "init")
        flagctl(
            ws8,
            ws8_manifest,
            "stage",
            "set",
            "p3",
            "broad",
            "--percent",
            "30",
            "--force",
            "-r",
            "bench",
            "-y",
        )
        for _ in range(args.runs):
            for switch in ("KS1", "KS2", "KS3", "KS4", "KS5"):
                run = flagctl(groups, manifest, "drill", "kill", switch, "--report", f"{reports}/k.md",
                              "-r", "bench", "-y", "-o", "json")  # fmt: skip
                collect(steps, f"{switch} ", run)
            run = flagctl(ws8, ws8_manifest, "drill", "rollback", "p3", "--report", f"{reports}/r.md",
                          "-r", "bench", "-y", "-o", "json")  # fmt: skip
            collect(steps, "p3 ", run)
    print(f"drill time-to-mitigate, {args.runs} runs each (ms from the step's command start)")
    print(f"{'step':44} {'committed p50':>14} {'max':>8} {'proved p50':>11} {'max':>8}")
    for name, timing in steps.items():
        committed, proved = timing["committed"], timing["proved"]
        print(f"{name:44} {statistics.median(committed):14.1f} {max(committed):8.1f} "
              f"{statistics.median(proved):11.1f} {max(proved):8.1f}")  # fmt: skip


def collect(steps: dict[str, dict[str, list[float]]], prefix: str, run: dict) -> None:  # type: ignore[type-arg]
    if run.get("verdict") != "passed":
        raise SystemExit(f"drill did not pass: {run}")
    for step in run["steps"]:
        name = prefix + step["name"].split(" (scope")[0]
        steps[name]["committed"].append(step["committed_ms"])
        steps[name]["proved"].append(step["proved_ms"])


if __name__ == "__main__":
    main()
