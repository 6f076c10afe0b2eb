"""The documented JSON shapes (docs/json.md): keys present, one document per command."""

from __future__ import annotations

import json

from tests.conftest import Cli

MUTATION_KEYS = {"target", "action", "summary", "applied", "dry_run", "noop", "forced", "changes", "checks"}


def doc(cli: Cli, *args: str) -> dict[str, object]:
    result = cli(*args, "-o", "json")
    assert result.exit_code == 0, result.stderr
    parsed = json.loads(result.stdout)  # exactly one document: json.loads rejects trailing data
    assert isinstance(parsed, dict)
    return parsed


def test_mutation_documents(ws8: Cli) -> None:
    for args in (
        ("stage", "set", "p3", "canary"),
        ("kill", "p3-off"),
        ("release", "p3-off"),
        ("set", "p3_advisory", "off"),
    ):
        document = doc(ws8, *args, "-r", "r", "-y")
        stage_move = {"killed_by", "beneath"} if args[0] == "stage" else set()
        assert set(document) == MUTATION_KEYS | stage_move, args
        assert document["applied"] is True


def test_read_documents(ws8: Cli) -> None:
    ws8("kill", "p3-off", "-r", "r", "-y")
    assert set(doc(ws8, "status")) == {"system", "flags", "kill_switches_engaged", "freezes", "drift"}
    engaged = doc(ws8, "kill", "--list")["kill_switches"][0]["engaged"][0]  # type: ignore[index]
    assert set(engaged) == {
        "switch",
        "scope",
        "level",
        "engaged_at",
        "actor",
        "db_user",
        "reason",
        "prior",
        "applied",
        "overrides",
    }
    assert set(doc(ws8, "stage", "show", "p3")) == {
        "ladder",
        "stage",
        "entered_at",
        "values",
        "kill_switches",
        "killed_by",
        "beneath",
        "beneath_values",
        "stages",
    }
    assert set(doc(ws8, "stage", "history", "p3")) == {"ladder", "moves"}
    rows = doc(ws8, "audit", "log")["rows"]
    assert set(rows[0]) == {  # type: ignore[index]
        "seq",
        "at",
        "txid",
        "db_user",
        "actor",
        "action",
        "system",
        "flag",
        "scope",
        "target",
        "key",
        "before",
        "after",
        "reason",
        "command",
        "forced",
        "claimed",
        "request_id",
    }
    verified = {
        "ok": True, "rows": 2, "problems": [], "signatures": {"checked": 0, "unchecked": 0}, "sealed_now": 0,
    }  # fmt: skip
    assert doc(ws8, "audit", "verify") == verified  # flag was already dark


ERROR_KEYS = {"kind", "message", "hint", "exit_code", "problems"}


def error_doc(cli: Cli, *args: str) -> tuple[int, dict[str, object]]:
    result = cli(*args, "-o", "json")
    parsed = json.loads(result.stdout)  # one document, even on failure
    assert set(parsed) == {"error"} and set(parsed["error"]) == ERROR_KEYS, parsed
    assert parsed["error"]["exit_code"] == result.exit_code
    assert result.stderr.startswith("flagctl: error: ")  # people still read stderr
    return result.exit_code, parsed["error"]


def test_errors_with_json_are_one_error_document(ws8: Cli) -> None:
    code, error = error_doc(ws8, "kill", "no-such-switch", "-r", "r", "-y")
    assert (code, error["kind"]) == (2, "UsageError")
    ws8("stage", "set", "p3", "canary", "-r", "r", "-y")
    code, error = error_doc(ws8, "stage", "set", "p3", "limited", "-r", "r", "-y")
    assert (code, error["kind"]) == (1, "PolicyRefused") and "baked" in str(error["message"])
    code, error = error_doc(ws8, "--dsn", "host=/nonexistent-dir dbname=x", "status")
    assert (code, error["kind"]) == (3, "ConnectionFailed")
    code, error = error_doc(ws8, "kill", "--bogus")
    assert code == 2 and error["kind"] == "NoSuchOption"


def test_a_failed_check_prints_only_its_report(ws8: Cli) -> None:
    ws8.sql("INSERT INTO p3_events (kind) VALUES ('phase3.contract_violation')")
    result = ws8("verify", "guardrails", "-o", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["passed"] is False  # exactly one document: the report
    assert {g["source"] for g in report["guardrails"]} == {"sql"}  # where each value was read


def test_effective_values_are_typed_with_their_reason(groups: Cli) -> None:
    flags = {f["name"]: f for f in doc(groups, "status")["flags"]}  # type: ignore[union-attr]
    assert (flags["F2"]["effective"], flags["F2"]["reason"], flags["F2"]["by"]) == (
        False,
        "stage",
        "groups/off",
    )
    assert (flags["groups_send"]["effective"], flags["groups_send"]["reason"]) == (True, "default")
    groups("kill", "KS5", "-r", "r", "-y")
    flags = {f["name"]: f for f in doc(groups, "status")["flags"]}  # type: ignore[union-attr]
    assert (flags["groups_send"]["effective"], flags["groups_send"]["reason"]) == (False, "killed")
    assert flags["groups_send"]["by"] == "KS5" and flags["F1"]["effective"] == 0
    decision = doc(groups, "eval", "F2", "--id", "7")
    assert decision["effective"] is False and decision["eligible"] is False


def test_mutation_changes_carry_typed_effective_values(ws8: Cli) -> None:
    change = doc(ws8, "stage", "set", "p3", "canary", "-r", "r", "-y")["changes"][0]  # type: ignore[index]
    assert (change["effective_before"], change["effective_after"]) == (0, 1)
