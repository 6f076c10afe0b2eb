"""Fleet fan-out: one command over several targets at once (`--target a,b,c`,
`--all-targets`), each in its own flagctl process with a per-target timeout, then one result
per target. A partial failure is never hidden (the exit code is the worst target's) and
never rolled back: each target's change stands on its own, as its audit trail says."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from flagctl.cli import render
from flagctl.cli.env import Environment
from flagctl.errors import ExitCode, UsageError

COMMANDS = {("kill",), ("release",), ("status",), ("verify",), ("stage", "show")}


@dataclass(frozen=True)
class Result:
    target: str
    exit_code: int
    seconds: float
    stdout: str
    stderr: str

    def to_json(self) -> dict[str, Any]:
        try:
            document = json.loads(self.stdout) if self.stdout.strip() else None
        except ValueError:
            document = None
        return {
            "target": self.target,
            "exit_code": self.exit_code,
            "seconds": round(self.seconds, 3),
            "output": document,
            "error": self.first_error(),
        }

    def first_error(self) -> str | None:
        lines = [line for line in self.stderr.splitlines() if line.startswith("flagctl: error:")]
        return lines[0].removeprefix("flagctl: error: ") if lines else None

    def outcome(self) -> str:
        if self.exit_code == -1:
            return "timed out"
        error = self.first_error()
        if error:
            return error
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        return lines[0][:100] if lines else "ok"


def targets_of(env: Environment, spec: str | None, every: bool) -> list[str]:
    """The target names a fan-out runs over (checked against the config file)."""
    from flagctl.config import Options, _config

    targets, path, _ = _config(Options(config=env.options.config), env.caps.environ)
    names = list(targets) if every else [n.strip() for n in (spec or "").split(",") if n.strip()]
    if not names:
        raise UsageError(f"no targets to fan out over in {path}", "define targets: in the config file")
    unknown = [n for n in names if n not in targets]
    if unknown:
        raise UsageError(
            f"unknown target {unknown[0]!r} in {path}", f"targets: {', '.join(targets) or 'none'}"
        )
    return names


def child_args(argv: list[str]) -> list[str]:
    """The command line without its fan-out options (each child gets one --target)."""
    out: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg in ("--target", "-t"):
            skip = True
            continue
        if arg.startswith("--target=") or arg == "--all-targets" or arg.startswith("--per-target-timeout"):
            skip = arg == "--per-target-timeout"
            continue
        out.append(arg)
    return out


def run(env: Environment, names: list[str], argv: list[str], timeout: float) -> int:
    """Run the command on every target in parallel; print one result each; the worst exit."""
    from flagctl.config import FANOUT_VIA

    args = child_args(argv)
    output_json = "json" in _output(args)
    via = "--all-targets" if "--all-targets" in argv else "--target " + ",".join(names)
    environ = {**env.caps.environ, FANOUT_VIA: via}

    def one(name: str) -> Result:
        started = time.monotonic()
        try:
            done = subprocess.run(
                [sys.executable, "-m", "flagctl", "--target", name, *args],
                env=environ, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                timeout=timeout, check=False,
            )  # fmt: skip
            return Result(name, done.returncode, time.monotonic() - started, done.stdout, done.stderr)
        except subprocess.TimeoutExpired:
            return Result(
                name, -1, time.monotonic() - started, "", f"flagctl: error: no answer in {timeout:g}s"
            )

    with ThreadPoolExecutor(max_workers=min(16, len(names))) as pool:
        results = list(pool.map(one, names))
    if output_json:
        render.emit_json({"targets": [r.to_json() for r in results]})
    else:
        rows = [
            (r.target, r.outcome(), "timeout" if r.exit_code == -1 else r.exit_code, f"{r.seconds:.2f}s")
            for r in results
        ]
        render.out(render.table(rows, ["target", "outcome", "exit", "time"]))
    failed = [r for r in results if r.exit_code != 0]
    if failed:
        render.error(
            f"{len(failed)} of {len(results)} targets failed: {', '.join(r.target for r in failed)}",
            "nothing was rolled back: the other targets' changes stand (each has its own audit trail)",
        )
    codes = [int(ExitCode.UNREACHABLE) if r.exit_code == -1 else r.exit_code for r in results]
    return max(codes)


def _output(args: list[str]) -> list[str]:
    found = []
    for i, arg in enumerate(args):
        if arg in ("-o", "--output") and i + 1 < len(args):
            found.append(args[i + 1])
        elif arg.startswith("--output="):
            found.append(arg.split("=", 1)[1])
    return found
