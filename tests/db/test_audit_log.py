"""audit log for people and machines: filters, the ORCA format, export for archiving."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Cli

GO = ("-y",)


def changes(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", "-r", "WS8 stage 1", "--actor", "alice", *GO).exit_code == 0
    assert ws8("kill", "p3-off", "-r", "INC-4", "--actor", "bob", *GO).exit_code == 0
    assert ws8("release", "p3-off", "-r", "INC-4 over", "--actor", "bob", *GO).exit_code == 0


def rows(cli: Cli, *args: str) -> list[dict]:  # type: ignore[type-arg]
    result = cli("audit", "log", "-o", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["rows"]  # type: ignore[no-any-return]


def test_filters_by_actor_action_and_time(ws8: Cli) -> None:
    changes(ws8)
    assert {r["actor"] for r in rows(ws8, "--actor", "bob")} == {"bob"}
    assert {r["action"] for r in rows(ws8, "--action", "kill")} == {"kill"}
    assert {r["action"] for r in rows(ws8, "--action", "stage.*")} == {"stage.set"}
    assert {r["db_user"] for r in rows(ws8, "--actor", "postgres")} == {"postgres"}  # the database user too
    assert rows(ws8, "--until", "1h") == []  # everything is newer than an hour ago
    assert len(rows(ws8, "--since", "1h")) == len(rows(ws8))
    assert rows(ws8, "--action", "st_ge.set") == []  # _ is not a wildcard


def test_orca_format_is_one_json_line_per_flag_change(ws8: Cli) -> None:
    changes(ws8)
    result = ws8("audit", "log", "--format", "orca")
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [set(line) for line in lines] == [
        {
            "timestamp",
            "flag_name",
            "previous_value",
            "new_value",
            "changed_by",
            "rollout_percentage",
            "reason",
        }
    ] * 3
    released, killed, staged = lines  # newest first
    assert (staged["flag_name"], staged["previous_value"], staged["new_value"], staged["rollout_percentage"]) == (
        "p3_advisory", False, True, 1,
    )  # fmt: skip
    assert (staged["changed_by"], staged["reason"]) == ("alice", "WS8 stage 1")
    assert (killed["new_value"], killed["rollout_percentage"], killed["changed_by"]) == (False, 0, "bob")
    assert released["timestamp"].endswith("Z")


def test_export_streams_every_row_oldest_first(ws8: Cli, tmp_path: Path) -> None:
    changes(ws8)
    target = tmp_path / "audit.jsonl"
    result = ws8("audit", "export", "--since", "1h", "--file", str(target))
    assert result.exit_code == 0 and "exported" in result.stderr
    exported = [json.loads(line) for line in target.read_text().splitlines()]
    assert [r["seq"] for r in exported] == sorted(r["seq"] for r in rows(ws8, "--limit", "1000"))
    assert [r["action"] for r in exported[:2]] == ["manifest.publish", "stage.set"]  # db init published
    assert "request_id" in exported[1]
    to_stdout = ws8("audit", "export")
    assert len(to_stdout.stdout.splitlines()) == len(exported)


def test_a_bad_until_is_a_usage_error(ws8: Cli) -> None:
    result = ws8("audit", "log", "--until", "someday")
    assert result.exit_code == 2 and "--until" in result.stderr
