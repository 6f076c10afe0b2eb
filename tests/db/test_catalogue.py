"""The catalogue in the database: `flagctl manifest publish|show|diff|history`, `db init`
publishing, and a local manifest that differs from the published one."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg

from tests.conftest import WS8_MANIFEST, Cli, p3_state
from tests.db.test_trust import denied, member

GO = ("-r", "INC-19", "-y")


def edited(tmp_path: Path, old: str, new: str) -> Path:
    path = tmp_path / "flagctl.yaml"
    text = WS8_MANIFEST.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return path


def test_db_init_publishes_and_show_prints_it_exactly(ws8: Cli) -> None:
    shown = ws8("manifest", "show")
    assert shown.exit_code == 0, shown.stderr
    assert shown.stdout == WS8_MANIFEST.read_text().rstrip("\n") + "\n"
    same = ws8("manifest", "diff")
    assert same.exit_code == 0 and "is the published version 1" in same.stdout
    history = json.loads(ws8("manifest", "history", "-o", "json").stdout)["versions"]
    assert [v["version"] for v in history] == [1]
    import hashlib

    assert history[0]["sha256"] == hashlib.sha256(WS8_MANIFEST.read_bytes()).hexdigest()


def test_a_differing_local_manifest_refuses_changes_but_not_kills(ws8: Cli, tmp_path: Path) -> None:
    local = edited(tmp_path, "bake: {canary: 30m", "bake: {canary: 1m")
    moved = ws8("--manifest", str(local), "stage", "set", "p3", "canary", *GO)
    assert moved.exit_code == 2, moved.stderr
    assert "differs from the one published" in moved.stderr and "flagctl manifest diff" in moved.stderr
    assert p3_state(ws8) == (False, 0)
    diff = ws8("--manifest", str(local), "manifest", "diff")
    assert (
        diff.exit_code == 1
        and "-    bake: {canary: 30m" in diff.stdout
        and "+    bake: {canary: 1m" in diff.stdout
    )
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0  # the published copy moves
    # A kill from the differing copy acts on the published switch, and says so.
    killed = ws8("--manifest", str(local), "kill", "p3-off", *GO)
    assert killed.exit_code == 0, killed.stderr
    assert "differs from the published version 1" in killed.stderr
    assert p3_state(ws8) == (False, 0)
    released = ws8("--manifest", str(local), "release", "p3-off", *GO)
    assert released.exit_code == 0 and p3_state(ws8) == (True, 1)


def test_a_kill_uses_the_published_switch_not_the_local_one(ws8: Cli, tmp_path: Path) -> None:
    """A local copy whose p3-off only lowers the percent cannot weaken the published kill."""
    ws8("stage", "set", "p3", "canary", *GO)
    local = edited(
        tmp_path, "set: {p3_advisory: {enabled: false, percent: 0}}", "set: {p3_advisory: {percent: 0}}"
    )
    assert ws8("--manifest", str(local), "kill", "p3-off", *GO).exit_code == 0
    assert p3_state(ws8) == (False, 0)


def test_publish_makes_a_new_version_audited_once(ws8: Cli, tmp_path: Path) -> None:
    local = edited(tmp_path, "bake: {canary: 30m", "bake: {canary: 45m")
    result = ws8("--manifest", str(local), "manifest", "publish", *GO, "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["version"] == 2 and json.loads(result.stdout)["published"] is True
    again = ws8("--manifest", str(local), "manifest", "publish", *GO)
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    rows = ws8.sql("SELECT action, before->>'version', after->>'version' FROM flagctl.audit ORDER BY seq")
    assert rows == [("manifest.publish", None, "1"), ("manifest.publish", "1", "2")]
    assert ws8("--manifest", str(local), "stage", "set", "p3", "canary", *GO).exit_code == 0
    old = ws8("manifest", "show", "--version", "1")
    assert "canary: 30m" in old.stdout
    assert ws8("manifest", "diff").exit_code == 1  # the checkout's file is now the old one


def test_publish_needs_release_or_admin_and_a_reason(ws8: Cli, tmp_path: Path) -> None:
    local = edited(tmp_path, "bake: {canary: 30m", "bake: {canary: 5m")
    assert ws8("--manifest", str(local), "manifest", "publish", "-y").exit_code == 2  # no --reason
    for roles, allowed in (
        (("security",), False),
        (("viewer",), False),
        (("ops",), False),
        (("release",), True),
    ):
        with member(ws8, *roles) as (_, dsn):
            as_user = Cli(dsn, local, admin_dsn=ws8.dsn)
            result = as_user("manifest", "publish", *GO)
            assert (result.exit_code == 0) == allowed, (roles, result.stderr)
            if not allowed:
                assert result.exit_code == 5, result.stderr
                # nor in psql, whatever it claims
                assert denied(dsn, "INSERT INTO flagctl.catalogue (system, version, sha256, source, catalogue)"
                                   " VALUES ('phase3', 9, repeat('a', 64), 'x', '{}')")  # fmt: skip
    assert ws8.sql("SELECT max(version) FROM flagctl.catalogue") == [(2,)]


def test_the_published_catalogue_cannot_be_rewritten(ws8: Cli) -> None:
    for statement in ("UPDATE flagctl.catalogue SET source = 'x'", "DELETE FROM flagctl.catalogue"):
        try:
            ws8.sql(statement)
        except psycopg.errors.InsufficientPrivilege:
            continue
        raise AssertionError(f"{statement} was allowed")


def test_a_gate_needs_no_manifest_file_and_follows_a_publish(ws8: Cli, tmp_path: Path) -> None:
    from datetime import timedelta

    from flagctl.gate import Gate

    ws8("stage", "set", "p3", "canary", *GO)
    with Gate(ws8.dsn, system="phase3", check=timedelta(hours=1), resync=None) as gate:
        assert gate.wait_ready()
        assert gate.value("p3_advisory").percent == 1 and gate.manifest.path == "published manifest phase3 v1"
        seq = gate.seq
        local = edited(tmp_path, "bake: {canary: 30m", "bake: {canary: 40m")
        assert ws8("--manifest", str(local), "manifest", "publish", *GO).exit_code == 0
        assert seq is not None and gate.wait_for_seq(seq + 1)  # the publish's NOTIFY, not a poll
        assert gate.manifest.path == "published manifest phase3 v2"
        assert gate.manifest.model.ladders["p3"].bake["canary"] == "40m"
        assert ws8("kill", "p3-off", *GO).exit_code == 0
        assert gate.wait_for_seq(seq + 2) and gate.enabled("p3_advisory", "r-1") is False


def test_an_on_call_with_only_a_dsn_and_a_system_name_can_kill(ws8: Cli, tmp_path: Path) -> None:
    """No checkout at hand: --system (FLAGCTL_SYSTEM) works from the published catalogue —
    the kill on its fast path, and every other command through the parser."""
    nowhere = str(tmp_path / "no-such-flagctl.yaml")
    ws8("stage", "set", "p3", "canary", *GO)
    fast = ws8.fast_runs
    killed = ws8("--system", "phase3", "kill", "p3-off", *GO, FLAGCTL_MANIFEST=nowhere)
    assert killed.exit_code == 0, killed.stderr
    assert ws8.fast_runs == fast + 1
    assert p3_state(ws8) == (False, 0)
    shown = ws8("--system", "phase3", "status", "-o", "json", FLAGCTL_MANIFEST=nowhere)
    assert shown.exit_code == 0, shown.stderr
    assert "p3-off" in shown.stdout
    released = ws8("--system", "phase3", "release", "p3-off", *GO, FLAGCTL_MANIFEST=nowhere)
    assert released.exit_code == 0, released.stderr
    assert p3_state(ws8) == (True, 1)


def test_system_names_a_published_manifest_or_says_what_to_do(ws8: Cli) -> None:
    unknown = ws8("--system", "nope", "kill", "p3-off", *GO)
    assert unknown.exit_code == 2 and "no manifest of system nope is published" in unknown.stderr
    both = ws8("--system", "phase3", "--manifest", str(WS8_MANIFEST), "status")
    assert both.exit_code == 2 and "give one" in both.stderr
    assert ws8.sql("SELECT count(*) FROM flagctl.audit WHERE action = 'kill'") == [(0,)]


def test_the_command_line_beats_the_environment_and_never_both_manifests(ws8: Cli, tmp_path: Path) -> None:
    """An exported FLAGCTL_SYSTEM silently beat --manifest: `manifest diff` of a changed file
    compared the published text with itself and passed, a CI gate falsely green."""
    changed = tmp_path / "flagctl.yaml"
    changed.write_text(WS8_MANIFEST.read_text() + "\n# changed\n")
    diff = ws8("--manifest", str(changed), "manifest", "diff", FLAGCTL_SYSTEM="phase3")
    assert diff.exit_code == 1 and "changed" in diff.stdout
    both = ws8("status", FLAGCTL_SYSTEM="phase3")  # FLAGCTL_MANIFEST is set too (the fixture's)
    assert both.exit_code == 2 and "both set" in both.stderr
    for command in (("manifest", "diff"), ("manifest", "publish", *GO), ("db", "init")):
        refused = ws8("--system", "phase3", *command)
        assert refused.exit_code == 2 and "local manifest file" in refused.stderr, command
