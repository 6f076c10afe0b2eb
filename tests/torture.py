"""One torture worker: random flagctl commands and out-of-band SQL against one database.

Run as ``python -m tests.torture DSN MANIFEST WORKER OPS SEED``; prints one JSON line per
operation (actor, command, exit code, whether it reported a change, any traceback).
Several of these run at once in ``tests/db/test_torture.py``.
"""

from __future__ import annotations

import json
import random
import sys
import traceback
from typing import Any

import psycopg
from typer.testing import CliRunner

from flagctl.cli.app import app
from flagctl.cli.env import Capabilities, Environment

TENANTS = ["global", "tenant:1", "tenant:2", "tenant:3"]
SWITCHES = ["k1", "k2", "k3"]
STAGES = ["off", "canary", "half", "full"]
VALUES = {
    "r": ["off", "1%", "10%", "50%"],
    "a": ["on", "off"],
    "b": ["on", "off"],
    "n": ["0", "10", "50", "90"],
}
JSON_VALUES = {
    "r": ['{"enabled": true, "percent": 100}', '{"enabled": false, "percent": 0}'],
    "a": ["true", "false"],
    "b": ["true", "false"],
    "n": ["0", "100"],
}

MANIFEST = """
version: 1
system: torture
profiles: profiles
flags:
  r: {type: rollout, description: the feature, scopes: [tenant]}
  a: {type: bool, description: an adapter, scopes: [tenant]}
  b: {type: bool, default: true, description: sends, scopes: [tenant]}
  n: {type: int, min: 0, max: 100, default: 50, description: throttle, scopes: [tenant]}
ladders:
  main:
    stages:
      - {name: "off", set: {r: {enabled: false, percent: 0}, a: false}}
      - {name: canary, set: {r: {enabled: true, percent: 1}, a: true}}
      - {name: half, set: {r: {enabled: true, percent: 50}, a: true}}
      - {name: full, set: {r: {enabled: true, percent: 100}, a: true}}
kill_switches:
  k1: {level: 1, description: adapter off, set: {a: false}}
  k2: {level: 2, description: feature off, set: {r: {enabled: false}}}
  k3: {level: 3, description: all off, includes: [k1, k2], set: {b: false, n: 0}}
"""
PROFILES = {
    "safe": "system: torture\nvalues: {b: true, n: 10}\n",
    "busy": "system: torture\nvalues: {b: true, n: 90}\n",
}


def command(rng: random.Random) -> list[str]:
    """One random flagctl command line (without the common options)."""
    kind = rng.choices(["kill", "release", "stage", "set", "profile"], [4, 4, 3, 4, 2])[0]
    if kind in ("kill", "release"):
        scope = rng.choice(TENANTS)
        return [kind, rng.choice(SWITCHES), "--scope", scope, *(["--force"] if kind == "release" else [])]
    if kind == "stage":
        return ["stage", "set", "main", rng.choice(STAGES), "--force"]
    if kind == "set":
        flag = rng.choice(sorted(VALUES))
        scope = rng.choice(TENANTS)
        if scope != "global" and rng.random() < 0.25:
            return ["set", flag, "--unset", "--scope", scope]
        return ["set", flag, rng.choice(VALUES[flag]), "--scope", scope, "--force"]
    return ["profile", "apply", rng.choice(sorted(PROFILES))]


def out_of_band(dsn: str, rng: random.Random) -> dict[str, Any]:
    """A write around flagctl, the way a person in psql would make one."""
    flag = rng.choice(sorted(JSON_VALUES))
    value = rng.choice(JSON_VALUES[flag])
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SET lock_timeout = '2s'")
        try:
            conn.execute(
                "UPDATE flagctl.flag_state SET value = %s::jsonb WHERE system = 'torture' AND flag = %s",
                (value, flag),
            )
            return {"sql": True, "exit": 0}
        except psycopg.errors.LockNotAvailable:
            return {"sql": True, "exit": 4}


def main(dsn: str, manifest: str, worker: int, ops: int, seed: int) -> None:
    rng = random.Random(seed * 1000 + worker)
    runner = CliRunner()
    environ = {"FLAGCTL_DSN": dsn, "FLAGCTL_MANIFEST": manifest}
    for op in range(ops):
        if rng.random() < 0.12:
            print(json.dumps(out_of_band(dsn, rng)), flush=True)
            continue
        actor = f"w{worker}-{op}"
        args = ["--lock-timeout", "3s", *command(rng), "-r", "torture", "-y", "--actor", actor, "-o", "json"]
        env = Environment(Capabilities(environ=environ, stdin_isatty=False, argv=["flagctl", *args]))
        result = runner.invoke(app, args, env=environ, obj=env)
        applied = None
        if result.exit_code == 0:
            try:
                applied = json.loads(result.stdout).get("applied")
            except ValueError:
                applied = None
        crashed = ""
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            crashed = "".join(traceback.format_exception(result.exception))
        record = {"actor": actor, "args": args, "exit": result.exit_code, "applied": applied}
        record |= {"crash": crashed, "stderr": result.stderr[-400:]}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    dsn, manifest, worker, ops, seed = sys.argv[1:6]
    main(dsn, manifest, int(worker), int(ops), int(seed))
