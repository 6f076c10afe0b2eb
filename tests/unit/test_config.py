"""Target precedence: a flag (--dsn, --target) > the environment (FLAGCTL_DSN, FLAGCTL_TARGET)
> PG* variables > default_target > embedded."""

from __future__ import annotations

from pathlib import Path

import pytest

from flagctl.config import Options, redact_dsn, resolve_manifest_path, resolve_target
from flagctl.errors import UsageError


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        "default_target: prod\n"
        "targets:\n"
        "  prod: {dsn: 'service=prod', manifest: /etc/flagctl/prod.yaml}\n"
        "  staging: {dsn: 'host=staging dbname=flags'}\n"
        "  laptop: {local: true}\n"
    )
    return path


def test_dsn_option_beats_everything(config: Path) -> None:
    env = {
        "FLAGCTL_DSN": "host=env",
        "FLAGCTL_TARGET": "staging",
        "PGHOST": "pg",
        "FLAGCTL_CONFIG": str(config),
    }
    target = resolve_target(Options(dsn="host=flag"), env)
    assert (target.dsn, target.source) == ("host=flag", "--dsn")


def test_an_explicit_target_beats_the_environment(config: Path) -> None:
    env = {"FLAGCTL_DSN": "host=env", "FLAGCTL_MANIFEST": "env.yaml"}
    target = resolve_target(Options(target="prod", config=str(config)), env)
    assert (target.dsn, target.source) == ("service=prod", "--target")
    assert resolve_manifest_path(Options(target="prod"), env, target) == "/etc/flagctl/prod.yaml"


def test_env_dsn_beats_an_env_target(config: Path) -> None:
    env = {"FLAGCTL_DSN": "host=env", "FLAGCTL_TARGET": "staging"}
    target = resolve_target(Options(config=str(config)), env)
    assert (target.dsn, target.source) == ("host=env", "FLAGCTL_DSN")


def test_dsn_and_target_together_is_a_usage_error(config: Path) -> None:
    with pytest.raises(UsageError, match="--dsn or --target, not both"):
        resolve_target(Options(dsn="host=a", target="prod", config=str(config)), {})


def test_named_target_beats_libpq_env_and_default(config: Path) -> None:
    target = resolve_target(Options(config=str(config)), {"FLAGCTL_TARGET": "staging", "PGHOST": "pg"})
    assert target.dsn == "host=staging dbname=flags"


def test_libpq_env_beats_default_target(config: Path) -> None:
    target = resolve_target(Options(config=str(config)), {"PGSERVICE": "x"})
    assert target.dsn == "" and target.source == "PG* variables"


def test_default_target_then_embedded(config: Path, tmp_path: Path) -> None:
    assert resolve_target(Options(config=str(config)), {}).dsn == "service=prod"
    empty = tmp_path / "none.yaml"
    empty.write_text("targets: {}\n")
    assert resolve_target(Options(config=str(empty)), {}).is_local


def test_local_target_and_manifest_from_target(config: Path) -> None:
    assert resolve_target(Options(target="laptop", config=str(config)), {}).is_local
    prod = resolve_target(Options(config=str(config)), {})
    assert resolve_manifest_path(Options(), {}, prod) == "/etc/flagctl/prod.yaml"
    assert resolve_manifest_path(Options(), {"FLAGCTL_MANIFEST": "env.yaml"}, prod) == "env.yaml"
    assert (
        resolve_manifest_path(Options(manifest="flag.yaml"), {"FLAGCTL_MANIFEST": "e"}, prod) == "flag.yaml"
    )
    assert resolve_manifest_path(Options(), {}, None) == "flagctl.yaml"


def test_unknown_target_lists_the_known_ones(config: Path) -> None:
    with pytest.raises(UsageError, match="unknown target 'nope'") as caught:
        resolve_target(Options(target="nope", config=str(config)), {})
    assert caught.value.hint == "targets: prod, staging, laptop"


def test_explicit_missing_config_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="config file not found"):
        resolve_target(Options(config=str(tmp_path / "nope.yaml")), {})


def test_redacted_dsn_never_shows_the_password() -> None:
    shown = redact_dsn("postgresql://alice:s3cret@db.example:6432/flags")
    assert "s3cret" not in shown
    assert shown == "host=db.example port=6432 dbname=flags user=alice"
