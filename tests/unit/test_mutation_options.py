"""The five options of a change (--reason, --yes, --actor, --dry-run, --output) are declared
once (cli/common.mutating) and every mutating command takes them exactly as declared."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import typer.main

from flagctl.cli.app import app

COMMANDS = Path(__file__).resolve().parents[2] / "flagctl" / "cli" / "commands"


def commands(group: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    found = []
    for name, sub in getattr(group, "commands", {}).items():
        found += commands(sub, (*path, name)) if hasattr(sub, "commands") else [((*path, name), sub)]
    return found


def options(command: Any) -> dict[str, Any]:
    return {p.name: p for p in command.params if p.name}


def test_no_command_file_declares_a_mutation_option_of_its_own() -> None:
    # (review ack's --note is its reason and it never prompts: it takes the shared --actor only)
    pattern = re.compile(r"\b(ReasonOpt|YesOpt|DryRunOpt)\b")
    declared = {path.name: pattern.findall(path.read_text()) for path in COMMANDS.glob("*.py")}
    assert {name: found for name, found in declared.items() if found} == {}


def test_every_command_with_a_reason_takes_the_options_as_declared() -> None:
    root = typer.main.get_command(app)
    mutating = [(path, cmd) for path, cmd in commands(root) if "reason" in options(cmd)]
    assert len(mutating) >= 17, [p for p, _ in mutating]
    reference = options(dict(mutating)[("kill",)])
    for path, command in mutating:
        given = options(command)
        for name in ("reason", "yes", "actor", "output", "dry_run"):
            if name not in given:
                assert name in ("dry_run", "output"), (path, name)  # only those two may be left out
                continue
            mine, theirs = given[name], reference[name]
            assert (mine.opts, mine.default, getattr(mine, "help", None)) == (
                theirs.opts,
                theirs.default,
                getattr(theirs, "help", None),
            ), (path, name)
