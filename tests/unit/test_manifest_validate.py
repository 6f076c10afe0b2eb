"""`flagctl manifest validate [FILE]` and `flagctl manifest schema`: the manifest checked
offline, with no database, and a JSON Schema that agrees with flagctl's own validator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from functools import cache
from pathlib import Path

import jsonschema
import pytest

from flagctl.model.manifest import ManifestError, parse_manifest
from flagctl.model.yamlio import load_yaml

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "flagctl" / "examples").glob("*/flagctl.yaml"))
NO_DATABASE = {**os.environ, "FLAGCTL_DSN": "host=/nonexistent-dir dbname=none", "PGHOST": "/nonexistent-dir"}


def flagctl(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [FLAGCTL, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, env=NO_DATABASE, cwd=cwd
    )  # fmt: skip


# Broken manifests, each broken in a way the schema can express (a key, a type, a value).
BROKEN = {
    "an unknown key": "version: 1\nsystem: s\nflags:\n  f: {type: bool, colour: red}\n",
    "an unknown flag type": "version: 1\nsystem: s\nflags:\n  f: {type: percentage}\n",
    "a when_stale that is neither off nor last": "version: 1\nsystem: s\nflags:\n  f: {type: int, when_stale: keep}\n",
    "no system": "version: 1\nflags:\n  f: {type: bool}\n",
    "a kill switch level that is not a number": (
        "version: 1\nsystem: s\nflags:\n  f: {type: bool}\nkill_switches:\n  k: {level: high, set: {f: false}}\n"
    ),
    "a guardrail with both sql and prometheus": (
        "version: 1\nsystem: s\nflags:\n  f: {type: bool}\n"
        "guardrails:\n  g: {sql: select 1, prometheus: {query: up}, max: 1}\n"
    ),
    "a guardrail with no source": "version: 1\nsystem: s\nflags:\n  f: {type: bool}\nguardrails:\n  g: {max: 1}\n",
    "a prometheus url that is not http": (
        "version: 1\nsystem: s\nflags:\n  f: {type: bool}\n"
        "guardrails:\n  g: {prometheus: {query: up, url: 'ftp://p'}, max: 1}\n"
    ),
}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_every_shipped_example_is_valid_offline(example: Path) -> None:
    result = flagctl("manifest", "validate", str(example), "-o", "json")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["valid"] is True and document["system"] == parse_manifest(example.read_text()).system


def test_validate_lists_every_problem_with_its_path_and_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "flagctl.yaml"
    bad.write_text("version: 1\nsystem: s\nflags:\n  a: {type: rollout, bogus: 1}\n  b: {type: nope}\n")
    result = flagctl("manifest", "validate", cwd=tmp_path)  # the default file: ./flagctl.yaml
    assert result.returncode == 2 and result.stdout == ""
    assert "flags.a.bogus: unknown key" in result.stderr and "flags.b:" in result.stderr
    as_json = json.loads(flagctl("manifest", "validate", str(bad), "-o", "json").stdout)
    assert len(as_json["error"]["problems"]) == 2


def as_an_editor_reads(text: str) -> object:
    """The YAML as flagctl reads it, as JSON values (a date is its ISO text, as a YAML 1.2
    editor sees an unquoted date)."""
    return json.loads(json.dumps(load_yaml(text, "manifest"), default=str))


@cache
def schema() -> dict[str, object]:
    result = flagctl("manifest", "schema")
    assert result.returncode == 0, result.stderr
    document: dict[str, object] = json.loads(result.stdout)
    jsonschema.Draft202012Validator.check_schema(document)
    return document


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.parent.name)
def test_the_schema_accepts_every_shipped_example(example: Path) -> None:
    jsonschema.validate(as_an_editor_reads(example.read_text()), schema())


@pytest.mark.parametrize("text", BROKEN.values(), ids=list(BROKEN))
def test_the_schema_and_the_validator_both_refuse_a_broken_manifest(text: str) -> None:
    with pytest.raises(ManifestError):
        parse_manifest(text)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(as_an_editor_reads(text), schema())


def test_the_schema_knows_when_stale() -> None:
    text = "version: 1\nsystem: s\nflags:\n  f: {type: bool, when_stale: last}\n  g: {type: int, when_stale: 'off'}\n"
    jsonschema.validate(as_an_editor_reads(text), schema())
    assert parse_manifest(text).flags["f"].keeps_last_when_stale
