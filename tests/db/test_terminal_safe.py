"""Strings read from the database reach the operator's terminal escaped, never raw.

An actor or reason a session declared, a request's summary, a gate's application name: any
of them can carry ESC/OSC sequences (retitle the window, move the cursor, hide a line) or
bidirectional overrides. Every text flagctl prints shows them escaped; JSON keeps them
exact (json escapes them itself)."""

from __future__ import annotations

import json

import psycopg

from tests.conftest import Cli

GO = ("-r", "INC-1", "-y")
EVIL = "mallory\x1b]0;owned\x07\x1b[2K\r\u202eokay"


def forge(cli: Cli) -> None:
    """A change in psql, declaring an actor and a reason that carry escape sequences."""
    with psycopg.connect(cli.dsn) as conn:  # one transaction, declared as flagctl declares it
        conn.execute("SELECT flagctl.begin_change('set', %s, %s, NULL, NULL)", (EVIL, EVIL))
        conn.execute("UPDATE p3_feature_state SET rollout_percent = 3 WHERE feature_name = 'p3_advisory'")


def raw_controls(text: str) -> list[str]:
    return [c for c in text if (ord(c) < 0x20 and c not in "\n\t") or 0x7F <= ord(c) < 0xA0 or c == "\u202e"]


def test_audit_log_and_status_show_escapes_escaped(ws8: Cli) -> None:
    forge(ws8)
    for command in (("audit", "log"), ("status",), ("stage", "show", "p3")):
        result = ws8(*command)
        assert result.exit_code == 0, result.stderr
        assert raw_controls(result.stdout) == [], command
        assert "\\x0d" in result.stdout or command != ("audit", "log")  # not a line break
        assert "\\x1b]0;owned\\x07" in result.stdout or command != ("audit", "log")
    log = json.loads(ws8("audit", "log", "-o", "json").stdout)
    rows = [row for row in log["rows"] if row["action"] != "manifest.publish"]
    assert [(row["actor"], row["reason"]) for row in rows] == [(EVIL, EVIL)]  # exact in JSON


def test_a_gate_clients_application_name_is_shown_escaped(ws8: Cli) -> None:
    ws8.sql(
        "INSERT INTO flagctl.clients (system, host, pid, application) VALUES ('phase3', 'h', 1, %s)", (EVIL,)
    )
    result = ws8("clients")
    assert result.exit_code == 0, result.stderr
    assert raw_controls(result.stdout) == []
    assert "\\x1b]0;owned" in result.stdout


def test_an_error_with_database_text_is_escaped(ws8: Cli) -> None:
    result = ws8("kill", "no\x1b[2Jsuch", *GO)
    assert result.exit_code == 2
    assert raw_controls(result.stderr) == []
