"""The one renderer: data on stdout (a table for people, one JSON document for scripts),
messages and errors on stderr. Colour only when stderr is a terminal.

Where it writes is the command's ``Console`` (``Environment.console()``, bound for the
command's run by ``Environment.activate``): its streams, its terminals, its OS environment
(``NO_COLOR``) — never the process's behind the Environment's back. Before any command's
Environment exists (an argument that is not UTF-8), the process's own.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, TextIO


class Output(StrEnum):
    table = "table"
    json = "json"


@dataclass(frozen=True)
class Console:
    """The streams render writes to, which of them are terminals, and the OS environment
    that decides colour. A stream (or a terminal answer) left None is the process's, asked
    at each write: a test's runner swaps sys.stdout while a command runs."""

    environ: Mapping[str, str]
    stdout: TextIO | None = None
    stderr: TextIO | None = None
    stdout_isatty: bool | None = None
    stderr_isatty: bool | None = None

    def out(self) -> Any:
        return self.stdout if self.stdout is not None else sys.stdout

    def err(self) -> Any:
        return self.stderr if self.stderr is not None else sys.stderr

    def stdout_is_terminal(self) -> bool:
        return _isatty(self.out()) if self.stdout_isatty is None else self.stdout_isatty

    def color(self) -> bool:
        """Colour only on a terminal, and never with NO_COLOR set (https://no-color.org)."""
        on_terminal = _isatty(self.err()) if self.stderr_isatty is None else self.stderr_isatty
        return on_terminal and not self.environ.get("NO_COLOR")


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError):  # closed, or not a file
        return False


_CONSOLE: ContextVar[Console | None] = ContextVar("flagctl_console", default=None)


def bind(console: Console) -> Token[Console | None]:
    """Write through ``console`` until ``unbind`` (a command's run)."""
    return _CONSOLE.set(console)


def unbind(token: Token[Console | None]) -> None:
    _CONSOLE.reset(token)


def console() -> Console:
    """The command's console; before any command has one, the process's own."""
    bound = _CONSOLE.get()
    return bound if bound is not None else Console(os.environ)


def emit_json(document: Any) -> None:
    out(json.dumps(document, indent=2, sort_keys=False, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> str:
    import tabulate

    cells = [[_cell(c) for c in row] for row in rows]
    if _text_columns(cells, len(headers), tabulate._type):  # type: ignore[attr-defined]
        return _simple(cells, list(headers))
    return tabulate.tabulate(cells, headers=list(headers), tablefmt="simple")


def _text_columns(cells: list[list[str]], width: int, kind: Callable[[str], type]) -> bool:
    """Whether tabulate would lay every column out as left-aligned text: each is blank or
    has a cell it reads as a string (one is enough: a column takes its most generic cell's
    type), and no
    cell spans lines or holds a tab. It asks tabulate about the cells only until it finds one
    per column — asking about every cell was most of `status` at 10,000 flags."""
    if not cells or any(len(row) != width for row in cells):
        return False
    for column in range(width):
        filled = [row[column] for row in cells if row[column].strip()]
        if filled and not any(kind(cell) is str for cell in filled):
            return False  # numbers (or booleans) all the way down: tabulate aligns them
    return not any("\n" in c or "\t" in c or "\r" in c for row in cells for c in row)


def _simple(cells: list[list[str]], headers: list[str]) -> str:
    """tabulate's "simple" layout of text columns (tests compare the two): cells stripped,
    each column as wide as its widest cell and at least its header plus two, two spaces
    between columns, left-aligned, no trailing spaces."""
    cells = [[c.strip() for c in row] for row in cells]
    widths = [max(len(h) + 2, *(len(row[i]) for row in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells)
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if type(value) is str and value.isprintable():  # most cells: nothing to escape (safe's fast path)
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, datetime):
        return _moment(value)
    return safe(str(value))  # before tabulate, which would split a cell at a carriage return


# Characters a terminal acts on instead of showing: C0 controls but newline and tab, DEL, C1
# controls, and the bidirectional overrides that reorder what is shown. A string read from
# the database (an actor, a reason, a request's summary, a gate's application name) can
# carry them: written raw, ESC and OSC sequences would rewrite the operator's terminal.
_UNSAFE = {
    code: f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    for code in [*range(0x00, 0x20), *range(0x7F, 0xA0), *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
    if code not in (0x09, 0x0A)
}


def safe(text: str) -> str:
    """Text as it may reach a terminal: every control or escape character shown escaped
    (``\\x1b``), newlines and tabs kept. JSON output needs none of it (json escapes them)."""
    return text.translate(_UNSAFE)


def out(text: str = "") -> None:
    _echo(safe(text), console().out())


def note(text: str) -> None:
    """A message for the operator (stderr, so stdout stays data)."""
    _echo(safe(text), console().err())


def _echo(text: str, stream: Any) -> None:
    """One line, written and flushed at once (the stream as it is now: tests swap it).
    Plain writes rather than Click's echo, so the kill's path never imports Click."""
    if stream is None:  # no console at all (pythonw): nothing to write to
        return
    try:
        stream.write(text + "\n")
        stream.flush()
    except BrokenPipeError:
        reader_gone(stream)


def reader_gone(stream: Any) -> None:
    """The reader of this stream went away (``flagctl status | head -1``): write nothing
    more there, as Unix tools do, and let the command finish with its own exit code (a
    failed check still exits non-zero). The stream's file descriptor is pointed at the
    null device, so the interpreter's last flush at exit has nowhere to fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, stream.fileno())
        finally:
            os.close(devnull)
    except (OSError, ValueError, AttributeError):  # not a real file (a test's buffer): nothing to do
        pass


def error(message: str, hint: str | None = None, color: bool | None = None) -> None:
    """``flagctl: error: what failed`` and, indented, what to do: plain lines on stderr."""
    label = "flagctl: error:"
    colored = console().color() if color is None else color
    prefix = f"\x1b[31m\x1b[1m{label}\x1b[0m" if colored else label  # red, bold
    _echo(f"{prefix} {safe(message)}", console().err())  # the colour is flagctl's own; the text is escaped
    if hint:
        note(f"  {hint}")


def error_json(
    kind: str, message: str, hint: str | None, exit_code: int, problems: Sequence[str] = ()
) -> None:
    """With ``-o json`` an error is also one JSON document on stdout (the plain lines stay
    on stderr): scripts parse stdout whatever happened, and the exit code is the same."""
    error = {
        "kind": kind,
        "message": message,
        "hint": hint,
        "exit_code": exit_code,
        "problems": list(problems),
    }
    out(json.dumps({"error": error}, indent=2))


def when(value: datetime | None) -> str:
    return _cell(value)


@functools.lru_cache(maxsize=4096)
def _moment(value: datetime) -> str:
    # Many rows share a moment (every flag one kill changed): each is formatted once.
    return value.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
