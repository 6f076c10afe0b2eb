"""Every command in docs/runbooks/*.md runs against a fresh WS8 database, in order,
with the exit code the runbook promises (0 unless the line says `# exit N`)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from tests.conftest import WS8_MANIFEST, Cli

RUNBOOKS = sorted((Path(__file__).resolve().parents[2] / "docs" / "runbooks").glob("*.md"))
BLOCK = re.compile(r"```console\n(.*?)```", re.DOTALL)
EXPECT = re.compile(r"#\s*exit\s+(\d+)\s*$")


def commands(path: Path) -> list[tuple[str, int]]:
    found = []
    for block in BLOCK.findall(path.read_text()):
        for line in block.splitlines():
            if line.startswith("$ "):
                expect = EXPECT.search(line)
                found.append((line[2:].split("   #")[0].strip(), int(expect.group(1)) if expect else 0))
    return found


def test_runbooks_exist() -> None:
    assert len(RUNBOOKS) >= 2
    assert all(commands(path) for path in RUNBOOKS)


@pytest.mark.parametrize("path", RUNBOOKS, ids=lambda p: p.name)
def test_runbook_commands_run_as_documented(path: Path, ws8_db: str) -> None:
    cli = Cli(ws8_db, WS8_MANIFEST)
    for command, expected in commands(path):
        words = shlex.split(command)
        if words[0] == "psql":
            assert words[1] == "-c", command
            cli.sql(words[2])
            continue
        assert words[0] == "flagctl", command
        result = cli(*words[1:])
        assert result.exit_code == expected, f"{command}\nstdout: {result.stdout}\nstderr: {result.stderr}"
