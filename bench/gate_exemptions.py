"""A gate decision with 10,000 exemptions on the flag against one with none, in the same run
(issue: every decision walked them all, 5 µs → 223 µs).

    python bench/gate_exemptions.py [--exemptions 10000] [--decisions 100000] [--dsn DSN]

Two throw-away databases of the canary example on the embedded PostgreSQL (or --dsn's
server): one without exemptions, one with N allow exemptions for other publishers. Each
gate decides for the same subjects at a publisher scope that has none, snapshot warm.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg
from _db import admin_dsn, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "flagctl" / "examples" / "canary" / "flagctl.yaml"
SCHEMA = ROOT / "flagctl" / "examples" / "canary" / "schema.sql"
FLAG = "canary_feature"


def prepare(dsn: str, exemptions: int) -> None:
    env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(MANIFEST)}
    with psycopg.connect(dsn, autocommit=True) as conn:
        if SCHEMA.exists():
            conn.execute(SCHEMA.read_text().encode())
    flagctl = str(Path(sys.executable).parent / "flagctl")
    done = subprocess.run([flagctl, "db", "init"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"db init failed: {done.stderr}")
    subprocess.run([flagctl, "stage", "set", "canary", "50pct", "--force", "-r", "bench", "-y"], env=env,
                   check=True, capture_output=True)  # fmt: skip
    if exemptions:
        with psycopg.connect(dsn) as conn:  # as the schema's owner, in one declared change
            conn.execute("SELECT flagctl.begin_change('exempt', 'bench', 'bench', NULL, NULL)")
            conn.execute(
                "INSERT INTO flagctl.exemption (system, flag, scope, effect, actor)"
                " SELECT 'torus', %s, 'publisher:' || g, 'allow', 'bench' FROM generate_series(1, %s) g",
                (FLAG, exemptions),
            )


def timed(dsn: str, subjects: list[str]) -> list[int]:
    from flagctl.gate import Gate

    scopes = ["publisher:999999999"]
    with Gate(dsn, manifest=MANIFEST, register=False) as gate:
        gate.wait_ready()
        for subject in subjects[:2000]:
            gate.enabled(FLAG, subject, scopes)
        clock = time.perf_counter_ns
        samples = []
        for subject in subjects:
            start = clock()
            gate.enabled(FLAG, subject, scopes)
            samples.append(clock() - start)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exemptions", type=int, default=10_000)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--dsn")
    args = parser.parse_args()
    subjects = [str(i) for i in range(args.decisions)]
    admin = admin_dsn(args.dsn)
    results = {}
    with throwaway_database(admin) as none, throwaway_database(admin) as many:
        prepare(none, 0)
        prepare(many, args.exemptions)
        for _ in range(2):  # take turns, so drift in the machine's load falls on both
            results.setdefault("no exemptions", []).extend(timed(none, subjects))
            results.setdefault(f"{args.exemptions:,} exemptions", []).extend(timed(many, subjects))
    print(f"gate decision at a scope without an exemption, {2 * args.decisions:,} decisions each (ns)")
    base = statistics.median(results["no exemptions"])
    for name, samples in results.items():
        ordered = sorted(samples)
        p50, p99 = ordered[len(ordered) // 2], ordered[int(len(ordered) * 0.99)]
        print(f"  {name:20} p50 {p50:7,.0f}  p99 {p99:7,.0f}  ratio p50 {p50 / base:5.2f}")


if __name__ == "__main__":
    main()
