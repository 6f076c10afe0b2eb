"""Console entry point."""

from __future__ import annotations


def main() -> int:
    from flagctl.cli.app import app

    app(prog_name="flagctl")
    return 0
