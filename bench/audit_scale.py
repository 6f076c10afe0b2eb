"""`flagctl status` and a kill at 10,000 against 1,000,000 rows of audit history, in the same
run: both read the last audited value of each flag (the drift check), which must cost what
the flags are, not the history.

    python bench/audit_scale.py [--small 10000] [--large 1000000] [--runs 10] [--dsn DSN]

Two throw-away databases of the WS8 example on the embedded PostgreSQL (or --dsn's server),
their history padded with old rows of the flag; fresh `flagctl` processes take turns.
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
from _db import admin_dsn, compile_flagctl, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "flagctl" / "examples" / "ws8" / "flagctl.yaml"
SCHEMA = (ROOT / "flagctl" / "examples" / "ws8" / "schema.sql").read_text()
FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def flagctl(dsn: str, *args: str) -> float:
    env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(MANIFEST)}
    start = time.perf_counter()
    done = subprocess.run([FLAGCTL, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"flagctl {' '.join(args)}: {done.stderr}")
    return (time.perf_counter() - start) * 1000


# Old rows of the flag, as a plain SQL change of its row writes them (the value it has).
HISTORY = (
    "INSERT INTO flagctl.audit (actor, action, system, flag, scope, target, before, after, reason)"
    " SELECT 'bench', 'sql.update', 'phase3', 'p3_advisory', NULL, 'p3_feature_state',"
    """ '{"enabled": false, "rollout_percent": 0}', '{"enabled": false, "rollout_percent": 0}', 'old'"""
    " FROM generate_series(1, %s)"
)


def pad(dsn: str, rows: int) -> float:
    """A WS8 database with ``rows`` old audit rows of its flag, sealed and analysed; the
    seconds the sealing of them took, as a backlog (the seal held while they were written)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(SCHEMA.encode())
    flagctl(dsn, "db", "init")
    with psycopg.connect(dsn, autocommit=True) as conn, psycopg.connect(dsn) as holder:
        holder.execute("SELECT flagctl.audit_seal(true, 0)")  # their at-commit seal skips
        conn.execute(HISTORY, (rows,))  # as the schema's owner: old history
        holder.rollback()
        started = time.perf_counter()
        conn.execute("SELECT flagctl.audit_seal(true)")
        sealing = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE flagctl.audit")
    return sealing


def prepare(dsn: str, rows: int) -> None:
    pad(dsn, rows)
    flagctl(dsn, "stage", "set", "p3", "canary", "-r", "bench", "-y")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dsn")
    args = parser.parse_args()
    compile_flagctl()
    admin = admin_dsn(args.dsn)
    times: dict[tuple[str, int], list[float]] = {}
    with throwaway_database(admin) as small, throwaway_database(admin) as large:
        started = time.perf_counter()
        prepare(small, args.small)
        prepare(large, args.large)
        print(f"history written in {time.perf_counter() - started:.0f} s")
        for _ in range(args.runs):
            for dsn, rows in ((small, args.small), (large, args.large)):
                times.setdefault(("status", rows), []).append(flagctl(dsn, "status"))
                times.setdefault(("kill", rows), []).append(
                    flagctl(dsn, "kill", "p3-off", "-r", "bench", "-y")
                )
                flagctl(dsn, "release", "p3-off", "-r", "bench", "-y")
    print(f"median wall time of {args.runs} fresh processes each, taking turns (ms)")
    for command in ("status", "kill"):
        small_ms = statistics.median(times[(command, args.small)])
        large_ms = statistics.median(times[(command, args.large)])
        print(f"  {command:7} {args.small:>9,} rows {small_ms:7.1f}   {args.large:>9,} rows {large_ms:7.1f}"
              f"   ratio {large_ms / small_ms:5.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
