"""The kill's fast-path reader: what it takes, what it leaves to the parser, and that its
option tables are the typer command's own (no database)."""

from __future__ import annotations

import pytest
import typer.main

from flagctl.cli import fastkill
from flagctl.cli.app import app
from flagctl.cli.fastkill import KillLine, read


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["kill", "KS5", "-r", "INC-1", "-y"], KillLine("KS5", {}, {"reason": "INC-1", "yes": True})),
        (
            [
                "--dsn",
                "host=/x",
                "--lock-timeout",
                "0",
                "kill",
                "p3-off",
                "--reason=why",
                "--scope",
                "workspace:42",
            ],
            KillLine(
                "p3-off", {"dsn": "host=/x", "lock_timeout": "0"}, {"reason": "why", "scope": "workspace:42"}
            ),
        ),
        (
            ["-t", "prod", "--debug", "kill", "--yes", "--break-locks", "KS1", "-o", "json", "--dry-run"],
            KillLine(
                "KS1",
                {"target": "prod", "debug": True},
                {"yes": True, "break_locks": True, "output": "json", "dry_run": True},
            ),
        ),
        (
            [
                "kill",
                "KS5",
                "--wait-ack",
                "--timeout",
                "2s",
                "--live=10s",
                "--actor",
                "alice",
                "--request-id",
            ][:-1],
            KillLine("KS5", {}, {"wait_ack": True, "timeout": "2s", "live": "10s", "actor": "alice"}),
        ),
        (
            ["--manifest", "kill", "kill", "KS5"],
            KillLine("KS5", {"manifest": "kill"}, {}),
        ),  # a value named kill
    ],
)
def test_it_reads_a_plain_kill(args: list[str], expected: KillLine) -> None:
    assert read(args) == expected


@pytest.mark.parametrize(
    "args",
    [
        ["status"],
        ["kill"],  # no switch: the parser says what is missing
        ["kill", "--list"],
        ["kill", "KS5", "--help"],
        ["--help"],
        ["kill", "KS5", "-h"],
        ["--version", "kill", "KS5"],
        ["kill", "KS5", "KS4"],  # a second argument
        ["kill", "KS5", "-r"],  # a missing value
        ["kill", "KS5", "-r", "--yes"],  # a value that looks like an option
        ["kill", "KS5", "-r", "a", "-r", "b"],  # repeated
        ["kill", "KS5", "-ry", "x"],  # short options run together
        ["kill", "KS5", "-rwhy"],  # a value attached to a short option
        ["kill", "KS5", "--yes=true"],  # a value given to a flag
        ["kill", "KS5", "-o", "yaml"],  # not a format: the parser names the choices
        ["kill", "KS5", "--dsn", "x"],  # a global option after the command
        ["kill", "KS5", "--"],
        ["--all-targets", "kill", "KS5"],
        ["--per-target-timeout", "5s", "kill", "KS5"],
        ["stage", "set", "kill", "KS5"],
    ],
)
def test_anything_else_is_left_to_the_parser(args: list[str]) -> None:
    assert read(args) is None
    assert fastkill.run(args) is None  # so main() hands it to typer, which runs or refuses it


def test_a_fan_out_and_text_that_is_not_utf8_are_left_to_the_parser() -> None:
    assert fastkill.run(["--target", "a,b", "kill", "KS5", "-r", "x", "-y"]) is None
    assert fastkill.run(["kill", "KS5", "-r", "caf\udce9", "-y"]) is None


def _options(command: typer.main.TyperCommand | typer.main.TyperGroup) -> dict[str, str]:
    found = {}
    for param in command.params:
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("-"):
                found[opt] = str(param.name)
    return found


def test_its_tables_are_the_typer_declarations() -> None:
    """Every option the fast path reads means what the typer command declares; every
    option of the typer kill is read by the fast path or deliberately left to the parser."""
    group = typer.main.get_command(app)
    kill = group.commands["kill"]  # type: ignore[attr-defined]
    root, own = _options(group), _options(kill)
    for table, declared in (
        (fastkill.ROOT_VALUES | fastkill.ROOT_FLAGS, root),
        (fastkill.KILL_VALUES | fastkill.KILL_FLAGS, own),
    ):
        for option, name in table.items():
            assert declared.get(option) == name, option
    assert set(own) - set(fastkill.KILL_VALUES) - set(fastkill.KILL_FLAGS) == {"--list"}
    assert set(root) - set(fastkill.ROOT_VALUES) - set(fastkill.ROOT_FLAGS) == {
        "--all-targets", "--per-target-timeout", "--version", "--install-completion", "--show-completion",
    }  # fmt: skip
    flags = {opt for p in [*group.params, *kill.params] if getattr(p, "is_flag", False) for opt in p.opts}
    assert flags >= set(fastkill.ROOT_FLAGS) | set(fastkill.KILL_FLAGS)
    envvars = {str(p.name): p.envvar for p in group.params if p.envvar}
    assert envvars == fastkill.ROOT_ENVVARS


def test_its_defaults_choices_and_environment_are_the_typer_declarations() -> None:
    """The names matched, but a default changed on one side only (typer's --lock-timeout 5s
    → 7s, or kill --live 30s → 90s) passed every test. Both now read fastkill.DEFAULTS; this
    holds each typer default, --output's choices and each environment variable to it."""
    group = typer.main.get_command(app)
    kill = group.commands["kill"]  # type: ignore[attr-defined]
    declared = {str(p.name): p for p in [*group.params, *kill.params]}
    for name, default in fastkill.DEFAULTS.items():
        param = declared[name]
        value = param.default.value if hasattr(param.default, "value") else param.default
        assert value == default, name
    for name, envvar in fastkill.ROOT_ENVVARS.items():
        assert declared[name].envvar == envvar, name
    choices = declared["output"].type_descriptor.choices  # type: ignore[attr-defined]
    assert tuple(str(getattr(c, "value", c)) for c in choices) == fastkill.OUTPUTS
    fast = {opt for opt in fastkill.KILL_VALUES} | set(fastkill.ROOT_VALUES)
    for param in [*group.params, *kill.params]:  # a value the fast path reads has its default here
        if (
            any(opt in fast for opt in param.opts)
            and param.default is not None
            and param.name not in ("reason", "actor")
        ):
            assert str(param.name) in fastkill.DEFAULTS, param.name
