"""Manifest validation: every problem names the file, the key path and what was expected."""

from __future__ import annotations

import textwrap

import pytest

from flagctl.errors import ManifestError
from flagctl.model.manifest import load_manifest, parse_manifest
from flagctl.model.values import Rollout
from tests.conftest import WS8_MANIFEST

BASE = """
version: 1
system: demo
flags:
  f1: {type: rollout}
"""


def problems(text: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(textwrap.dedent(text), "m.yaml")
    assert caught.value.path == "m.yaml"
    return caught.value.problems


def test_ws8_example_loads_with_its_ladder_and_kill_switch() -> None:
    manifest = load_manifest(WS8_MANIFEST)
    ladder = manifest.ladder("p3")
    assert [s.name for s in ladder.stages] == ["dark", "canary", "limited", "broad", "full"]
    assert ladder.require == ("no_contract_violations", "budget_within_bounds", "cache_hit_rate_stable")
    assert manifest.switches["p3-off"]["p3_advisory"].overlay(Rollout(True, 50)) == Rollout(False, 0)


def test_unknown_key_is_reported_with_its_path() -> None:
    found = problems("version: 1\nsystem: s\nflags:\n  f1:\n    type: rollout\n    colour: red\n")
    assert found == ["flags.f1.colour: unknown key"]


def test_wrong_type_is_reported_with_path_and_value() -> None:
    found = problems(BASE + "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: 'yes', percent: 1}]}\n")
    assert any(p.startswith("ladders.l.stages.0.enabled") and "'yes'" in p for p in found), found


def test_stage_percent_outside_0_100_is_rejected() -> None:
    found = problems(BASE + "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: true, percent: 150}]}\n")
    assert any(p.startswith("ladders.l.stages.0.percent") and "100" in p for p in found), found


def test_reversed_percent_range_is_rejected() -> None:
    found = problems(
        BASE + "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: true, percent: [10, 5]}]}\n"
    )
    assert found == ["ladders.l.stages.0.percent: range [10, 5] must be [low, high]"]


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "ladders:\n  l: {flag: nope, stages: [{name: a, enabled: false, percent: 0}]}\n",
            "ladders.l.flag: unknown flag 'nope'",
        ),
        ("kill_switches:\n  k: {set: {nope: {enabled: false}}}\n", "kill_switches.k.set.nope: unknown flag"),
        (
            "kill_switches:\n  k: {level: 2, includes: [zzz], set: {f1: {enabled: false}}}\n",
            "kill_switches.k.includes: unknown kill switch 'zzz'",
        ),
        (
            "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: false, percent: 0}], bake: {b: 1h}}\n",
            "ladders.l.bake.b: unknown stage",
        ),
        (
            "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: false, percent: 0}], require: [g]}\n",
            "ladders.l.require: unknown guardrail 'g'",
        ),
    ],
)
def test_dangling_references_are_rejected(extra: str, expected: str) -> None:
    assert expected in problems(BASE + extra)


LADDER = "ladders:\n  l:\n    flag: f1\n    stages: [{name: a, enabled: false, percent: 0}, {name: b, enabled: true, percent: 5}]\n"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("    analysis: {guardrails: [nope]}\n", "ladders.l.analysis.guardrails: unknown guardrail 'nope'"),
        (
            "    analysis: {guardrails: [g], interval: 0s}\n",
            "ladders.l.analysis.interval: must be more than 0s",
        ),
        ("    analysis: {guardrails: [g], interval: soon}\n", "ladders.l.analysis.interval"),
        ("    analysis: {interval: 5m}\n", "ladders.l.analysis.guardrails: name the guardrails to analyse"),
        (
            "    stages: [{name: a, enabled: false, percent: 0, analysis: {passes: 2}}]\n",
            "ladders.l.stages.0.analysis: a stage's analysis overrides the ladder's",
        ),
    ],
)
def test_a_ladders_analysis_is_checked(extra: str, expected: str) -> None:
    guard = "guardrails:\n  g: {sql: 'select 0', max: 1}\n"
    text = BASE + guard + LADDER + extra
    if "    stages: [" in extra:  # the stage's own analysis replaces the ladder's stages
        text = BASE + guard + "ladders:\n  l:\n    flag: f1\n" + extra
    found = problems(text)
    assert any(expected in line for line in found), found


def test_a_stages_analysis_overrides_the_ladders_key_by_key() -> None:
    from flagctl.model.manifest import parse_manifest

    text = (
        BASE
        + "guardrails:\n  g: {sql: 'select 0', max: 1}\n  h: {sql: 'select 0', max: 1}\n"
        + (
            "ladders:\n  l:\n    flag: f1\n    require: [g]\n"
            "    analysis: {interval: 10m, failures: 1}\n"
            "    stages: [{name: a, enabled: false, percent: 0, analysis: {passes: 6, guardrails: [h]}},"
            " {name: b, enabled: true, percent: 5}]\n"
        )
    )
    ladder = parse_manifest(text).ladder("l")
    a, b = ladder.analysis_of("a"), ladder.analysis_of("b")
    assert (a.guardrails, a.interval.total_seconds(), a.passes, a.failures) == (("h",), 600, 6, 1)
    assert (b.guardrails, b.interval.total_seconds(), b.passes, b.failures) == (("g",), 600, 3, 1)


def test_a_switch_may_only_include_lower_levels() -> None:
    found = problems(
        BASE
        + "kill_switches:\n  low: {level: 3, set: {f1: {enabled: false}}}\n"
        + "  high: {level: 2, includes: [low], set: {f1: {percent: 0}}}\n"
    )
    assert any("a switch may only include lower levels" in p for p in found), found


def test_bound_flag_needs_key_and_columns() -> None:
    found = problems("version: 1\nsystem: s\nflags:\n  f: {type: rollout, table: t}\n")
    assert any(p.startswith("flags.f.key:") for p in found)
    assert any(p.startswith("flags.f.columns:") for p in found)


def test_malformed_yaml_reports_line_and_column() -> None:
    found = problems("version: 1\nsystem: s\nflags:\n  f1: {type: rollout\n")
    assert found[0].startswith("line 5, column 1:"), found


def test_duplicate_keys_are_an_error_not_a_silent_override() -> None:
    found = problems(BASE + "  f1: {type: rollout}\n")
    assert found[0].startswith("line 6, column 3: duplicate key 'f1'"), found


def test_missing_file_says_how_to_point_at_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path / "missing.yaml")
    assert caught.value.problems == ["file not found"]
    assert caught.value.hint and "--manifest" in caught.value.hint


def test_bake_durations_are_validated() -> None:
    found = problems(
        BASE + "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: false, percent: 0}], bake: {a: soon}}\n"
    )
    assert any("ladders.l.bake" in p and "not a duration" in p for p in found), found


def test_kill_switch_includes_are_flattened_lowest_first() -> None:
    manifest = parse_manifest(
        BASE
        + "  f2: {type: rollout}\n"
        + "kill_switches:\n"
        + "  ks1: {level: 1, set: {f1: {percent: 0}}}\n"
        + "  ks2: {level: 2, set: {f2: {enabled: false}}}\n"
        + "  ks5: {level: 5, includes: [ks2, ks1], set: {f1: {enabled: false}}}\n"
    )
    flat = manifest.switches["ks5"]
    assert set(flat) == {"f1", "f2"}
    assert flat["f1"].overlay(Rollout(True, 60)) == Rollout(False, 0)  # ks5's enabled and ks1's percent
    assert flat["f2"].overlay(Rollout(True, 60)) == Rollout(False, 60)


def test_yaml_1_1_booleans_stay_strings() -> None:
    manifest = parse_manifest(
        BASE + "ladders:\n  l:\n    flag: f1\n"
        "    stages: [{name: off, enabled: false, percent: 0}, {name: on, enabled: true, percent: 5}]\n"
    )
    assert [s.name for s in manifest.ladder("l").stages] == ["off", "on"]
    found = problems(BASE + "ladders:\n  l: {flag: f1, stages: [{name: a, enabled: yes, percent: 1}]}\n")
    assert any("enabled" in p and "'yes'" in p for p in found), found


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("{enabled: no}", "enabled: expected true or false, got 'no'"),
        ("{percent: 101}", "percent: expected a whole number from 0 to 100, got 101"),
        ("{percent: true}", "percent: expected a whole number from 0 to 100, got True"),
        ("{percent: 5.5}", "percent: expected a whole number from 0 to 100, got 5.5"),
        ("{enabled: false, colour: red}", "colour: unknown key"),
        ("off", "expected a mapping of enabled, percent and/or internal, got 'off'"),
        ("{}", "give enabled, percent and/or internal"),
    ],
)
def test_a_rollout_kill_setting_is_checked(setting: str, message: str) -> None:
    found = problems(BASE + f"kill_switches:\n  k: {{set: {{f1: {setting}}}}}\n")
    assert f"kill_switches.k.set.f1: {message}" in found, found


def test_a_large_manifest_is_parsed_by_libyaml_not_the_python_scanner(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cold, a manifest of 10,000 flags took seconds in PyYAML's pure-Python scanner; with
    libyaml (when PyYAML has it) the Python scanner reads no token of a valid manifest."""
    import yaml

    if not yaml.__with_libyaml__:
        pytest.skip("this PyYAML has no libyaml")
    tokens = []
    real = yaml.scanner.Scanner.check_token

    def counting(self: object, *choices: object) -> bool:
        tokens.append(1)
        return real(self, *choices)  # type: ignore[arg-type]

    monkeypatch.setattr(yaml.scanner.Scanner, "check_token", counting)
    flags = "".join(f"  f{i}: {{type: bool, default: true}}\n" for i in range(1000))
    manifest = parse_manifest(f"version: 1\nsystem: big\nflags:\n{flags}")
    assert len(manifest.flags) == 1000
    assert tokens == []
    with pytest.raises(ManifestError, match="duplicate key 'f1'"):  # a refusal still says where, as before
        parse_manifest(f"version: 1\nsystem: big\nflags:\n{flags}  f1: {{type: bool}}\n")
