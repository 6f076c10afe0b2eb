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
        assert set(document) == MUTATION_KEYS, args
        assert document["applied"] is True


def test_read_documents(ws8: Cli) -> None:
    ws8("kill", "p3-off", "-r", "r", "-y")
    assert set(doc(ws8, "status")) == {"system", "flags", "kill_switches_engaged"}
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
    }
    assert set(doc(ws8, "stage", "show", "p3")) == {
        "ladder",
        "stage",
        "entered_at",
        "values",
        "kill_switches",
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
    }
    assert doc(ws8, "audit", "verify") == {"ok": True, "rows": 1, "problems": []}  # flag was already dark
