"""Profiles, constraints, safe points and point-in-time restore (the recommender and ORCA)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import RECSYS_MANIFEST, Cli, audit_count, values

GO = ("-r", "INC-9", "-y")
PROFILES = sorted(p.stem for p in (RECSYS_MANIFEST.parent / "profiles").glob("*.yaml"))


def test_the_recommender_ships_its_baselines() -> None:
    assert {"emergency", "degraded", "content-only", "collaborative-only", "rollback"} <= set(PROFILES)


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_applies_diffs_clean_and_restores(recsys: Cli, name: str) -> None:
    recsys("set", "alpha_override", "0.7", *GO)  # some prior state worth restoring
    before = values(recsys)
    drift = recsys("profile", "diff", name, "-o", "json")
    had_drift = drift.exit_code == 1
    result = recsys("profile", "apply", name, "-r", f"apply {name}", "-y")
    assert result.exit_code == 0, result.stderr
    clean = recsys("profile", "diff", name)
    assert clean.exit_code == 0, clean.stdout
    assert f"live state matches profile {name}" in clean.stdout
    if had_drift:
        actions = recsys.sql(
            "SELECT DISTINCT action, reason, txid FROM flagctl.audit WHERE action LIKE 'profile.apply%'"
        )
        assert [(a, r) for a, r, _ in actions] == [(f"profile.apply:{name}", f"apply {name}")]  # one action
    moment = recsys.sql("SELECT max(at) FROM flagctl.audit WHERE action = 'set'")[0][0]
    restored = recsys("restore", "--as-of", moment.isoformat(), "-r", "undo", "-y")
    assert restored.exit_code == 0, restored.stderr
    assert values(recsys) == before


def test_diff_exits_1_on_drift_and_shows_it(recsys: Cli) -> None:
    result = recsys("profile", "diff", "emergency", "-o", "json")
    assert result.exit_code == 1
    drift = {d["flag"]: (d["live"], d["profile"]) for d in json.loads(result.stdout)["drift"]}
    assert drift["exposure_percent"] == (100, 10)
    assert drift["policy_mode"] == ("hybrid_default", "content_only")


def test_apply_dry_run_and_confirmation(recsys: Cli) -> None:
    dry = recsys("profile", "apply", "degraded", "--dry-run")
    assert dry.exit_code == 0 and "exposure_percent: 100 → 50" in dry.stdout
    assert values(recsys)["exposure_percent"] == 100
    refused = recsys("profile", "apply", "degraded", "-r", "x")  # no terminal, no --yes
    assert refused.exit_code == 2 and values(recsys)["exposure_percent"] == 100


def test_constraint_exclusive_is_checked_before_writing(recsys: Cli) -> None:
    assert recsys("set", "disable_cf", "on", "--scope", "region:eu", *GO).exit_code == 0
    result = recsys("set", "disable_content", "on", *GO)
    assert result.exit_code == 2
    assert "constraint cf_or_content would be violated at region:eu" in result.stderr
    assert "disable_cf and disable_content are all true" in result.stderr
    assert values(recsys)["disable_content"] is False


def test_constraint_implies(recsys: Cli) -> None:
    result = recsys("set", "policy_mode", "content_only", *GO)
    assert result.exit_code == 2
    assert "content_only_disables_cf" in result.stderr
    assert "when policy_mode = content_only, disable_cf = true (is false)" in result.stderr
    count = audit_count(recsys)
    assert recsys("profile", "apply", "content-only", *GO).exit_code == 0  # sets both at once: fine
    assert audit_count(recsys) > count


def test_a_kill_switch_is_checked_against_constraints_too(recsys: Cli) -> None:
    recsys("profile", "apply", "collaborative-only", *GO)  # disable_content = true
    result = recsys("kill", "cf-off", *GO)  # would disable cf as well
    assert result.exit_code == 2 and "cf_or_content" in result.stderr
    assert recsys.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]


def test_priority_kill_switch_overrides_everything_in_status(recsys: Cli) -> None:
    assert recsys("kill", "recsys-off", *GO).exit_code == 0
    flags = {f["name"]: f for f in json.loads(recsys("status", "-o", "json").stdout)["flags"]}
    assert flags["kill_switch"]["value"] is True
    policy = flags["policy_mode"]
    assert (policy["reason"], policy["by"]) == ("overridden", "kill_switch")
    assert flags["disable_cf"]["effective"] is False  # a bool overridden is off, typed
    assert "off (overridden by kill_switch)" in recsys("status").stdout


def test_profile_validation_without_a_database(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from flagctl.cli.app import app

    def validate(text: str) -> object:
        path = tmp_path / "p.yaml"
        path.write_text(text)
        env = {"FLAGCTL_MANIFEST": str(RECSYS_MANIFEST), "FLAGCTL_DSN": "host=/nonexistent"}
        return CliRunner().invoke(app, ["profile", "validate", str(path)], env=env)

    good = validate("system: recsys\nvalues: {exposure_percent: 20}\n")
    assert good.exit_code == 0, good.stderr  # type: ignore[attr-defined]
    cases = {
        "system: recsys\nvalues: {exposure_percent: 20\n": "line 3, column 1",
        "system: recsys\nvalues: {no_such_flag: 1}\n": "values.no_such_flag: unknown flag",
        "system: recsys\nvalues: {exposure_percent: lots}\n": "values.exposure_percent: not a whole number",
        "system: recsys\nvalues: {alpha_override: 1.5}\n": "above the maximum 1",
        "system: recsys\nvalues: {policy_mode: popular}\n": "'popular' is not one of",
        "system: recsys\nvalues: {disable_cf: true, disable_content: true}\n": "constraint cf_or_content",
        "system: orca\nvalues: {exposure_percent: 20}\n": "this profile is for 'orca', the manifest is 'recsys'",
        "system: recsys\nscopes: {tenant:1: {exposure_percent: 5}}\n": "scopes.tenant:1.exposure_percent",
        "system: recsys\nvalue: {exposure_percent: 5}\n": "value: extra inputs are not permitted",
    }
    for text, message in cases.items():
        result = validate(text)
        assert result.exit_code == 2, text  # type: ignore[attr-defined]
        assert message in result.stderr, (text, result.stderr)  # type: ignore[attr-defined]


def test_a_profile_for_another_system_changes_nothing(recsys: Cli, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text("system: orca\nvalues: {exposure_percent: 5}\n")
    result = recsys("profile", "apply", str(other), *GO)
    assert result.exit_code == 2 and audit_count(recsys) == 0


def test_snapshot_mark_safe_and_rollback_to_last_safe(recsys: Cli, tmp_path: Path) -> None:
    recsys("set", "exposure_percent", "40", "--scope", "region:eu", *GO)
    recsys("set", "alpha_override", "0.3", *GO)
    path = tmp_path / "known-good.yaml"
    snap = recsys("profile", "snapshot", "known-good", "--file", str(path), "--mark-safe", *GO)
    assert snap.exit_code == 0, snap.stderr
    assert recsys("profile", "validate", str(path)).exit_code == 0
    assert "region:eu" in path.read_text()
    good = values(recsys)
    recsys("profile", "apply", "emergency", *GO)
    recsys("set", "exposure_percent", "--unset", "--scope", "region:eu", *GO)
    assert values(recsys) != good
    back = recsys("rollback", "--to-last-safe", *GO)
    assert back.exit_code == 0, back.stderr
    assert values(recsys) == good
    assert recsys.sql("SELECT value FROM flagctl.flag_state WHERE scope = 'region:eu'") == [(40,)]
    assert recsys("profile", "snapshot", "known-good", "--file", str(path)).exit_code == 2  # exists


def test_rollback_needs_a_safe_point(recsys: Cli) -> None:
    result = recsys("rollback", "--to-last-safe", *GO)
    assert result.exit_code == 2 and "no safe point" in result.stderr


def test_restore_of_a_flag_without_a_row_then_restores_its_default(recsys: Cli) -> None:
    start = recsys.sql("SELECT now()")[0][0]
    recsys("set", "exposure_percent", "30", *GO)  # the first write creates the row
    result = recsys("restore", "--as-of", start.isoformat(), "--flag", "exposure_percent", *GO)
    assert result.exit_code == 0, result.stderr
    assert values(recsys)["exposure_percent"] == 100  # the manifest default, what it read then


def test_restore_skips_a_bound_flag_whose_row_did_not_exist(orca: Cli) -> None:
    orca.sql("DELETE FROM feature_flags WHERE flag_name = 'real_time_websockets'")
    start = orca.sql("SELECT now()")[0][0]
    orca.sql(
        "INSERT INTO feature_flags (flag_name, enabled, rollout_percentage) VALUES ('real_time_websockets', true, 7)"
    )
    result = orca(
        "restore", "--as-of", start.isoformat(), "--flag", "real_time_websockets", "--dry-run", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["changes"] == []
    assert any("real_time_websockets (its row in feature_flags did not exist" in c for c in doc["checks"])


def test_restore_refuses_while_a_kill_holds_a_flag(recsys: Cli) -> None:
    moment = recsys.sql("SELECT now()")[0][0]
    recsys("set", "kill_switch", "off", *GO)
    recsys("kill", "recsys-off", *GO)
    result = recsys("restore", "--as-of", moment.isoformat(), *GO)
    assert result.exit_code == 1 and "kill switches hold flags" in result.stderr


def test_profile_schema_describes_each_flag(recsys: Cli) -> None:
    result = recsys("profile", "schema")
    schema = json.loads(result.stdout)
    props = schema["properties"]["values"]["properties"]
    assert props["exposure_percent"] == {
        "description": "traffic throttling (0–100%)", "type": "integer", "minimum": 0, "maximum": 100,
    }  # fmt: skip
    assert props["policy_mode"]["enum"] == ["bucket_gate", "content_only", "collab_only", "hybrid_default"]
    assert schema["properties"]["system"] == {"const": "recsys"}


def test_profile_list_and_show(recsys: Cli) -> None:
    listing = json.loads(recsys("profile", "list", "-o", "json").stdout)["profiles"]
    assert [p["name"] for p in listing] == PROFILES
    shown = json.loads(recsys("profile", "show", "emergency", "-o", "json").stdout)
    assert shown["state"]["global"]["candidate_fallback_level"] == "D"
    missing = recsys("profile", "show", "nope")
    assert missing.exit_code == 2 and "emergency" in missing.stderr


def test_orca_bound_table_with_whitelist_arrays(orca: Cli) -> None:
    assert orca("set", "new_trust_algorithm_users", "user-123, user-456", *GO).exit_code == 0
    row = orca.sql(
        "SELECT user_whitelist, tenant_whitelist FROM feature_flags WHERE flag_name = 'new_trust_algorithm'"
    )
    assert row == [(["user-123", "user-456"], None)]
    orca.sql(
        "UPDATE feature_flags SET tenant_whitelist = ARRAY['tenant-456'] WHERE flag_name = 'new_trust_algorithm'"
    )
    flags = [
        r[0]
        for r in orca.sql("SELECT flag FROM flagctl.audit WHERE action <> 'manifest.publish' ORDER BY seq")
    ]
    assert flags == [
        "new_trust_algorithm_users",
        "new_trust_algorithm_tenants",
    ]  # each change to its own flag
    assert values(orca)["new_trust_algorithm_tenants"] == ["tenant-456"]
    assert orca("stage", "set", "trust", "canary", *GO).exit_code == 0
    assert orca.sql(
        "SELECT enabled, rollout_percentage FROM feature_flags WHERE flag_name = 'new_trust_algorithm'"
    ) == [(True, 5)]
    assert orca("kill", "self-healing-off", *GO).exit_code == 0
    assert values(orca)["enable_self_healing"] is False


def test_flags_metadata_and_stale(orca: Cli) -> None:
    listing = {f["name"]: f for f in json.loads(orca("flags", "-o", "json").stdout)["flags"]}
    trust = listing["new_trust_algorithm"]
    assert trust["owner"] == "trust-team" and trust["remove_by"] == "2026-12-31"
    assert trust["rollout_plan"].startswith("Canary")
    assert orca("flags", "stale").exit_code == 0  # nothing stale today
    # straight to 100% by hand (flagctl would want a second person for it: ORCA's approvals)
    orca.sql(
        "UPDATE feature_flags SET enabled = true, rollout_percentage = 100 WHERE flag_name = 'new_trust_algorithm'"
    )
    orca.clock.advance(days=15)
    stale = orca("flags", "stale", "-o", "json")
    assert stale.exit_code == 1
    reasons = {f["name"]: f["stale"] for f in json.loads(stale.stdout)["flags"]}
    assert list(reasons) == ["new_trust_algorithm"] and "at 100% since" in reasons["new_trust_algorithm"][0]
    orca.clock.advance(days=60)  # past 2026-12-31 as well
    assert len(json.loads(orca("flags", "stale", "-o", "json").stdout)["flags"][0]["stale"]) == 2
