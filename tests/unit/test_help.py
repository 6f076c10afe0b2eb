"""The top-level help as an operator reads it: every command in its place, and each
command's one-line description whole."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from flagctl.cli.app import COMMAND_ORDER, app

FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def listed() -> list[tuple[str, str]]:
    """(command, description) as `flagctl --help` lists them, piped, 100 columns."""
    result = subprocess.run(
        [FLAGCTL, "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    section = result.stdout.split("Commands:\n", 1)[1]
    return [tuple(line.split(None, 1)) for line in section.splitlines() if line.strip()]  # type: ignore[misc]


def test_the_commands_are_listed_in_the_order_an_operator_meets_them() -> None:
    """They were listed in the order they were registered, which told a new user nothing."""
    import typer

    names = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    assert sorted(COMMAND_ORDER) == names  # every command has its place, and only those
    assert [name for name, _ in listed()] == list(COMMAND_ORDER)


def test_no_description_is_cut_mid_sentence() -> None:
    """`exempt  Allow or deny one scope (e.g.`: Click ends a short help at the first ". ",
    so an abbreviation cut it. A description is whole (ends with a full stop) or visibly
    shortened to the width (ends with "...")."""
    for name, text in listed():
        assert text.endswith((".", "...")), (name, text)
        if not text.endswith("..."):
            assert text.count("(") == text.count(")"), (name, text)
