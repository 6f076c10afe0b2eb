"""The Environment every command receives: streams, TTY-ness, clock, OS environment.

Tests pass their own (``CliRunner().invoke(app, args, obj=Environment(...))``) to fix
the clock and the sleeper, or pretend to be on a terminal; real runs build one from the process.
"""

from __future__ import annotations

import getpass
import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any


def utc_now() -> datetime:
    return datetime.now(UTC)


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


@dataclass
class Environment:
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep  # tests pass a fake: no test waits for real
    # status --watch: how it hears of changes, given its connection and the system (None: a
    # store.changes.Listener, LISTEN on that connection); tests wrap it to change things first
    listen: Callable[[Any, str], Any] | None = None
    # called with every connection a command opens (the demo shows the database's times on
    # its simulated clock); None: nothing
    connected: Callable[[Any], None] | None = None
    stdin_isatty: bool | None = None  # None: ask the real stdin
    stderr_isatty: bool | None = None  # None: ask the real stderr (colour only on a terminal)
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    # Connection options, filled in by the root callback.
    target: str | None = None
    dsn: str | None = None
    manifest: str | None = None
    config: str | None = None
    system: str | None = None  # --system: the published manifest of this system, not a file
    debug: bool = False
    output: str = "table"  # the command's --output, once parsed (errors are printed in it too)
    lock_timeout: timedelta = timedelta(seconds=5)
    request_id: str | None = None  # --request-id: the caller's retry key
    resolved_target: Any = None  # the Target, resolved once per invocation
    resources: list[Any] = field(default_factory=list)

    def is_interactive(self) -> bool:
        if self.stdin_isatty is not None:
            return self.stdin_isatty
        try:
            return sys.stdin.isatty()
        except (AttributeError, ValueError):
            return False

    def color(self) -> bool:
        """Colour on stderr: only on a terminal, never with NO_COLOR in the environment."""
        from flagctl.cli.render import color_on_stderr

        return color_on_stderr(self.environ, self.stderr_isatty)

    def command_line(self) -> str:
        """The command as typed, for the audit trail — with any password in a DSN masked."""
        return "flagctl " + shlex.join(_redact_passwords(self.argv[1:])) if self.argv else "flagctl"

    def close(self) -> None:
        for resource in reversed(self.resources):
            resource.close()
        self.resources.clear()


def _redact_passwords(args: list[str]) -> list[str]:
    """``--dsn`` values with their password masked (``--dsn X`` and ``--dsn=X``)."""
    out = []
    masked_next = False
    for arg in args:
        if masked_next:
            out.append(_mask_dsn(arg))
            masked_next = False
        elif arg == "--dsn":
            out.append(arg)
            masked_next = True
        elif arg.startswith("--dsn="):
            out.append("--dsn=" + _mask_dsn(arg.removeprefix("--dsn=")))
        else:
            out.append(arg)
    return out


def _mask_dsn(dsn: str) -> str:
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    try:
        parts = conninfo_to_dict(dsn)
    except Exception:
        return "(unparseable DSN)"
    if "password" not in parts:
        return dsn
    return make_conninfo("", **{**parts, "password": "********"})
