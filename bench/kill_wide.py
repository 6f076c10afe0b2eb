"""A wide kill: one switch over N flags, `flagctl kill` next to a bare psycopg upsert.

Since the kill is the database's own function (``flagctl.kill``: the catalogue check,
every write read back, the engagement recorded), its cost per flag is what grows with a
big switch. This measures that growth: for each N, a fresh process runs
``flagctl kill off`` and ``flagctl release off`` over N bool flags, next to a bare
psycopg script writing the same N values as one upsert into ``flagctl.flag_state``
(and deleting them again). The ratio per flag should stay flat as N grows:

    python bench/kill_wide.py [--flags 1000,4000,16000] [--runs 3] [--dsn DSN]

Without --dsn a throw-away database is created on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
BARE = "import sys, psycopg\nwith psycopg.connect(sys.argv[1]) as c:\n    c.execute(sys.argv[2].encode())\n"


def wide_manifest(count: int) -> str:
    flags = "".join(f"  f{i}: {{type: bool, default: true}}\n" for i in range(count))
    sets = ", ".join(f"f{i}: false" for i in range(count))
    return f"version: 1\nsystem: wide\nflags:\n{flags}kill_switches:\n  off: {{level: 5, set: {{{sets}}}}}\n"


def run(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def measure(admin: str, count: int, runs: int) -> dict[str, list[float]]:
    with throwaway_database(admin) as dsn, tempfile.TemporaryDirectory(prefix="flagctl-bench-") as tmp:
        manifest = Path(tmp) / "flagctl.yaml"
        manifest.write_text(wide_manifest(count))
        env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(manifest), "FLAGCTL_CACHE_DIR": tmp}
        subprocess.run([FLAGCTL, "db", "init"], env=env, check=True, capture_output=True)
        upsert = (
            "INSERT INTO flagctl.flag_state (system, flag, scope, value) "  # noqa: S608 - bench-only integer
            f"SELECT 'wide', 'f' || i, 'global', 'false' FROM generate_series(0, {count - 1}) AS i "
            "ON CONFLICT (system, flag, scope) DO UPDATE SET value = excluded.value"
        )
        delete = "DELETE FROM flagctl.flag_state WHERE system = 'wide'"
        samples: dict[str, list[float]] = {"kill": [], "release": [], "bare upsert": [], "bare delete": []}
        go = ["-r", "bench", "-y"]
        for _ in range(runs):
            samples["kill"].append(run([FLAGCTL, "kill", "off", *go], env))
            samples["release"].append(run([FLAGCTL, "release", "off", *go], env))
            samples["bare upsert"].append(run([sys.executable, "-c", BARE, dsn, upsert], env))
            samples["bare delete"].append(run([sys.executable, "-c", BARE, dsn, delete], env))
        with psycopg.connect(dsn) as conn:  # the kills did write: every flag back at its default
            left = conn.execute("SELECT count(*) FROM flagctl.flag_state").fetchone()
        assert left == (0,), f"{left} rows left after the last release"
        return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", default="1000,4000,16000", help="comma-separated switch sizes")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dsn", help="a server to create the throw-away databases on")
    args = parser.parse_args()
    compile_flagctl()
    admin = admin_dsn(args.dsn)
    print(
        "| flags | `flagctl kill` | `flagctl release` | bare upsert | bare delete | kill ÷ upsert | kill per flag |"
    )
    print("| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for count in (int(n) for n in args.flags.split(",")):
        med = {k: statistics.median(v) for k, v in measure(admin, count, args.runs).items()}
        print(
            f"| {count} | {med['kill'] * 1000:.0f} ms | {med['release'] * 1000:.0f} ms "
            f"| {med['bare upsert'] * 1000:.0f} ms | {med['bare delete'] * 1000:.0f} ms "
            f"| ×{med['kill'] / med['bare upsert']:.1f} | {med['kill'] / count * 1e6:.0f} µs |",
            flush=True,
        )


if __name__ == "__main__":
    main()
