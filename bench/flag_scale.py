"""Ten thousand flags: `flagctl status`, a one-flag kill, a kill of a switch over every flag,
a cold manifest load and the gate's first snapshot, at 10, 1,000 and 10,000 flags in one
manifest; and a global kill of one flag holding 10,000 scoped overrides next to one without.

    python bench/flag_scale.py [--sizes 10,1000,10000] [--overrides 10000] [--runs 3] [--dsn DSN]

A throw-away database per size on the embedded PostgreSQL (or --dsn's server), the
manifest in a temporary folder (its own manifest cache); fresh `flagctl` processes, the
sizes taking turns. Prints the medians and the ratios measured in this run: status and a
one-flag kill at the largest size ÷ the smallest, and the global kill (and release) with the
overrides ÷ without.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
GO = ("-r", "bench", "-y")


def manifest(count: int) -> str:
    """``count`` bool flags (f0 scoped by workspace), a switch over f0 alone and one over all."""
    flags = "".join(f"  f{i}: {{type: bool, default: true}}\n" for i in range(1, count))
    every = ", ".join(f"f{i}: false" for i in range(count))
    return (
        "version: 1\nsystem: scale\nflags:\n  f0: {type: bool, default: true, scopes: [workspace]}\n"
        f"{flags}kill_switches:\n  one: {{level: 1, set: {{f0: false}}}}\n"
        f"  every: {{level: 5, set: {{{every}}}}}\n"
    )


class Site:
    """One database and its manifest, and fresh flagctl processes on them."""

    def __init__(self, dsn: str, folder: Path, count: int) -> None:
        self.dsn, self.count = dsn, count
        self.path = folder / "flagctl.yaml"
        self.path.write_text(manifest(count))
        self.cache = folder / "cache"
        self.env = {
            **os.environ,
            "FLAGCTL_DSN": dsn,
            "FLAGCTL_MANIFEST": str(self.path),
            "FLAGCTL_CACHE_DIR": str(self.cache),
        }
        self.run("db", "init")

    def run(self, *args: str) -> float:
        started = time.perf_counter()
        done = subprocess.run([FLAGCTL, *args], env=self.env, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"flagctl {' '.join(args)} ({self.count} flags): {done.stderr}")
        return time.perf_counter() - started

    def python(self, code: str, *, cache: bool) -> float:
        """Seconds ``code`` takes in a fresh interpreter (its own printed figure)."""
        env = {**self.env, "FLAGCTL_CACHE_DIR": str(self.cache) if cache else ""}
        done = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        return float(done.stdout.split()[-1])

    def overrides(self, count: int) -> None:
        """``count`` workspace overrides of f0, on: written as the schema's owner (plain SQL, audited)."""
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(
                "INSERT INTO flagctl.flag_state (system, flag, scope, value)"
                " SELECT 'scale', 'f0', 'workspace:' || i, 'true' FROM generate_series(1, %s) AS i",
                (count,),
            )
            conn.execute("SELECT flagctl.audit_seal(true)")
            conn.execute("VACUUM ANALYZE flagctl.flag_state, flagctl.audit")


LOAD = (
    "import os, time; t = time.perf_counter()\n"
    "from flagctl.model.cache import ManifestCache\n"
    "from flagctl.model.manifest import load_manifest\n"
    "load_manifest({path!r}, ManifestCache.from_environ(os.environ)); print(time.perf_counter() - t)\n"
)
GATE = (
    "import time; t = time.perf_counter()\n"
    "from flagctl.gate import Gate\n"
    "g = Gate({dsn!r}, manifest={path!r}, register=False); assert g.wait_ready(120)\n"
    "print(time.perf_counter() - t); g.close()\n"
)


@contextmanager
def site(stack: ExitStack, admin: str, count: int) -> Iterator[Site]:
    dsn = stack.enter_context(throwaway_database(admin))
    folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="flagctl-scale-")))
    yield Site(dsn, folder, count)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10,1000,10000")
    parser.add_argument("--overrides", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dsn")
    args = parser.parse_args()
    compile_flagctl()
    admin = admin_dsn(args.dsn)
    sizes = [int(n) for n in args.sizes.split(",")]
    small, large = sizes[0], sizes[-1]
    times: dict[tuple[str, int], list[float]] = {}

    def note(what: str, count: int, seconds: float) -> None:
        times.setdefault((what, count), []).append(seconds)

    with ExitStack() as stack:
        sites = {}
        for count in sizes:
            with site(stack, admin, count) as made:
                sites[count] = made
        plain = sites[small]
        with site(stack, admin, small) as crowded:
            crowded.overrides(args.overrides)
        for _ in range(args.runs):
            for count, one in sites.items():
                note("status", count, one.run("status"))
                note("kill one flag", count, one.run("kill", "one", *GO))
                one.run("release", "one", *GO)
                note("kill every flag", count, one.run("kill", "every", *GO))
                note("release every flag", count, one.run("release", "every", *GO))
                load = LOAD.format(path=str(one.path))
                note("manifest load, cold", count, one.python(load, cache=False))
                note("manifest load, cached", count, one.python(load, cache=True))
                gate = GATE.format(dsn=one.dsn, path=str(one.path))
                note("gate first snapshot", count, one.python(gate, cache=True))
            for label, where in (("without", plain), ("with", crowded)):
                note(f"global kill {label} overrides", 0, where.run("kill", "one", *GO))
                note(f"global release {label} overrides", 0, where.run("release", "one", *GO))
        with psycopg.connect(crowded.dsn) as conn:
            rows = conn.execute(
                "SELECT count(*) FROM flagctl.audit WHERE action IN ('kill', 'release')"
                " AND txid = (SELECT max(txid) FROM flagctl.audit WHERE action = 'kill')"
            ).fetchone()
            left = conn.execute("SELECT count(*) FROM flagctl.audit_unsealed").fetchone()

    med = {key: statistics.median(value) for key, value in times.items()}
    print(f"median wall time of {args.runs} fresh processes each (s)")
    for what in dict.fromkeys(w for w, _ in times if _):
        cells = "  ".join(f"{count:>6,} flags {med[(what, count)]:6.2f}" for count in sizes)
        print(f"  {what:24} {cells}")
    for what in ("status", "kill one flag", "kill every flag"):
        print(f"  {what} at {large:,} ÷ at {small:,}: {med[(what, large)] / med[(what, small)]:.2f}")
    for what in ("kill", "release"):
        with_ = med[(f"global {what} with overrides", 0)]
        without = med[(f"global {what} without overrides", 0)]
        print(f"  global {what} of one flag: {with_:.2f} s with {args.overrides:,} scoped overrides,"
              f" {without:.2f} s without: ratio {with_ / without:.2f}")  # fmt: skip
    print(f"  audit rows written by the last global kill with the overrides: {rows[0] if rows else '?'}")
    print(f"  audit rows left unsealed at the end: {left[0] if left else '?'}")


if __name__ == "__main__":
    main()
