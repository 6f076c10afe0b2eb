"""Drills: a kill or a rollback rehearsed for real, proved, timed, recorded — and the flag
tables left exactly as found, also when a step fails or the operator presses Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli

GO = ("-r", "monthly drill", "-y")
OWN = "SELECT flag, scope, value::text FROM flagctl.flag_state ORDER BY flag, scope"
WS8_ROW = "SELECT feature_name, enabled, rollout_percent FROM p3_feature_state ORDER BY 1"


def tables(cli: Cli) -> tuple[object, ...]:
    """The flag tables, row for row, and the engaged switches."""
    return (
        cli.sql(OWN),
        cli.sql("SELECT switch, scope FROM flagctl.engaged_switch ORDER BY 1, 2"),
        cli.sql(WS8_ROW) if cli.sql("SELECT to_regclass('p3_feature_state')")[0][0] else None,
    )


def drill(cli: Cli, tmp_path: Path, *args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    result = cli("drill", *args, "--report", str(tmp_path / "report.md"), "-o", "json", *GO)
    assert "Traceback" not in result.stderr
    return result.exit_code, json.loads(result.stdout) if result.stdout.strip() else {}


@pytest.mark.parametrize("switch", ["KS1", "KS2", "KS3", "KS4", "KS5"])
def test_a_drill_of_every_groups_kill_switch_leaves_the_tables_unchanged(
    groups: Cli, tmp_path: Path, switch: str
) -> None:
    assert groups("stage", "set", "groups", "stage1-pilot", "--force", *GO).exit_code == 0
    assert groups("set", "F3", "false", "--scope", "workspace:42", *GO).exit_code == 0
    before = tables(groups)
    code, result = drill(groups, tmp_path, "kill", switch)
    assert code == 0, result
    assert result["verdict"] == "passed" and result["restored"] is True
    assert [s["ok"] for s in result["steps"]] == [True, True]
    assert all(s["committed_ms"] is not None and s["proved_ms"] >= s["committed_ms"] for s in result["steps"])
    assert tables(groups) == before
    report = (tmp_path / "report.md").read_text()
    assert f"kill switch `{switch}`" in report and "PASSED" in report and "| 1 | engage" in report
    actions = {
        a for (a,) in groups.sql("SELECT DISTINCT action FROM flagctl.audit WHERE reason LIKE '[drill%%'")
    }
    assert actions <= {"drill.kill", "drill.release"} and "drill.kill" in actions


def test_a_scoped_kill_drill(groups: Cli, tmp_path: Path) -> None:
    before = tables(groups)
    code, result = drill(groups, tmp_path, "kill", "KS4", "--scope", "workspace:42")
    assert code == 0 and result["scope"] == "workspace:42", result
    assert tables(groups) == before


def test_a_rollback_drill_of_the_ws8_ladder_leaves_the_row_unchanged(ws8: Cli, tmp_path: Path) -> None:
    assert ws8("stage", "set", "p3", "broad", "--percent", "37", "--force", *GO).exit_code == 0
    before = tables(ws8)
    code, result = drill(ws8, tmp_path, "rollback", "p3")
    assert code == 0, result
    names = [s["name"] for s in result["steps"]]
    assert names == ["step back to limited", "step back to canary", "step back to dark", "return to broad"]
    assert tables(ws8) == before == tables(ws8)
    assert ws8.sql(WS8_ROW) == [("p3_advisory", True, 37)]


def test_a_kill_drill_with_the_manifests_kill_proof(ws8: Cli, tmp_path: Path) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    before = tables(ws8)
    code, result = drill(ws8, tmp_path, "kill", "p3-off")
    assert code == 0, result
    assert any("no phase table was written while killed" in d for d in result["steps"][0]["detail"])
    assert tables(ws8) == before
    assert ws8.sleeper.slept == [10.0, 11.0]  # the proof's window and statistics lag (fake clock)


def test_a_failed_kill_proof_fails_the_drill_and_still_restores(ws8: Cli, tmp_path: Path) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    before = tables(ws8)

    def phase_keeps_writing(seconds: float) -> None:  # during the proof's window, for real
        if len(ws8.sleeper.slept) == 1:
            ws8.sql("INSERT INTO p3_advisories (resume_id, advice) VALUES ('r1', 'still here')")
            ws8.sql("SELECT pg_stat_force_next_flush()" if _has_force_flush(ws8) else "SELECT 1")

    ws8.sleeper.hooks.append(phase_keeps_writing)
    code, result = drill(ws8, tmp_path, "kill", "p3-off")
    assert code == 1 and result["verdict"] == "failed", result
    assert "phase tables were written while killed" in result["error"]
    assert result["restored"] is True and tables(ws8) == before
    assert [s["name"] for s in result["steps"]][-1] == "release (restoring)"
    assert "FAILED" in (tmp_path / "report.md").read_text()


def _has_force_flush(cli: Cli) -> bool:
    return bool(cli.sql("SELECT to_regproc('pg_stat_force_next_flush') IS NOT NULL")[0][0])


def test_a_rollback_drill_whose_step_fails_midway_restores(ws8: Cli, tmp_path: Path) -> None:
    assert ws8("stage", "set", "p3", "broad", "--percent", "30", "--force", *GO).exit_code == 0
    ws8.sql("ALTER TABLE p3_feature_state ADD CONSTRAINT no_canary CHECK (rollout_percent <> 1)")
    before = tables(ws8)
    code, result = drill(ws8, tmp_path, "rollback", "p3")
    assert code == 1 and result["verdict"] == "failed", result
    assert [s["ok"] for s in result["steps"]][:2] == [True, False]  # limited, then canary refused
    assert result["restored"] is True and tables(ws8) == before


def test_ctrl_c_during_a_drill_restores_and_records_it(ws8: Cli, tmp_path: Path) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    before = tables(ws8)

    def operator_presses_ctrl_c(seconds: float) -> None:
        raise KeyboardInterrupt

    ws8.sleeper.hooks.append(operator_presses_ctrl_c)
    code, result = drill(ws8, tmp_path, "kill", "p3-off")
    assert code == 1 and result["verdict"] == "interrupted", result
    assert tables(ws8) == before
    recorded = json.loads(ws8("drill", "list", "-o", "json").stdout)["drills"][0]
    assert (recorded["verdict"], recorded["restored"]) == ("interrupted", True)


def test_a_drill_refuses_while_a_real_kill_is_engaged(groups: Cli, tmp_path: Path) -> None:
    assert groups("kill", "KS2", "-r", "INC-5", "-y").exit_code == 0
    before = tables(groups)
    refused = groups("drill", "kill", "KS1", *GO)
    assert refused.exit_code == 1 and "real kill switch is engaged (KS2" in refused.stderr
    assert tables(groups) == before and groups.sql("SELECT count(*) FROM flagctl.drills") == [(0,)]
    code, result = drill(groups, tmp_path, "kill", "KS1", "--force")
    assert code == 0 and tables(groups) == before, result


def test_drill_list_and_show(groups: Cli, tmp_path: Path) -> None:
    drill(groups, tmp_path, "kill", "KS2")
    listed = groups("drill", "list")
    assert listed.exit_code == 0 and "KS2" in listed.stdout and "passed" in listed.stdout
    drill_id = json.loads(groups("drill", "list", "-o", "json").stdout)["drills"][0]["id"]
    shown = groups("drill", "show", str(drill_id))
    assert shown.exit_code == 0 and shown.stdout.startswith(f"# Drill {drill_id}")
    assert groups("drill", "show", "999").exit_code == 2


def test_a_drill_refuses_while_a_rollback_is_under_way(recsys: Cli, tmp_path: Path) -> None:
    recsys.sql(
        "INSERT INTO flagctl.rollback_state (system, state, since) VALUES ('recsys', 'DEGRADED', now())"
        " ON CONFLICT (system) DO UPDATE SET state = 'DEGRADED'"
    )
    refused = recsys("drill", "kill", "cf-off", *GO)
    assert refused.exit_code == 1 and "rollback state machine is DEGRADED" in refused.stderr
    assert recsys.sql("SELECT count(*) FROM flagctl.drills") == [(0,)]


def test_on_a_terminal_a_drill_shows_each_step_as_it_starts() -> None:
    import io

    from rich.console import Console

    from flagctl.cli.commands.drill import _Progress

    screen = io.StringIO()
    shown = _Progress(live=True)
    shown.status = Console(file=screen, force_terminal=True, width=100).status("drill")
    shown.status.start()
    shown("engage KS2 (scope global)")
    shown("proving: engage KS2 (scope global)")
    shown.close()
    assert "engage KS2 (scope global)" in screen.getvalue() and shown.status is None
    silent = _Progress(live=False)
    silent("anything")  # off a terminal: nothing at all
    assert silent.status is None
