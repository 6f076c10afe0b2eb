"""Every command in docs/runbooks/*.md runs against a fresh database of the runbook's system,
in order, with the exit code the runbook promises (0 unless the line says `# exit N`).

A runbook names its system in an HTML comment (`<!-- system: groups -->`; WS8 when it does
not); `# after 30m` on a command line moves the (fake) clock on by that much first, for the
bake times a person would wait out."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from flagctl.model.durations import parse_duration
from tests.conftest import EXAMPLES, Cli

RUNBOOKS = sorted((Path(__file__).resolve().parents[2] / "docs" / "runbooks").glob("*.md"))
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
EXPECT = re.compile(r"#.*\bexit\s+(\d+)")
AFTER = re.compile(r"#.*\bafter\s+(\d+[smhd])\b")
SYSTEM = re.compile(r"<!--\s*system:\s*(\w+)\s*-->")
SYSTEMS = {"ws8", "groups", "canary", "orca", "recsys"}


def commands(path: Path) -> list[tuple[str, int, str | None]]:
    found = []
    for block in BLOCK.findall(path.read_text()):
        for line in block.splitlines():
            if line.startswith("$ "):
                expect, after = EXPECT.search(line), AFTER.search(line)
                command = line[2:].split("   #")[0].strip()
                found.append(
                    (command, int(expect.group(1)) if expect else 0, after.group(1) if after else None)
                )
    return found


def system_of(path: Path) -> str:
    found = SYSTEM.search(path.read_text())
    return found.group(1) if found else "ws8"


def test_runbooks_exist_for_every_shipped_system() -> None:
    assert all(commands(path) for path in RUNBOOKS)
    assert {system_of(path) for path in RUNBOOKS} == SYSTEMS


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_runbook_commands_run_as_documented(path: Path, templates, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    system = system_of(path)
    manifest = EXAMPLES / system / "flagctl.yaml"
    schema = EXAMPLES / system / "schema.sql"
    dsn = templates.database(system, manifest, schema.read_text() if schema.exists() else None)
    try:
        cli = Cli(dsn, manifest)
        for command, expected, after in commands(path):
            if after:
                cli.clock.advance(seconds=parse_duration(after).total_seconds())
            words = shlex.split(command)
            if words[0] == "psql":
                assert words[1] == "-c", command
                cli.sql(words[2])
                continue
            assert words[0] == "flagctl", command
            words = [w.replace("REPORTS", str(tmp_path)) for w in words]
            result = cli(*words[1:])
            assert result.exit_code == expected, (
                f"{command}\nstdout: {result.stdout}\nstderr: {result.stderr}"
            )
    finally:
        templates.drop(dsn)
