"""Fleet fan-out: `flagctl --all-targets kill KS5` over 8 local databases against the same
kill on 1, wall time of the whole command, measured in the same run.

    python bench/fanout_bench.py [--runs 5] [--targets 8] [--dsn DSN]

Without --dsn the databases are created on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

from _db import admin_dsn, compile_flagctl, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "flagctl" / "examples" / "groups" / "flagctl.yaml"
FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def flagctl(config: Path, *args: str) -> float:
    env = {**os.environ, "FLAGCTL_CONFIG": str(config)}
    env.pop("FLAGCTL_DSN", None)
    start = time.perf_counter()
    subprocess.run([FLAGCTL, *args], env=env, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--targets", type=int, default=8)
    parser.add_argument("--dsn", help="a server to create the throw-away databases on")
    args = parser.parse_args()
    admin = admin_dsn(args.dsn)
    with ExitStack() as stack:
        dsns = [stack.enter_context(throwaway_database(admin)) for _ in range(args.targets)]
        config = Path(tempfile.mkdtemp(prefix="fanout-bench-")) / "config.yaml"
        config.write_text(
            "targets:\n"
            + "".join(f"  t{i}: {{dsn: '{dsn}', manifest: '{MANIFEST}'}}\n" for i, dsn in enumerate(dsns))
        )
        for i in range(args.targets):
            flagctl(config, "--target", f"t{i}", "db", "init")
        one, every = [], []
        for _ in range(args.runs):
            one.append(flagctl(config, "--target", "t0", "kill", "KS5", "-r", "bench", "-y"))
            flagctl(config, "--target", "t0", "release", "KS5", "-r", "bench", "-y")
            every.append(flagctl(config, "--all-targets", "kill", "KS5", "-r", "bench", "-y"))
            flagctl(config, "--all-targets", "release", "KS5", "-r", "bench", "-y")
    p1, pn = statistics.median(one), statistics.median(every)
    print(f"fan-out: kill KS5, wall ms of the whole command, median of {args.runs}")
    print(f"  1 target:  {p1:7.0f}")
    print(
        f"  {args.targets} targets: {pn:7.0f}   ({pn / p1:.2f}× one target; {args.targets} kills in parallel)"
    )


if __name__ == "__main__":
    main()
