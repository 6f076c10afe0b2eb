"""The help as an operator reads it: every command in its place, each command's one-line
description whole, and every command's examples real (each one parses)."""

from __future__ import annotations

import functools
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

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


def leaves() -> dict[str, object]:
    import typer

    found: dict[str, object] = {}

    def walk(command: object, path: list[str]) -> None:
        subs = getattr(command, "commands", None)
        if subs:
            for name, sub in subs.items():
                walk(sub, [*path, name])
        else:
            found[" ".join(path)] = command

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_one_to_three_examples_of_its_own() -> None:
    from flagctl.cli.examples import EXAMPLES

    assert set(EXAMPLES) == set(leaves())
    for path, lines in EXAMPLES.items():
        assert 1 <= len(lines) <= 3, path
        for line in lines:
            words = shlex.split(line)
            assert words[0] == "flagctl", line
            assert (
                " ".join(w for w in words[1:] if not w.startswith("-"))[: len(path)] == path or path in line
            ), line


@functools.cache
def _command() -> Any:
    """flagctl's command tree, built once (as the entry point builds it once per run)."""
    import typer

    return typer.main.get_command(app)


def parse(args: list[str]) -> None:
    """Parse a command line as flagctl would, command by command, without running it."""
    command = _command()
    ctx = command.make_context("flagctl", list(args))
    while getattr(command, "commands", None):
        rest = [*ctx._protected_args, *ctx.args]  # type: ignore[attr-defined]
        name, command, rest = command.resolve_command(ctx, rest)  # type: ignore[attr-defined]
        ctx = command.make_context(name, rest, parent=ctx)


def test_every_example_parses() -> None:
    """An example naming an option or argument the command does not take fails here."""
    from flagctl.cli.examples import EXAMPLES

    for lines in EXAMPLES.values():
        for line in lines:
            parse(shlex.split(line)[1:])
    for wrong in (["kill", "p3-off", "--bogus"], ["stage", "set"], ["verify", "gating", "p3_advisory"]):
        with pytest.raises(Exception, match=r"No such option|Missing parameter|unexpected extra argument"):
            parse(wrong)  # the check can fail


def test_the_help_ends_with_the_examples() -> None:
    result = subprocess.run(
        [FLAGCTL, "stage", "set", "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )  # fmt: skip
    tail = result.stdout.rstrip().splitlines()[-3:]
    assert [line.strip() for line in tail] == [
        "Examples:", "$ flagctl stage set p3 canary -r 'CHG-7: canary' -y", "$ flagctl stage set p3 limited --dry-run"
    ]  # fmt: skip
