"""Counting what a command sends to PostgreSQL, on the wire.

Every connection psycopg opens while the block runs is traced by libpq itself
(``PQtrace``); the trace is then read message by message:
- a *statement* is one the code sent: a simple ``Query`` that is not transaction
  control, or one extended-protocol exchange (closed by ``Sync``);
- a *round trip* is one ``ReadyForQuery`` from the server (statements and BEGIN,
  COMMIT, SAVEPOINT, RELEASE alike).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import IO, Any

import psycopg
import pytest
from psycopg.pq import Trace

_CONTROL = re.compile(r'^"(BEGIN|COMMIT|ROLLBACK|SAVEPOINT|RELEASE)\b')


@dataclass
class Wire:
    traces: list[str] = field(default_factory=list)  # one libpq trace per connection

    def lines(self) -> list[str]:
        return [line for trace in self.traces for line in trace.splitlines()]

    @property
    def statements(self) -> list[str]:
        """The SQL of every statement sent (prepared ones re-executed show as '(prepared)')."""
        return self._statements(self.lines())

    @property
    def until_commit(self) -> list[str]:
        """The statements sent up to the last COMMIT: what a change costs before it takes
        effect (reports read after it are not on that path)."""
        lines = self.lines()
        commits = [i for i, line in enumerate(lines) if line.startswith("F\t") and '\t "COMMIT"' in line]
        return self._statements(lines[: commits[-1] + 1] if commits else lines)

    @staticmethod
    def _statements(lines: list[str]) -> list[str]:
        found: list[str] = []
        pending: str | None = None
        for line in lines:
            parts = line.split("\t")
            if len(parts) < 3 or parts[0] != "F":
                continue
            kind, rest = parts[2], "\t".join(parts[3:]).strip()
            if kind == "Query" and not _CONTROL.match(rest):
                found.append(rest.strip('"'))
            elif kind == "Parse":
                pending = rest
            elif kind == "Sync":
                found.append(pending or "(prepared)")
                pending = None
        return found

    @property
    def round_trips(self) -> int:
        return sum(1 for line in self.lines() if line.startswith("B\t") and "\tReadyForQuery\t" in line)


@contextmanager
def traced(monkeypatch: pytest.MonkeyPatch) -> Iterator[Wire]:
    """Trace every connection opened by ``psycopg.connect`` inside the block."""
    wire = Wire()
    original = psycopg.connect
    with ExitStack() as files:
        opened: list[IO[str]] = []

        def connect(*args: Any, **kwargs: Any) -> Any:
            conn = original(*args, **kwargs)
            trace = files.enter_context(tempfile.TemporaryFile(mode="w+"))
            opened.append(trace)
            conn.pgconn.trace(trace.fileno())
            conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
            return conn

        monkeypatch.setattr(psycopg, "connect", connect)
        try:
            yield wire
        finally:
            monkeypatch.undo()
            for trace in opened:
                trace.seek(0)
                wire.traces.append(trace.read())
