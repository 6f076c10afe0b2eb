"""Fleet fan-out: one command over several targets in parallel, one result per target, a
partial failure neither hidden nor rolled back; a libpq multi-host DSN is one target."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GROUPS_MANIFEST, Cli, Templates

GO = ("-r", "INC-11", "-y")
KILLED = "SELECT count(*) FROM flagctl.engaged_switch WHERE switch = 'KS5'"


@pytest.fixture
def fleet(templates: Templates, tmp_path: Path) -> Iterator[tuple[Cli, list[str]]]:
    """Three Groups databases as targets eu, us, apac (and a config file naming them)."""
    dsns = [templates.database("groups", GROUPS_MANIFEST, None) for _ in range(3)]
    config = tmp_path / "config.yaml"
    lines = ["targets:"] + [
        f"  {name}: {{dsn: '{dsn}', manifest: '{GROUPS_MANIFEST}'}}"
        for name, dsn in zip(("eu", "us", "apac"), dsns, strict=True)
    ]
    config.write_text("\n".join(lines) + "\n")
    try:
        yield Cli(dsns[0], GROUPS_MANIFEST), dsns
    finally:
        for dsn in dsns:
            templates.drop(dsn)


def run(cli: Cli, config: Path, *args: str):  # type: ignore[no-untyped-def]
    return cli(*args, FLAGCTL_CONFIG=str(config), FLAGCTL_DSN="")


def test_kill_on_every_target_in_parallel(fleet: tuple[Cli, list[str]], tmp_path: Path) -> None:
    cli, dsns = fleet
    config = tmp_path / "config.yaml"
    result = run(cli, config, "--all-targets", "kill", "KS5", *GO, "-o", "json")
    assert result.exit_code == 0, result.stderr
    targets = json.loads(result.stdout)["targets"]
    assert [(t["target"], t["exit_code"]) for t in targets] == [("eu", 0), ("us", 0), ("apac", 0)]
    assert all(t["output"]["applied"] for t in targets)
    for dsn in dsns:
        assert Cli(dsn, GROUPS_MANIFEST).sql(KILLED) == [(1,)]
    table = run(cli, config, "--target", "eu,us", "status")
    assert (
        table.exit_code == 0 and "eu" in table.stdout and "us" in table.stdout and "apac" not in table.stdout
    )


def test_a_partial_failure_is_shown_and_not_rolled_back(fleet: tuple[Cli, list[str]], tmp_path: Path) -> None:
    cli, dsns = fleet
    config = tmp_path / "config.yaml"
    config.write_text(
        config.read_text() + "  down: {dsn: 'host=/nonexistent-socket-dir dbname=x connect_timeout=1'}\n"
    )
    result = run(cli, config, "--target", "eu,down", "kill", "KS5", *GO)
    assert result.exit_code == 3, result.stdout + result.stderr  # the worst target's code
    assert "1 of 2 targets failed: down" in result.stderr and "nothing was rolled back" in result.stderr
    assert Cli(dsns[0], GROUPS_MANIFEST).sql(KILLED) == [(1,)]  # eu's kill stands


def test_fan_out_is_refused_for_other_commands_and_unknown_targets(
    fleet: tuple[Cli, list[str]], tmp_path: Path
) -> None:
    cli, _ = fleet
    config = tmp_path / "config.yaml"
    refused = run(cli, config, "--all-targets", "set", "F2", "on", *GO)
    assert refused.exit_code == 2 and "does not fan out" in refused.stderr
    unknown = run(cli, config, "--target", "eu,mars", "status")
    assert unknown.exit_code == 2 and "unknown target 'mars'" in unknown.stderr


def test_a_multi_host_dsn_is_one_target(groups: Cli) -> None:
    """An HA pair: libpq tries each host and keeps the one that accepts writes."""
    socket_dir = groups.dsn.split("host=")[1].split()[0]
    pair = (
        groups.dsn.replace(f"host={socket_dir}", f"host=/nonexistent-primary,{socket_dir}")
        + " target_session_attrs=read-write"
    )
    ha = Cli(pair, GROUPS_MANIFEST)
    result = ha("kill", "KS2", *GO)
    assert result.exit_code == 0, result.stderr
    assert groups.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(1,)]


def test_each_target_says_how_it_was_chosen_and_status_sums_the_system_up(
    fleet: tuple[Cli, list[str]], tmp_path: Path
) -> None:
    """A fan-out child's error said "(--target)" when the operator had typed --all-targets,
    and a fan-out `status` read "system groups" for every target: each line now says how the
    target was chosen, and status's first line sums the system up."""
    cli, _ = fleet
    config = tmp_path / "config.yaml"
    config.write_text(
        config.read_text() + "  down: {dsn: 'host=/nonexistent-socket-dir dbname=x connect_timeout=1'}\n"
    )
    assert run(cli, config, "--target", "eu", "kill", "KS2", *GO).exit_code == 0
    result = run(cli, config, "--all-targets", "status", "-o", "json")
    by_target = {t["target"]: t for t in json.loads(result.stdout)["targets"]}
    assert "(--all-targets)" in by_target["down"]["error"] and "(--target)" not in by_target["down"]["error"]
    table = run(cli, config, "--target", "eu,us", "status").stdout
    rows = {
        line.split()[0]: line
        for line in table.splitlines()
        if line.split() and line.split()[0] in ("eu", "us")
    }
    assert "killed by KS2" in rows["eu"] and "no kill engaged" in rows["us"]
    assert "groups: 7 flags" in rows["us"]
