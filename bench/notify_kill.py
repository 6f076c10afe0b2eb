"""A dead notification sink does not slow a kill: `flagctl kill` on a system with no sink
next to the same kill on a system whose sinks are dead (a closed port on the loopback),
with `flagctl notify deliver --follow` retrying them in the background throughout.

Runs alternate (quiet, notified, quiet, …) in the same run against the same warm server;
each is a fresh process, as an operator would start it; the state is reset between runs
(untimed). Prints the medians and their ratio:

    python bench/notify_kill.py [--runs 20] [--dsn DSN]
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
MANIFEST = """\
version: 1
system: {system}
flags:
  checkout: {{type: rollout, default: {{enabled: true, percent: 50}}}}
kill_switches:
  co-off: {{level: 5, set: {{checkout: {{enabled: false, percent: 0}}}}}}
"""
SINKS = """\
notifications:
  sinks:
    hook: {kind: cloudevents, url_env: BENCH_HOOK_URL, secret_env: BENCH_HOOK_SECRET}
    chat: {kind: slack, url_env: BENCH_HOOK_URL}
"""


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--dsn", help="an existing server's admin DSN (default: the embedded one)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="flagctl-bench-notify-"))
    with throwaway_database(admin_dsn(args.dsn)) as dsn:
        envs = {}
        for label, system, sinks in (("no sink", "quiet", ""), ("dead sinks", "notified", SINKS)):
            path = folder / f"{system}.yaml"
            path.write_text(MANIFEST.format(system=system) + sinks)
            envs[label] = {
                **os.environ,
                "FLAGCTL_DSN": dsn,
                "FLAGCTL_MANIFEST": str(path),
                "FLAGCTL_CACHE_DIR": str(folder / "cache"),
                "BENCH_HOOK_URL": dead_url(),
                "BENCH_HOOK_SECRET": "whsec_" + base64.b64encode(b"bench key").decode(),
            }
            subprocess.run([FLAGCTL, "db", "init"], env=envs[label], check=True, capture_output=True)
        deliverer = subprocess.Popen(
            [FLAGCTL, "notify", "deliver", "--follow", "--interval", "0.2"],
            env=envs["dead sinks"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            samples = _alternate(envs, args.runs)
        finally:
            deliverer.terminate()
            deliverer.wait(timeout=10)
        with psycopg.connect(dsn) as conn:
            failed = conn.execute(
                "SELECT count(*) FROM flagctl.notify_delivery WHERE outcome = 'failed'"
            ).fetchone()
    quiet, notified = (statistics.median(samples[k]) for k in ("no sink", "dead sinks"))
    print(f"flagctl kill, median wall time of {args.runs} runs each, alternating, same server:")
    for label, times in samples.items():
        print(
            f"  {label:12s} {statistics.median(times) * 1000:8.1f} ms  "
            f"(min {min(times) * 1000:.1f}, max {max(times) * 1000:.1f})"
        )
    print(f"  ratio dead sinks / no sink: {notified / quiet:.3f}")
    print(f"  (the background deliverer logged {failed[0] if failed else 0} failed attempts meanwhile)")


def _alternate(envs: dict[str, dict[str, str]], runs: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {label: [] for label in envs}
    for _ in range(runs):
        for label, env in envs.items():
            subprocess.run(
                [FLAGCTL, "release", "co-off", "-r", "bench reset", "-y"],
                env=env,
                check=True,
                capture_output=True,
            )
            started = time.perf_counter()
            subprocess.run(
                [FLAGCTL, "kill", "co-off", "-r", "bench", "-y"], env=env, check=True, capture_output=True
            )
            samples[label].append(time.perf_counter() - started)
    return samples


if __name__ == "__main__":
    main()
