"""docs/manifest.md documents exactly the keys the validator accepts, and its example
profile validates."""

from __future__ import annotations

import re
from pathlib import Path

from tests.unit.manifest_keys import key_paths

DOC = Path(__file__).resolve().parents[2] / "docs" / "manifest.md"


def documented() -> set[str]:
    """The key paths in the first column of the reference tables."""
    return set(re.findall(r"^\| `([^`]+)` \|", DOC.read_text(), flags=re.MULTILINE))


def test_every_manifest_key_is_documented() -> None:
    missing = key_paths() - documented()
    assert not missing, (
        f"keys the validator accepts but docs/manifest.md does not describe: {sorted(missing)}"
    )


def test_every_documented_key_exists() -> None:
    unknown = documented() - key_paths()
    assert not unknown, f"keys docs/manifest.md describes but the validator rejects: {sorted(unknown)}"


def test_the_walker_sees_nested_and_aliased_keys() -> None:
    paths = key_paths()
    assert {
        "flags.NAME.default.percent",
        "ladders.NAME.stages[].require",
        "constraints[].implies.if",
    } <= paths


def test_the_guardrail_examples_validate() -> None:
    """Each ```yaml block of the Guardrails section is a working guardrails: mapping."""
    from flagctl.model.manifest import parse_manifest

    section = DOC.read_text().split("## Guardrails", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```yaml\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) >= 2  # the SQL one and the Prometheus one
    sources = set()
    for block in blocks:
        model = parse_manifest("version: 1\nsystem: s\nflags:\n  f: {type: bool}\n" + block).model
        sources |= {guard.source for guard in model.guardrails.values()}
    assert sources == {"sql", "prometheus"}
