"""Property-based fuzzing: command lines, manifests and profiles, valid and broken.

Whatever the input, flagctl answers with a documented exit code and a plain message, never
a traceback, and a command that fails writes nothing (a policy refusal, exit 1, may add its
own audit row: that is the record of the refusal, not a change).

``make test`` runs a few dozen cases of each; FLAGCTL_FUZZ_EXAMPLES=N runs more (the
``slow`` variant runs 10× as many).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import GROUPS_MANIFEST, RECSYS_MANIFEST, Cli

EXAMPLES = int(os.environ.get("FLAGCTL_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
SLOW = settings(FUZZ, max_examples=EXAMPLES * 10)

CHANGES = """
SELECT (SELECT coalesce(string_agg(system || flag || scope || value::text, ',' ORDER BY 1), '') FROM flagctl.flag_state),
       (SELECT coalesce(string_agg(switch || scope || applied::text, ',' ORDER BY 1), '') FROM flagctl.engaged_switch),
       (SELECT coalesce(string_agg(flag || scope || effect, ',' ORDER BY 1), '') FROM flagctl.exemption),
       (SELECT count(*) FROM flagctl.audit WHERE action NOT LIKE '%.refused')
"""

NASTY = st.sampled_from([
    "", " ", "workspace:42 ", " global", "workspace:4\n2", "workspace:\x0042", "\x1b[31m", "é" * 300,
    "1e309", "nan", "-inf", "-1", "101", "99999999999999999999", "0.1%", "50%", "%", "1.5%",
    "99999999999d", "1s", "-5s", "0s", "P1D", "on", "off", "true", "maybe", "a,b,,c", "[]", "{}",
    "KS5", "KS0", "F1", "F9", "groups", "stage3-broad", "nope", "x" * 5000, "\ud800",
])  # fmt: skip
TOKEN = st.one_of(NASTY, st.text(min_size=0, max_size=40))
COMMANDS = st.sampled_from([
    ["kill"], ["release"], ["set"], ["stage", "set"], ["stage", "next"], ["stage", "rollback"],
    ["exempt", "add"], ["exempt", "remove"], ["eval"], ["status"], ["verify"], ["restore"],
    ["audit", "log"], ["audit", "verify"], ["rollback"], ["profile", "apply"], ["flags"],
])  # fmt: skip
OPTIONS = st.sampled_from([
    "--scope", "--reason", "-r", "--actor", "--lock-timeout", "--id", "--force", "--unset", "--dry-run",
    "--as-of", "--since", "--limit", "-o", "--percent", "--timeout", "--to-last-safe", "--break-locks",
])  # fmt: skip


def snapshot(cli: Cli) -> tuple[Any, ...]:
    return tuple(cli.sql(CHANGES)[0])


def check(cli: Cli, args: list[str], before: tuple[Any, ...]) -> int:
    result = cli(*args)
    crashed = result.exception is not None and not isinstance(result.exception, SystemExit)
    assert not crashed, (args, result.exception)
    assert "Traceback" not in result.stdout + result.stderr, args
    assert result.exit_code in (0, 1, 2, 3, 4, 5), (args, result.exit_code)
    if result.exit_code != 0:
        assert result.stderr.strip() or result.stdout.strip(), args  # it said why
        assert snapshot(cli) == before, (args, result.exit_code, result.stderr)
    return int(result.exit_code)


def command_lines(draw: st.DrawFn) -> list[str]:
    args = list(draw(COMMANDS))
    args += draw(st.lists(TOKEN, max_size=3))
    for _ in range(draw(st.integers(0, 4))):
        args += [draw(OPTIONS), draw(TOKEN)]
    if draw(st.booleans()):
        args += ["-y"]
    return args


def fuzz_cli(groups: Cli, examples: settings) -> None:
    @examples
    @given(st.data())
    def case(data: st.DataObject) -> None:
        args = data.draw(st.composite(command_lines)())
        check(groups, args, snapshot(groups))

    case()


def test_fuzz_command_lines(groups: Cli) -> None:
    fuzz_cli(groups, FUZZ)


@pytest.mark.slow
def test_fuzz_command_lines_long(groups: Cli) -> None:
    fuzz_cli(groups, SLOW)


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | NASTY | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8) | NASTY, inner, max_size=3)
    ),
    max_leaves=8,
)


def mutate(data: st.DataObject, document: Any) -> Any:
    """Replace, delete or deepen one node somewhere in a YAML document."""
    if not isinstance(document, dict | list) or data.draw(st.integers(0, 3)) == 0:
        return data.draw(st.one_of(JSONISH, st.just(_deep(200))))
    keys = list(document) if isinstance(document, dict) else list(range(len(document)))
    if not keys:
        return document
    key = data.draw(st.sampled_from(keys))
    copy = dict(document) if isinstance(document, dict) else list(document)
    if isinstance(copy, dict) and data.draw(st.integers(0, 5)) == 0:
        del copy[key]
    else:
        copy[key] = mutate(data, copy[key])  # type: ignore[index]
    return copy


def _deep(depth: int) -> Any:
    node: Any = 1
    for _ in range(depth):
        node = [node]
    return node


def write_mutant(data: st.DataObject, original: Path, target: Path) -> None:
    document = mutate(data, yaml.safe_load(original.read_text()))
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=10_000)
    raw = text.encode()
    if data.draw(st.integers(0, 9)) == 0:  # and now and then bytes that are not UTF-8 or YAML at all
        at = data.draw(st.integers(0, len(raw)))
        raw = raw[:at] + data.draw(st.sampled_from([b"\xff\xfe", b"\t", b"{[", b"&a *a", b"\x00"])) + raw[at:]
    target.write_bytes(raw)


def fuzz_manifests(groups: Cli, tmp_path: Path, examples: settings) -> None:
    manifest = tmp_path / "flagctl.yaml"
    mutant = Cli(groups.dsn, manifest)

    @examples
    @given(st.data())
    def case(data: st.DataObject) -> None:
        write_mutant(data, GROUPS_MANIFEST, manifest)
        before = snapshot(groups)
        for args in (["status"], ["kill", "KS5", "-r", "fuzz", "-y"], ["release", "KS5", "-r", "fuzz", "-y"]):
            check(mutant, args, before)
            before = snapshot(groups)

    case()


def test_fuzz_manifests(groups: Cli, tmp_path: Path) -> None:
    fuzz_manifests(groups, tmp_path, FUZZ)


@pytest.mark.slow
def test_fuzz_manifests_long(groups: Cli, tmp_path: Path) -> None:
    fuzz_manifests(groups, tmp_path, SLOW)


def fuzz_profiles(recsys: Cli, tmp_path: Path, examples: settings) -> None:
    manifest = tmp_path / "flagctl.yaml"
    shutil.copy(RECSYS_MANIFEST, manifest)
    (tmp_path / "profiles").mkdir()
    original = RECSYS_MANIFEST.parent / "profiles" / "degraded.yaml"
    cli = Cli(recsys.dsn, manifest)

    @examples
    @given(st.data())
    def case(data: st.DataObject) -> None:
        write_mutant(data, original, tmp_path / "profiles" / "fuzz.yaml")
        for args in (["profile", "diff", "fuzz"], ["profile", "apply", "fuzz", "-r", "fuzz", "-y"]):
            check(cli, args, snapshot(recsys))

    case()


def test_fuzz_profiles(recsys: Cli, tmp_path: Path) -> None:
    fuzz_profiles(recsys, tmp_path, FUZZ)


@pytest.mark.slow
def test_fuzz_profiles_long(recsys: Cli, tmp_path: Path) -> None:
    fuzz_profiles(recsys, tmp_path, SLOW)
