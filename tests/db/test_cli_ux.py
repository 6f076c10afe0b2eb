"""What a new user meets: plain one-line errors with a hint, colour only when wanted,
durations as an operator writes them, and commands that work on every flag type."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import WS8_MANIFEST, Cli

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
GO = ("-r", "go", "-y")
BOX = ("╭", "│", "╰")


def test_stage_show_on_a_ladder_of_bool_flags(groups: Cli) -> None:
    shown = groups("stage", "show", "groups")
    assert shown.exit_code == 0, shown.stderr
    assert "F2: false (off)" in shown.stdout and "F1: enabled=false percent=0 (off)" in shown.stdout
    doc = json.loads(groups("stage", "show", "groups", "-o", "json").stdout)
    assert doc["values"]["F2"] is False and doc["values"]["F1"] == {"enabled": False, "percent": 0}
    assert [s["bake"] for s in doc["stages"]] == [None, "1d", "3d", "7d", None]


def test_durations_print_as_an_operator_writes_them(ws8: Cli) -> None:
    doc = json.loads(ws8("stage", "show", "p3", "-o", "json").stdout)
    assert [s["bake"] for s in doc["stages"]][:3] == [None, "30m", "1h"]


def test_stage_history_names_the_flags(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    history = ws8("stage", "history", "p3")
    assert "p3_advisory enabled=true percent=1" in history.stdout


def test_watch_refuses_a_zero_interval(recsys: Cli) -> None:
    result = recsys("watch", "--interval", "0s", "--count", "3")
    assert result.exit_code == 2 and "--interval 0s" in result.stderr
    assert recsys.sleeper.slept == []


@pytest.mark.parametrize(
    ("args", "first", "hint"),
    [
        (["thaw"], "flagctl: error: no such command 'thaw'", "see the commands: flagctl --help"),
        (["stauts"], "flagctl: error: no such command 'stauts'", "did you mean: flagctl status?"),
        (["stage", "set"], "flagctl: error: Missing argument 'ladder'.", "see: flagctl stage set --help"),
        (["kill", "--bogus"], "flagctl: error: No such option: --bogus", "see: flagctl kill --help"),
    ],
)
def test_parser_errors_are_one_plain_line_and_a_hint(args: list[str], first: str, hint: str) -> None:
    result = subprocess.run(
        [FLAGCTL, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [first, f"  {hint}"]
    assert result.stdout == "" and not any(c in result.stderr for c in BOX)
    assert "release" not in result.stderr


def on_a_terminal(*args: str, stream: str = "stderr", **env: str) -> str:
    """Run flagctl with one stream (stderr, or stdout) on a pseudo-terminal and the other
    one discarded; what it wrote there."""
    leader, follower = pty.openpty()
    environ = {k: v for k, v in os.environ.items() if k != "NO_COLOR"} | env
    streams = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, stream: follower}
    proc = subprocess.Popen([FLAGCTL, *args], stdin=subprocess.DEVNULL, env=environ, **streams)
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:
            break
        if not chunk:
            break
        chunks.append(chunk)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks).decode()


def test_colour_on_a_terminal_unless_no_color() -> None:
    assert "\x1b[" in on_a_terminal("thaw")
    plain = on_a_terminal("thaw", NO_COLOR="1")
    assert "\x1b[" not in plain and "flagctl: error: no such command 'thaw'" in plain


def test_a_connection_error_keeps_libpq_s_first_line() -> None:
    result = subprocess.run(
        [FLAGCTL, "--dsn", "host=/nonexistent-dir dbname=x", "--manifest", str(WS8_MANIFEST), "status"],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert result.returncode == 3
    first = result.stderr.splitlines()[0]
    assert first.startswith("flagctl: error: cannot connect to target host=/nonexistent-dir dbname=x (--dsn)")
    assert 'socket "/nonexistent-dir/.s.PGSQL.5432" failed: No such file or directory' in first


def closed_reader(*args: str) -> subprocess.CompletedProcess[str]:
    """Run flagctl with its stdout a pipe whose reader has already gone, as after
    `flagctl status | head -1` once head has its line: every write fails with EPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [FLAGCTL, *args],
            stdout=write,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            timeout=60,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("status",), 0),
        (("stage", "show", "p3"), 0),
        (("release", "p3-off", "-r", "INC-1", "-y"), 0),  # the release is made; only its report is cut
        (("--help",), 0),
        (("audit", "export"), 0),
        (("verify", "guardrails"), 1),  # a failing check still says so by its exit code
    ],
)
def test_a_reader_that_goes_away_ends_the_output_quietly(ws8: Cli, args: tuple[str, ...], code: int) -> None:
    """`flagctl status | head -1` printed "internal error: BrokenPipeError … this is a bug in
    flagctl" and exited 1, failing `set -o pipefail` scripts. Now the output just stops, as
    a Unix tool's does, and the command ends with its own exit code."""
    assert ws8("stage", "set", "p3", "canary", "-r", "go", "-y").exit_code == 0
    assert ws8("kill", "p3-off", "-r", "INC-1", "-y").exit_code == 0
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")  # a guardrail fails
    result = closed_reader("--dsn", ws8.dsn, "--manifest", str(ws8.manifest), *args)
    assert result.returncode == code, result.stderr
    assert "BrokenPipe" not in result.stderr and "internal error" not in result.stderr
    # stderr is still the command's own: nothing on it but a failed check's verdict
    assert result.stderr == (
        "" if code == 0 else "flagctl: error: verification failed: no_contract_violations\n"
    )
    if args[0] == "release":
        assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


def help_on_a_terminal(*args: str) -> str:
    """Run flagctl with stdout on a pseudo-terminal (the rich help renderer), 200 columns,
    colours taken out."""
    shown = on_a_terminal(*args, stream="stdout", COLUMNS="200", TERM="xterm")
    return re.sub(r"\x1b\[[0-9;]*m", "", shown)


@pytest.mark.parametrize(
    "var", ["FLAGCTL_TARGET", "FLAGCTL_DSN", "FLAGCTL_MANIFEST", "FLAGCTL_CONFIG", "FLAGCTL_SYSTEM"]
)
def test_help_names_each_environment_variable_on_a_terminal_as_in_a_pipe(var: str) -> None:
    """Rich took `[env: FLAGCTL_DSN]` for markup and dropped it: on a terminal `--help` said
    "Named target from the config file ." Both renderers now show it."""
    wide = {**os.environ, "COLUMNS": "200"}
    piped = subprocess.run(
        [FLAGCTL, "--help"], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60, env=wide
    )
    assert f"[env: {var}]" in " ".join(piped.stdout.split())
    shown = help_on_a_terminal("--help")
    assert "╭" in shown  # the rich renderer drew it
    assert f"[env: {var}]" in shown and "file ." not in shown


def test_kill_and_release_diffs_name_each_scope_and_the_default(groups: Cli) -> None:
    """`kill` printed `groups_create: true → false` for a workspace override, and `release`
    printed `groups_create: false → (unset)` for the global row the kill had created. Each
    line now names its scope (as `audit log` does) and says "default" for a global value
    that goes back to the manifest's default."""
    go = ("-r", "INC-7", "-y")
    assert groups("set", "groups_create", "on", "--scope", "workspace:42", *go).exit_code == 0
    killed = groups("kill", "KS2", *go)
    assert killed.exit_code == 0, killed.stderr
    lines = killed.stdout.splitlines()
    assert "  groups_create: true → false" in lines
    assert "  groups_create at workspace:42: true → false" in lines
    released = groups("release", "KS2", *go)
    assert released.exit_code == 0, released.stderr
    lines = released.stdout.splitlines()
    assert "  groups_create: false → default" in lines
    assert "  groups_create at workspace:42: false → true" in lines


@pytest.mark.parametrize(
    "args",
    [
        ("-o", "json", "status"),
        ("--output", "json", "status"),
        ("--output=json", "stage", "show", "p3"),
        ("--lock-timeout", "2s", "-o", "json", "stage", "show", "p3"),
        ("status", "-o", "json"),
    ],
)
def test_output_is_taken_before_the_command_as_after_it(ws8: Cli, args: tuple[str, ...]) -> None:
    """`flagctl -o json status` said "No such option: -o", though every command takes
    --output/-o: before the command it now means the same as after it."""
    result = ws8(*args)
    assert result.exit_code == 0, result.stderr
    json.loads(result.stdout)


@pytest.mark.parametrize("args", [("nosuchcommand", "-o", "json"), ("-o", "json", "nosuchcommand")])
def test_an_unknown_command_asked_for_json_answers_with_the_error_document(args: tuple[str, ...]) -> None:
    """`flagctl nosuchcommand -o json` printed nothing on stdout, though a script asking for
    JSON can always parse the answer (docs/json.md)."""
    result = subprocess.run(
        [FLAGCTL, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )
    assert result.returncode == 2
    error = json.loads(result.stdout)["error"]
    assert (error["kind"], error["exit_code"]) == ("UsageError", 2)
    assert "nosuchcommand" in error["message"] and "nosuchcommand" in result.stderr


@pytest.mark.parametrize("command", [(), ("kill",), ("stage", "set")])
def test_help_shows_no_value_type_for_an_on_off_option(command: tuple[str, ...]) -> None:
    """Rich help listed `--debug <bool>`, `--version <bool>`, `--all-targets <bool>` as if
    they took a value."""
    shown = help_on_a_terminal(*command, "--help")
    assert "╭" in shown and "--help" in shown
    assert "<bool>" not in shown


@pytest.mark.parametrize("command", [(), ("verify",), ("stage",), ("db",)])
def test_a_group_without_its_command_shows_its_help_not_an_error(command: tuple[str, ...]) -> None:
    """`flagctl verify` printed "flagctl: error: Usage: …": the help, dressed as an error.
    It prints the help itself (on stderr: stdout is for results) and exits 2, a command
    being missing."""
    result = subprocess.run(
        [FLAGCTL, *command], capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.startswith(f"Usage: {' '.join(['flagctl', *command])} [OPTIONS] COMMAND")
    assert "error" not in result.stderr.splitlines()[0] and result.stdout == ""


def test_db_init_says_installed_then_up_to_date_and_db_status_prints_keys_as_text(ws8: Cli, make_cli) -> None:  # type: ignore[no-untyped-def]
    """`db init` on an empty database said "upgraded"; `db status` printed a binding's key as
    a Python dict (`{'feature_name': 'p3_advisory'}`)."""
    fresh = make_cli(WS8_MANIFEST.read_text(), (WS8_MANIFEST.parent / "schema.sql").read_text())
    first = fresh("db", "init")
    assert first.exit_code == 0, first.stderr
    assert first.stdout.splitlines()[0].startswith("schema flagctl installed at version ")
    assert fresh("db", "init").stdout.splitlines()[0].startswith("schema flagctl is up to date")
    status = ws8("db", "status")
    assert "feature_name=p3_advisory" in status.stdout and "{'" not in status.stdout


def test_output_before_the_command_never_becomes_another_options_value(ws8: Cli) -> None:
    """Moved to the end, `flagctl -o json set FLAG off --reason` (the reason forgotten) read
    `--reason -o` and a stray `json`: a set attempt instead of a usage error."""
    result = ws8("-o", "json", "set", "p3_advisory", "off", "--reason")
    assert result.exit_code == 2 and "--reason" in result.stderr
    assert json.loads(result.stdout)["error"]["exit_code"] == 2
    assert ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'set'") == [(0,)]
