"""Shell completion of names, driven the way a shell drives it: the installed `flagctl`
with the completion variables set, reading the shipped example manifests (no database)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES

FLAGCTL = str(Path(sys.executable).parent / "flagctl")


def complete(
    words: str, manifest: Path | str | None = EXAMPLES / "ws8" / "flagctl.yaml", **env: str
) -> list[str]:
    """What zsh would offer after ``words`` (names only, in order)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLAGCTL_")}
    environ.update(_FLAGCTL_COMPLETE="complete_zsh", _TYPER_COMPLETE_ARGS=words, **env)
    environ["FLAGCTL_CACHE_DIR"] = os.environ.get("FLAGCTL_CACHE_DIR", "")
    if manifest is not None:
        environ["FLAGCTL_MANIFEST"] = str(manifest)
    done = subprocess.run(
        [FLAGCTL], capture_output=True, text=True, env=environ, stdin=subprocess.DEVNULL, timeout=60
    )
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    names = re.findall(r'(?:^|\()"((?:[^"\\]|\\.)+)"', done.stdout, flags=re.M)
    return [re.sub(r"\\+(.)", r"\1", name) for name in names]  # zsh's escapes (workspace\\:)


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("flagctl kill ", ["p3-off"]),  # the fast path leaves completion to the parser
        ("flagctl release p", ["p3-off"]),
        ("flagctl stage set ", ["p3"]),
        ("flagctl stage set p3 ", ["dark", "canary", "limited", "broad", "full"]),
        ("flagctl stage set p3 b", ["broad"]),
        ("flagctl set p3_", ["p3_advisory"]),
        ("flagctl kill p3-off --scope ", ["global"]),
    ],
)
def test_names_complete_from_the_manifest(words: str, expected: list[str]) -> None:
    assert complete(words) == expected


def test_flags_guardrails_profiles_and_scopes_of_another_system() -> None:
    recsys = EXAMPLES / "recsys" / "flagctl.yaml"
    assert complete("flagctl verify guardrails lat", recsys) == ["latency_p95"]
    assert "normal" in complete("flagctl profile apply ", recsys)
    assert complete("flagctl profile apply emer", recsys) == ["emergency"]
    assert complete("flagctl set disable_", recsys) == ["disable_cf", "disable_content"]
    groups = EXAMPLES / "groups" / "flagctl.yaml"
    scopes = complete("flagctl set F3 true --scope ", groups)
    assert scopes[0] == "global" and "workspace:" in scopes
    assert complete("flagctl set F3 true --scope work", groups) == ["workspace:"]


def test_the_manifest_on_the_command_line_wins_over_the_environment() -> None:
    recsys = EXAMPLES / "recsys" / "flagctl.yaml"
    assert complete(f"flagctl --manifest {recsys} verify guardrails cache") == ["cache_hit_rate"]


def test_targets_complete_from_the_config_file(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("targets:\n  prod: {dsn: 'host=prod'}\n  staging: {dsn: 'host=staging'}\n")
    assert complete("flagctl --target ", None, FLAGCTL_CONFIG=str(config)) == ["prod", "staging"]
    assert complete("flagctl --target prod,s", None, FLAGCTL_CONFIG=str(config)) == ["prod,staging"]


def test_a_missing_or_broken_manifest_completes_nothing_and_says_nothing(tmp_path: Path) -> None:
    broken = tmp_path / "flagctl.yaml"
    broken.write_text("version: 1\nsystem: [not, a, name\n")
    assert complete("flagctl kill ", broken) == []
    assert complete("flagctl stage set ", tmp_path / "missing.yaml") == []
