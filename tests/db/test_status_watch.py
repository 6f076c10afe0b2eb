"""`flagctl status --watch`: the status, then every change as it commits — woken by the audit
trigger's notification, not by polling; plain lines without a terminal, JSON Lines with
-o json, a live table on a terminal. Ctrl-C ends it with exit 0, a lost connection with 3.

Each in-process test makes its changes itself, with real commands on their own connections,
from inside the watch's wait (``Changing``), so the watch's next read must show them; no
test sleeps or depends on how fast the machine is.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from flagctl.cli.app import app
from flagctl.cli.env import Capabilities, Environment
from flagctl.cli.render import when
from flagctl.store.changes import Listener
from tests.conftest import Cli
from tests.db.test_cli_ux import closed_reader

FLAGCTL = str(Path(sys.executable).parent / "flagctl")
GO = ("-r", "INC-1: watch me", "-y", "--actor", "alice")
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC  ")


@dataclass
class Changing:
    """The watch's source of changes, wrapped: before each wait it makes the next change
    (a real command, committed on its own connection), then waits on the real LISTEN
    connection, where that change's notification has already been sent. ``silent``: do not
    ask the real listener (as if the notification were lost) and let the time pass on the
    test's clock instead."""

    real: Listener
    steps: list[Callable[[], Any]]
    cli: Cli
    silent: bool = False
    waits: list[float] = field(default_factory=list)

    def wait(self, timeout: float) -> int:
        self.waits.append(timeout)
        if self.steps:
            self.steps.pop(0)()
        elif not self.silent:
            raise AssertionError("the watch waited once more than the test has changes for")
        if self.silent:
            self.cli.clock.advance(seconds=timeout)
            return 0
        return self.real.wait(timeout)


def watch(
    cli: Cli, *args: str, steps: list[Callable[[], Any]], silent: bool = False
) -> tuple[Result, Changing]:
    """Run `flagctl status ARGS` in-process (not on a terminal), its waits through Changing."""
    made: list[Changing] = []

    def listen(conn: Any, system: str) -> Changing:
        made.append(Changing(Listener(conn, system), list(steps), cli, silent))
        return made[-1]

    environ = {"FLAGCTL_DSN": cli.dsn, "FLAGCTL_MANIFEST": str(cli.manifest)}
    obj = Environment(
        Capabilities(
            environ={**os.environ, **environ}, clock=cli.clock, sleep=cli.sleeper, stdin_isatty=False,
            argv=["flagctl", "status", *args], listen=listen,
        )
    )  # fmt: skip
    result = CliRunner().invoke(app, ["status", *args], env=environ, obj=obj)
    assert made, result.stdout + result.stderr
    return result, made[0]


def appended(stdout: str) -> list[str]:
    """The lines a watch appended after the status it printed first."""
    return [line for line in stdout.splitlines() if STAMP.match(line)]


def test_plain_lines_name_only_the_flags_a_change_moved(groups: Cli) -> None:
    result, changing = watch(
        groups, "--watch", "--count", "2",
        steps=[
            lambda: groups("kill", "KS2", *GO),
            lambda: groups("set", "F3", "on", "--scope", "workspace:42", *GO),
        ],
    )  # fmt: skip
    assert result.exit_code == 0, result.stdout + result.stderr
    lines = appended(result.stdout)
    first = result.stdout.split(lines[0])[0] if lines else result.stdout
    assert first.startswith("system groups: 7 flags; no kill engaged")  # the status, as `status` prints it
    assert "KS2" not in first and "workspace:42" not in first  # as it stood before the changes
    assert len(lines) == 2, result.stdout
    assert lines[0].endswith(
        "groups_create: on → off (killed by KS2)  — kill by alice (db: postgres): INC-1: watch me"
    )
    assert lines[1].endswith(
        "F3@workspace:42: (no override) → on  — set by alice (db: postgres): INC-1: watch me"
    )
    for untouched in ("F1", "F2", "F4", "F5", "groups_send", "F3:"):
        assert not any(f"  {untouched}" in line for line in lines), lines  # not changed: not shown
    # the time of each line is the change's own, as the audit trail has it
    [(at,)] = groups.sql("SELECT at FROM flagctl.audit WHERE flag = 'groups_create' AND action = 'kill'")
    assert lines[0].startswith(f"{when(at)}  ")
    assert "watching groups on target" in result.stderr and "Ctrl-C to stop" in result.stderr
    assert changing.waits == [30.0, 30.0]  # one wait per change: no polling in between


def test_json_lines_one_document_per_change(ws8: Cli) -> None:
    result, _ = watch(ws8, "-w", "-o", "json", "--count", "1", steps=[lambda: ws8("kill", "p3-off", *GO)])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2, result.stdout
    first, second = (json.loads(line) for line in lines)  # each line a document of its own
    assert first["changes"] == []
    assert first["status"]["flags"][0]["by"] == "p3/dark" and first["status"]["kill_switches_engaged"] == []
    assert second["seq"] > first["seq"]
    [change] = second["changes"]
    assert change["flag"] == "p3_advisory" and change["scope"] == "global"
    assert change["before"] == {"effective": 0, "reason": "stage", "by": "p3/dark"}
    assert change["after"] == {"effective": 0, "reason": "killed", "by": "p3-off"}
    assert change["change"]["action"] == "kill" and change["change"]["reason"] == "INC-1: watch me"
    assert second["status"]["flags"][0]["by"] == "p3-off"
    assert second["status"] == json.loads(ws8("status", "-o", "json").stdout)  # the same document as status


def test_a_change_that_moves_no_flag_counts_but_prints_no_line(ws8: Cli) -> None:
    """A refused promotion and a freeze are audited (and notified) but change nothing a
    subject sees."""
    refused = ("stage", "set", "p3", "limited", "-r", "skip ahead", "-y")
    freeze = ("freeze", "set", "--until", "1h", *GO)
    result, _ = watch(ws8, "-w", "--count", "2", steps=[lambda: ws8(*refused), lambda: ws8(*freeze)])
    assert result.exit_code == 0, result.stdout + result.stderr
    assert appended(result.stdout) == []


def test_timeout_ends_the_watch_and_the_heartbeat_sees_a_change_left_unnotified(ws8: Cli) -> None:
    """The waits are bounded by --timeout on the injected clock; between changes the watch
    asks for the newest audit row every 30 s, so even a change whose notification never came
    is shown."""
    result, changing = watch(
        ws8, "-w", "--timeout", "2m", steps=[lambda: None, lambda: ws8("kill", "p3-off", *GO)], silent=True
    )
    assert result.exit_code == 0, result.stdout + result.stderr
    assert changing.waits == [30.0, 30.0, 30.0, 30.0]  # 2 minutes, in heartbeats, on the test's clock
    [line] = appended(result.stdout)
    assert "p3_advisory: off → off (killed by p3-off)  — kill by alice" in line


def test_a_lost_connection_is_exit_3(ws8: Cli) -> None:
    def end_the_watchers_session() -> None:  # the test's own sessions are not flagctl's
        ws8.sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'flagctl' AND pid <> pg_backend_pid()"
        )

    target = ws8.dsn.replace("user=postgres ", "") + " user=postgres"  # as flagctl names a DSN
    for output in ("table", "json"):
        result, _ = watch(ws8, "-w", "-o", output, steps=[end_the_watchers_session])
        assert result.exit_code == 3, result.stdout + result.stderr
        said = result.stderr.splitlines()
        if output == "table":  # for people, on stderr: what it watches
            assert said.pop(0).startswith(f"watching phase3 on target {target}")
        assert said[0].startswith(f"flagctl: error: status --watch lost the connection to target {target}: ")
        assert said[1:] == ["  the watch has stopped; run it again once the database answers"]
        if output == "json":
            *docs, error = (json.loads(line) for line in result.stdout.splitlines())  # still JSON Lines
            assert len(docs) == 1 and error["error"]["kind"] == "ConnectionFailed"
            assert error["error"]["exit_code"] == 3


def test_watch_options_are_checked(ws8: Cli) -> None:
    assert ws8("status", "--count", "1").exit_code == 2
    bad = ws8("status", "-w", "--timeout", "soon")
    assert bad.exit_code == 2 and "--timeout" in bad.stderr
    fanned = ws8("--target", "eu,us", "status", "--watch")
    assert fanned.exit_code == 2 and "status --watch watches one target" in fanned.stderr


def test_a_reader_that_goes_away_ends_the_watch(ws8: Cli) -> None:
    """`flagctl status --watch | head -3`: once head has its lines, the watch ends (exit 0)
    instead of watching on for a reader that is gone."""
    result = closed_reader(
        "--dsn", ws8.dsn, "--manifest", str(ws8.manifest), "status", "-w", "--timeout", "60s"
    )
    assert result.returncode == 0 and result.stderr == ""


def read_until(fd: int, seen: bytearray, text: str, proc: subprocess.Popen[bytes]) -> str:
    """Read the pseudo-terminal until ``text`` appears (or the process ends); all read so far."""
    while text.encode() not in seen:
        ready, _, _ = select.select([fd], [], [], 60)
        if not ready:
            raise AssertionError(f"{text!r} never appeared:\n{seen.decode(errors='replace')}")
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            chunk = b""
        if not chunk:
            raise AssertionError(
                f"ended (exit {proc.poll()}) before {text!r}:\n{seen.decode(errors='replace')}"
            )
        seen += chunk
    return seen.decode(errors="replace")


def test_on_a_terminal_a_live_table_redrawn_on_each_change_and_ctrl_c_ends_it(ws8: Cli) -> None:
    leader, follower = pty.openpty()
    environ = {**os.environ, "COLUMNS": "200", "TERM": "xterm", "FLAGCTL_DSN": ws8.dsn,
               "FLAGCTL_MANIFEST": str(ws8.manifest)}  # fmt: skip
    proc = subprocess.Popen(
        [FLAGCTL, "status", "--watch", "--timeout", "120s"],
        stdin=subprocess.DEVNULL, stdout=follower, stderr=subprocess.PIPE, env=environ,
    )  # fmt: skip
    os.close(follower)
    seen = bytearray()
    try:
        first = read_until(leader, seen, "Ctrl-C to stop", proc)  # listening: it is drawn after LISTEN
        assert "phase3 on target " in first and "watching" in first and "killed by p3-off" not in first
        assert ws8("kill", "p3-off", *GO).exit_code == 0
        redrawn = read_until(leader, seen, "off (killed by p3-off)", proc)[len(first) :]
        seq = ws8.sql("SELECT max(seq) FROM flagctl.audit")[0][0]
        assert f"last change #{seq} " in redrawn and "(kill by alice (db: postgres))" in redrawn
        assert "\x1b[" in redrawn  # drawn in place by rich, not appended as plain lines
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        assert proc.stderr is not None and proc.stderr.read() == b""  # quiet: no "aborted", no traceback
    finally:
        proc.kill() if proc.poll() is None else None
        os.close(leader)
