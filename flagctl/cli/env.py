"""What every command receives: the capabilities the process was given, and the global
options as parsed — kept apart.

``Capabilities`` are injected: the OS environment, the streams, the terminals, the clock and
the sleeper. Tests pass their own (``CliRunner().invoke(app, args,
obj=Environment(Capabilities(...)))``) to fix the clock and the sleeper, or to pretend to be
on a terminal; a real run takes the process's. ``GlobalOptions`` are what the root callback
(or the kill's fast path) parsed from the command line. The rest is per invocation: the
target, resolved once, and the connections to close at the end.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from collections.abc import Callable, Mapping
from contextvars import Token
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol, TextIO

if TYPE_CHECKING:
    from flagctl.cli.render import Console
    from flagctl.config import Target


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Capabilities:
    """What the process gives a command; everything a test replaces."""

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
    stdout_isatty: bool | None = None  # None: ask the real stdout (a live display only on a terminal)
    stderr_isatty: bool | None = None  # None: ask the real stderr (colour only on a terminal)
    argv: list[str] = field(default_factory=lambda: list(sys.argv))
    stdout: TextIO | None = None  # None: sys.stdout as it is at each write (a test's runner swaps it)
    stderr: TextIO | None = None


@dataclass
class GlobalOptions:
    """The options before the command (CONTRACT §2), once parsed and checked (flow.configure)."""

    target: str | None = None
    dsn: str | None = None
    manifest: str | None = None
    config: str | None = None
    system: str | None = None  # --system: the published manifest of this system, not a file
    debug: bool = False
    output: str = "table"  # the command's --output, once parsed (errors are printed in it too)
    lock_timeout: timedelta = timedelta(seconds=5)
    request_id: str | None = None  # --request-id: the caller's retry key


class Closeable(Protocol):
    def close(self) -> None: ...


@dataclass
class Environment:
    caps: Capabilities = field(default_factory=Capabilities)
    options: GlobalOptions = field(default_factory=GlobalOptions)
    resolved_target: Target | None = None  # the Target, resolved once per invocation
    _resources: list[Closeable] = field(default_factory=list, repr=False)
    _bound: Token[Console | None] | None = field(default=None, repr=False)

    def is_interactive(self) -> bool:
        if self.caps.stdin_isatty is not None:
            return self.caps.stdin_isatty
        try:
            return sys.stdin.isatty()
        except (AttributeError, ValueError):
            return False

    def console(self) -> Console:
        """Where render writes for this command, and whether it may colour."""
        from flagctl.cli.render import Console

        caps = self.caps
        return Console(caps.environ, caps.stdout, caps.stderr, caps.stdout_isatty, caps.stderr_isatty)

    def color(self) -> bool:
        """Colour on stderr: only on a terminal, never with NO_COLOR in the environment."""
        return self.console().color()

    def command_line(self) -> str:
        """The command as typed, for the audit trail — with any password in a DSN masked."""
        argv = self.caps.argv
        return "flagctl " + shlex.join(_redact_passwords(argv[1:])) if argv else "flagctl"

    def own(self, resource: Closeable) -> None:
        """Close this (a connection) when the command ends."""
        self._resources.append(resource)

    def activate(self) -> None:
        """The command starts: render writes through this console until ``close``."""
        from flagctl.cli import render

        if self._bound is None:
            self._bound = render.bind(self.console())

    def close(self) -> None:
        for resource in reversed(self._resources):
            resource.close()
        self._resources.clear()
        if self._bound is not None:
            from flagctl.cli import render

            render.unbind(self._bound)
            self._bound = None


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
