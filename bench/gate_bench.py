"""The gate in an application process: decision latency against the Unleash engine
(yggdrasil-engine) and the GrowthBook SDK, and time-to-mitigate — from the start of the
`flagctl kill` process until every one of N gate clients (separate processes) has seen
the flag off.

    python bench/gate_bench.py [--decisions 200000] [--rounds 20] [--clients 1,10,50] [--dsn DSN]

Needs the bench extra (`pip install -e '.[bench]'`; `make bench` does it). Without --dsn a
throw-away database is created on the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import os
import select
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
FLAG = "p3_advisory"
PERCENT = 25

CLIENT = """
import sys, time
from flagctl.gate import Gate
gate = Gate(sys.argv[1], manifest=sys.argv[2], application="bench-client", check=__import__("datetime").timedelta(hours=1))
gate.wait_ready(60)
def changed(seq):
    print(("off" if not gate.value("p3_advisory").enabled else "on"), repr(time.time()), flush=True)
gate.on_change(changed)
print("ready", flush=True)
sys.stdin.read()
gate.close()
"""


def quantiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def flagctl(dsn: str, *args: str) -> None:
    env = {**os.environ, "FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": str(MANIFEST)}
    subprocess.run([FLAGCTL, *args], env=env, check=True, capture_output=True)


def decisions(dsn: str, count: int) -> None:
    from growthbook import GrowthBook
    from yggdrasil_engine.engine import UnleashEngine

    from flagctl.gate import Gate

    subjects = [str(i) for i in range(count)]
    timed: dict[str, list[float]] = {}
    answers: dict[str, list[bool]] = {}

    with Gate(dsn, manifest=MANIFEST, register=False) as gate:
        gate.wait_ready()
        timed["flagctl gate"], answers["flagctl gate"] = _time(lambda s: gate.enabled(FLAG, s), subjects)

    engine = UnleashEngine()
    engine.take_state(json.dumps({"version": 1, "features": [{
        "name": FLAG, "enabled": True, "strategies": [{"name": "flexibleRollout", "parameters": {
            "rollout": str(PERCENT), "stickiness": "userId", "groupId": FLAG}}]}]}))  # fmt: skip
    timed["unleash (yggdrasil-engine)"], answers["unleash (yggdrasil-engine)"] = _time(
        lambda s: bool(engine.is_enabled(FLAG, {"userId": s}).is_enabled), subjects
    )

    gb = GrowthBook(features={FLAG: {"defaultValue": False, "rules": [
        {"force": True, "coverage": PERCENT / 100, "hashAttribute": "id"}]}})  # fmt: skip

    def growthbook(subject: str) -> bool:
        gb.set_attributes({"id": subject})
        return bool(gb.is_on(FLAG))

    timed["growthbook"], answers["growthbook"] = _time(growthbook, subjects)

    ours = answers["flagctl gate"]
    p50_ours, p99_ours = quantiles(timed["flagctl gate"])
    print(f"decision latency, {count} subjects at {PERCENT}%, snapshot warm, one core (ns per decision)")
    print(
        f"{'engine':30} {'p50':>8} {'p99':>8} {'decisions/s':>12} {'p50 ×':>7} {'p99 ×':>7} {'on':>7} {'agrees':>7}"
    )
    for name, samples in timed.items():
        p50, p99 = quantiles(samples)
        per_second = 1e9 / statistics.mean(samples)
        agree = sum(a == b for a, b in zip(answers[name], ours, strict=True)) / count
        on = sum(answers[name]) / count
        print(
            f"{name:30} {p50:8.0f} {p99:8.0f} {per_second:12,.0f} {p50 / p50_ours:7.2f} {p99 / p99_ours:7.2f}"
            f" {on:7.1%} {agree:7.1%}"
        )
    print(f"flagctl gate: p50 {p50_ours / 1000:.2f} µs, p99 {p99_ours / 1000:.2f} µs (goal: p99 ≤ 2 µs)")
    for name, goal in (("growthbook", 3), ("unleash (yggdrasil-engine)", 10)):
        p50, p99 = quantiles(timed[name])
        print(
            f"flagctl gate is {p50 / p50_ours:.1f}× faster than {name} at p50, {p99 / p99_ours:.1f}× at p99"
            f" (goal: ≥ {goal}×)"
        )


def _time(decide, subjects: list[str]) -> tuple[list[float], list[bool]]:  # type: ignore[no-untyped-def]
    for subject in subjects[:2000]:  # warm up
        decide(subject)
    clock = time.perf_counter_ns
    samples, results = [], []
    for subject in subjects:
        start = clock()
        result = decide(subject)
        samples.append(clock() - start)
        results.append(result)
    return samples, results


def time_to_mitigate(dsn: str, clients: int, rounds: int) -> tuple[float, float]:
    command = [sys.executable, "-c", CLIENT, dsn, str(MANIFEST)]
    procs = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(clients)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        if clients == max(CLIENT_COUNTS):
            connection_cost(dsn, procs)
        results = []
        for _ in range(rounds):
            start = time.time()
            flagctl(dsn, "kill", "p3-off", "-r", "bench", "-y")
            seen = _wait_all(procs, "off")
            results.append((max(seen) - start) * 1000)
            flagctl(dsn, "release", "p3-off", "-r", "bench", "-y")
            _wait_all(procs, "on")
        return quantiles(results)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()


CLIENT_COUNTS: list[int] = []


def connection_cost(dsn: str, procs: list[subprocess.Popen[str]]) -> None:
    """Memory per gate: its PostgreSQL backend (unique set size) and its own process."""
    import psutil

    with psycopg.connect(dsn) as conn:
        pids = [
            r[0]
            for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = 'flagctl-gate'")
        ]
    backend = [psutil.Process(pid).memory_full_info().uss for pid in pids]
    client = [psutil.Process(p.pid).memory_info().rss for p in procs]
    COST.append(
        f"connection cost, {len(pids)} gates: PostgreSQL backend {statistics.median(backend) / 2**20:.1f} MiB "
        f"unique memory each (median), gate process {statistics.median(client) / 2**20:.1f} MiB resident each"
    )


COST: list[str] = []


def _wait_all(procs: list[subprocess.Popen[str]], state: str) -> list[float]:
    """Each client's time of seeing ``state`` (lines 'off|on TIME')."""
    seen: dict[int, float] = {}
    streams = {proc.stdout.fileno(): (i, proc) for i, proc in enumerate(procs) if proc.stdout}
    deadline = time.time() + 60
    while len(seen) < len(procs):
        ready, _, _ = select.select(list(streams), [], [], max(0.0, deadline - time.time()))
        if not ready:
            raise SystemExit(f"only {len(seen)} of {len(procs)} clients saw {state} within 60 s")
        for fd in ready:
            i, proc = streams[fd]
            assert proc.stdout is not None
            word, when = proc.stdout.readline().split()
            if word == state:
                seen[i] = float(when)
    return list(seen.values())


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--decisions", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--clients", default="1,10,50")
    parser.add_argument("--dsn", help="a server to create the throw-away database on")
    args = parser.parse_args()
    with throwaway_database(admin_dsn(args.dsn)) as dsn:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(SCHEMA.encode())
        flagctl(dsn, "db", "init")
        flagctl(dsn, "stage", "set", "p3", "broad", "--percent", str(PERCENT), "--force", "-r", "bench", "-y")
        decisions(dsn, args.decisions)
        print()
        print(
            f"time-to-mitigate: start of `flagctl kill` → every gate client saw it off ({args.rounds} kills, ms)"
        )
        print(f"{'clients':>8} {'p50':>8} {'p99':>8}")
        CLIENT_COUNTS.extend(int(n) for n in args.clients.split(","))
        for count in CLIENT_COUNTS:
            p50, p99 = time_to_mitigate(dsn, count, args.rounds)
            print(f"{count:8d} {p50:8.0f} {p99:8.0f}")
        print(*COST, sep="\n")


if __name__ == "__main__":
    main()
