"""Console entry point: a plain kill goes straight to its fast path; anything else, and
any kill the fast path does not read, to the full command line (``flagctl.cli.app``)."""

from __future__ import annotations

import sys


def main() -> int:
    from flagctl.cli.fastkill import run

    code = run(sys.argv[1:])
    if code is not None:
        return code
    from flagctl.cli.app import app

    app(prog_name="flagctl")
    return 0
