"""Console entry point: a plain kill goes straight to its fast path; anything else, and
any kill the fast path does not read, to the full command line (``flagctl.cli.app``)."""

from __future__ import annotations

import sys


def main() -> int:
    from flagctl.cli.fastkill import run

    code = run(sys.argv[1:])
    if code is not None:
        _end(code)
    from flagctl.cli.app import app

    try:
        app(prog_name="flagctl")
    except SystemExit as done:
        if done.code == 1 and _reader_went_away():
            raise SystemExit(0) from None  # `flagctl --help | head -1`: the reader stopped reading
        raise
    return 0


def _reader_went_away() -> bool:
    """Whether the command line framework ended because stdout's reader went away: Click
    answers EPIPE (while printing help, outside any command) by wrapping the streams in its
    PacifyFlushWrapper and exiting 1. A command's own output never gets there: it goes
    through render, which stops writing quietly and keeps the command's exit code."""
    from flagctl.cli import render

    if type(sys.stdout).__name__ != "PacifyFlushWrapper":
        return False
    render.reader_gone(getattr(sys.stdout, "wrapped", sys.stdout))
    return True


def _end(code: int) -> None:
    """End a kill's process at once. Everything it did is finished: the transaction is
    committed or rolled back, the connection closed (``run`` closes it), and the output is
    flushed here. What is skipped is the interpreter's teardown — freeing every module and
    object one by one, about 18 ms here, longer than all of the kill's database work —
    and atexit handlers, of which the kill registers none."""
    import os

    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more to say there
            pass
    os._exit(code)
