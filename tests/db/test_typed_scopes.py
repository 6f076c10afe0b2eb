"""Typed flags, scoped overrides and leveled, scoped kill switches (the Groups rebuild)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli, audit_count, values

GO = ("-r", "INC-7", "-y")

TYPED = """
version: 1
system: typed
flags:
  on_off: {type: bool}
  retries: {type: int, min: 0, max: 10, default: 3}
  alpha: {type: float, min: 0.0, max: 1.0, default: 0.5}
  mode: {type: enum, values: [hybrid, content_only, collab_only]}
  regions: {type: list, scopes: [tenant]}
"""


@pytest.mark.parametrize(
    ("flag", "text", "stored"),
    [
        ("on_off", "on", True),
        ("on_off", "false", False),
        ("retries", "7", 7),
        ("alpha", "0.25", 0.25),
        ("mode", "content_only", "content_only"),
        ("regions", "eu-west, us-east", ["eu-west", "us-east"]),
        ("regions", "", []),
    ],
)
def test_set_parses_by_type(make_cli, flag: str, text: str, stored: object) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TYPED)
    cli("db", "init")
    if stored == values(cli)[flag]:
        cli("set", flag, "true" if flag == "on_off" else "9" if flag == "retries" else "x", *GO)
    result = cli("set", flag, text, *GO)
    assert result.exit_code == 0, result.stderr
    assert values(cli)[flag] == stored


@pytest.mark.parametrize(
    ("flag", "text", "message"),
    [
        ("on_off", "maybe", "not a bool"),
        ("retries", "11", "above the maximum 10"),
        ("retries", "2.5", "not a whole number"),
        ("alpha", "1.5", "above the maximum 1"),
        ("alpha", "nan", "expected a number"),
        ("mode", "popular", "'popular' is not one of hybrid, content_only, collab_only"),
    ],
)
def test_values_that_do_not_fit_are_exit_2_and_change_nothing(
    make_cli, flag: str, text: str, message: str
) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TYPED)
    cli("db", "init")
    before = values(cli)
    result = cli("set", flag, text, *GO)
    assert result.exit_code == 2
    assert message in result.stderr
    assert values(cli) == before and audit_count(cli) == 0


def test_manifest_defaults_and_settings_are_type_checked(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n  r: {type: int, min: 0, max: 5, default: 9}\n"
        "  m: {type: enum, values: [a, b]}\n"
        "kill_switches:\n  k: {set: {m: c}}\n"
    )
    result = cli("status")
    assert result.exit_code == 2
    assert "flags.r.default: 9 is above the maximum 5" in result.stderr
    assert "kill_switches.k.set.m: 'c' is not one of a, b" in result.stderr


def test_scoped_override_beats_global_for_that_scope_only(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TYPED)
    cli("db", "init")
    assert cli("set", "regions", "eu", *GO).exit_code == 0
    assert cli("set", "regions", "us", "--scope", "tenant:acme", *GO).exit_code == 0
    flag = next(f for f in json.loads(cli("status", "-o", "json").stdout)["flags"] if f["name"] == "regions")
    assert flag["value"] == ["eu"]
    assert flag["overrides"] == [
        {"scope": "tenant:acme", "value": ["us"], "effective": ["us"], "reason": "override"}
    ]
    assert "└ tenant:acme" in cli("status").stdout
    assert cli("set", "regions", "--unset", "--scope", "tenant:acme", *GO).exit_code == 0
    assert cli.sql("SELECT count(*) FROM flagctl.flag_state WHERE scope <> 'global'") == [(0,)]


def test_a_scope_kind_the_flag_does_not_accept_is_refused(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(TYPED)
    cli("db", "init")
    wrong_kind = cli("set", "regions", "us", "--scope", "workspace:1", *GO)
    assert wrong_kind.exit_code == 2 and "scope kinds it accepts: tenant" in wrong_kind.stderr
    malformed = cli("set", "regions", "us", "--scope", "tenant", *GO)
    assert malformed.exit_code == 2 and "invalid scope 'tenant'" in malformed.stderr


def test_groups_stages_move_several_flags_at_once(groups: Cli) -> None:
    result = groups("stage", "set", "groups", "stage0-dogfood", *GO)
    assert result.exit_code == 0, result.stderr
    current = values(groups)
    assert current["F1"] == {"enabled": True, "percent": 0, "internal": True}
    assert (current["F2"], current["F3"], current["F4"]) == (True, False, False)
    # the move is one transaction
    assert groups.sql("SELECT count(DISTINCT txid) FROM flagctl.audit WHERE action = 'stage.set'") == [(1,)]
    refused = groups("stage", "set", "groups", "stage1-pilot", *GO)
    assert refused.exit_code == 1 and "stage0-dogfood has baked" in refused.stderr
    groups.clock.advance(days=2)
    assert groups("stage", "set", "groups", "stage1-pilot", "--percent", "3", *GO).exit_code == 0
    assert values(groups)["F1"] == {"enabled": True, "percent": 3, "internal": True}
    assert values(groups)["F3"] is True


def test_groups_release_ks3_while_ks5_engaged_keeps_everything_ks5_turned_off(groups: Cli) -> None:
    groups("stage", "set", "groups", "stage3-broad", "--force", *GO)
    before = values(groups)
    assert groups("kill", "KS3", *GO).exit_code == 0
    assert values(groups)["groups_send"] is False
    assert groups("kill", "KS5", *GO).exit_code == 0
    killed = values(groups)
    assert killed["F5"] is True and killed["F2"] is False and killed["F3"] is False
    assert killed["F1"]["enabled"] is False and killed["groups_create"] is False
    assert groups("release", "KS3", *GO).exit_code == 0
    assert values(groups) == killed  # KS5 includes KS3: send stays off
    assert groups("release", "KS5", *GO).exit_code == 0
    assert values(groups) == before


def test_lower_level_kill_engaged_under_a_higher_one_survives_its_release(groups: Cli) -> None:
    before = values(groups)
    groups("kill", "KS5", *GO)
    groups("kill", "KS1", *GO)  # engaged after, at a lower level
    groups("release", "KS5", *GO)
    after = values(groups)
    assert after["F3"] is False  # KS1 still holds the secure pilot adapter off
    assert after["F5"] == before["F5"] and after["groups_send"] == before["groups_send"]
    groups("release", "KS1", *GO)
    assert values(groups) == before


def test_scoped_kill_touches_only_that_scope(groups: Cli) -> None:
    groups("set", "groups_send", "on", *GO)
    result = groups("kill", "KS3", "--scope", "workspace:42", *GO)
    assert result.exit_code == 0, result.stderr
    flag = next(
        f for f in json.loads(groups("status", "-o", "json").stdout)["flags"] if f["name"] == "groups_send"
    )
    assert flag["value"] is True  # global untouched
    assert flag["overrides"] == [
        {"scope": "workspace:42", "value": False, "effective": False, "reason": "override"}
    ]
    assert flag["kill_switches"] == [{"switch": "KS3", "scope": "workspace:42"}]
    # A scoped kill of a flag with no user-scope is refused
    assert groups("kill", "KS3", "--scope", "user:7", *GO).exit_code == 2
    assert groups("release", "KS3", "--scope", "workspace:42", *GO).exit_code == 0
    assert groups.sql("SELECT count(*) FROM flagctl.flag_state WHERE scope = 'workspace:42'") == [(0,)]


def test_set_is_refused_while_a_global_kill_holds_the_flag_even_in_a_scope(groups: Cli) -> None:
    groups("kill", "KS1", *GO)
    result = groups("set", "F3", "on", "--scope", "workspace:1", *GO)
    assert result.exit_code == 1 and "kill switch KS1 holds F3" in result.stderr


def test_kill_list_shows_the_ladder_of_levels(groups: Cli) -> None:
    listing = json.loads(groups("kill", "--list", "-o", "json").stdout)["kill_switches"]
    assert [(s["name"], s["level"]) for s in listing] == [
        ("KS1", 1),
        ("KS2", 2),
        ("KS3", 3),
        ("KS4", 4),
        ("KS5", 5),
    ]
    assert listing[4]["includes"] == ["KS1", "KS2", "KS3", "KS4"]
    assert listing[4]["sets"]["F1"] == {"enabled": False}
