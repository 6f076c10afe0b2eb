"""CLI start-up: `flagctl --help` against `python -c "import psycopg"` (the floor any
psycopg-based tool pays), measured in the same run, fresh processes, output to a pipe.

    python bench/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _db import compile_flagctl

FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def wall(command: list[str], runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    floor = wall([sys.executable, "-c", "import psycopg"], args.runs)
    helped = wall([FLAGCTL, "--help"], args.runs)
    print(f"start-up, median of {args.runs} fresh processes (ms)")
    print(f"  python -c 'import psycopg': {floor:6.1f}")
    print(f"  flagctl --help:             {helped:6.1f}   ({helped / floor:.2f}× import psycopg)")


if __name__ == "__main__":
    main()
