"""The pure rules, without a database: the rollback state machine, stage-move rules,
evaluation precedence, how kills combine, bucketing and durations — with property tests
where a rule must hold for every input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import permutations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flagctl.errors import PolicyRefused, UsageError
from flagctl.model.change import Change
from flagctl.model.durations import format_duration, parse_duration
from flagctl.model.flagtypes import RolloutKill
from flagctl.model.manifest import parse_manifest
from flagctl.model.values import Rollout
from flagctl.rules.bucketing import bucket, eligible
from flagctl.rules.evaluation import decide
from flagctl.rules.kills import Engaged, holding, overlay
from flagctl.rules.ladder import check_percent, exposure_increases, outside_ladder
from flagctl.rules.rollback import MachineState, next_state

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
ON = {"P1": "ROLLBACK_PENDING", "P2": "DEGRADED"}
RECOVERY = timedelta(minutes=15)

# ---------------------------------------------------------------- the rollback state machine

TRANSITIONS = [
    # (state, worst failing severity, next state)
    ("NORMAL", None, "NORMAL"),
    ("NORMAL", "P2", "DEGRADED"),
    ("NORMAL", "P1", "ROLLBACK_PENDING"),
    ("DEGRADED", None, "NORMAL"),
    ("DEGRADED", "P2", "DEGRADED"),
    ("DEGRADED", "P1", "ROLLBACK_PENDING"),
    ("ROLLBACK_PENDING", "P1", "ROLLBACK_PENDING"),
    ("ROLLBACK_PENDING", None, "ROLLBACK_PENDING"),  # only the actions (or an override) leave it
    ("ROLLED_BACK", "P1", "ROLLED_BACK"),
    ("ROLLED_BACK", None, "RECOVERY_VERIFY"),
    ("RECOVERY_VERIFY", "P2", "ROLLED_BACK"),
    ("RECOVERY_VERIFY", "P1", "ROLLED_BACK"),
    ("RECOVERY_VERIFY", None, "RECOVERY_VERIFY"),  # green, but not for 15 minutes yet
]


@pytest.mark.parametrize(("state", "worst", "after"), TRANSITIONS)
def test_state_machine_transitions(state: str, worst: str | None, after: str) -> None:
    current = MachineState(state, T0, T0 if state == "RECOVERY_VERIFY" else None)
    assert next_state(current, worst, ON, T0 + timedelta(minutes=1), RECOVERY).state == after


def test_recovery_needs_continuous_green_for_the_recovery_time() -> None:
    verifying = next_state(MachineState("ROLLED_BACK", T0, None), None, ON, T0, RECOVERY)
    assert (verifying.state, verifying.green_since) == ("RECOVERY_VERIFY", T0)
    almost = next_state(verifying, None, ON, T0 + RECOVERY - timedelta(seconds=1), RECOVERY)
    assert almost.state == "RECOVERY_VERIFY" and almost.green_since == T0
    assert next_state(almost, None, ON, T0 + RECOVERY, RECOVERY).state == "NORMAL"


def test_time_spent_blind_is_not_green() -> None:
    verifying = MachineState("RECOVERY_VERIFY", T0, T0)
    back = T0 + RECOVERY + timedelta(minutes=5)  # blind until then: the window restarts there
    after = next_state(verifying, None, ON, back, RECOVERY, watched_since=back)
    assert (after.state, after.green_since) == ("RECOVERY_VERIFY", back)
    assert next_state(after, None, ON, back + RECOVERY, RECOVERY, watched_since=back).state == "NORMAL"


def test_a_severity_mapped_to_nothing_counts_as_green() -> None:
    only_p1 = {"P1": "ROLLBACK_PENDING"}
    assert next_state(MachineState("NORMAL", T0, None), "P2", only_p1, T0, RECOVERY).state == "NORMAL"


# ---------------------------------------------------------------- stage-move rules

LADDER = parse_manifest(
    """
version: 1
system: s
flags:
  f: {type: rollout}
  mode: {type: enum, values: [a, b]}
  other: {type: bool}
ladders:
  l:
    flag: f
    stages:
      - {name: dark, enabled: false, percent: 0}
      - {name: canary, enabled: true, percent: 1}
      - {name: limited, enabled: true, percent: [5, 10]}
""",
    "<test>",
)


def test_exposure_order() -> None:
    off, one, ten = Rollout(False, 0), Rollout(True, 1), Rollout(True, 10)
    assert exposure_increases(LADDER, {"f": off}, {"f": one})
    assert not exposure_increases(LADDER, {"f": ten}, {"f": one})
    assert not exposure_increases(LADDER, {"f": one}, {"f": one})
    assert exposure_increases(LADDER, {"mode": "a"}, {"mode": "b"})  # no order: needs the checks


def test_percent_must_lie_within_the_stage() -> None:
    ladder = LADDER.ladder("l")
    check_percent(ladder, ladder.stage("limited"), 7)
    with pytest.raises(UsageError, match="outside stage limited"):
        check_percent(ladder, ladder.stage("limited"), 11)
    with pytest.raises(UsageError, match="takes no --percent"):
        check_percent(ladder, ladder.stage("dark"), 1)


def test_raising_a_ladder_flag_outside_the_ladder_needs_force() -> None:
    up = [Change("f", "global", Rollout(True, 1), Rollout(True, 50))]
    with pytest.raises(PolicyRefused, match="controlled by ladder l"):
        outside_ladder(LADDER, up, force=False, target="flag:f")
    assert outside_ladder(LADDER, up, force=True, target="flag:f") == (
        True,
        ["forced: raises f outside ladder l"],
    )
    down = [Change("f", "global", Rollout(True, 50), Rollout(True, 1))]
    assert outside_ladder(LADDER, down, force=False, target="flag:f")[0] is False
    unladdered = [Change("other", "global", False, True)]
    assert outside_ladder(LADDER, unladdered, force=False, target="flag:other") == (False, [])


# ---------------------------------------------------------------- evaluation precedence


def verdict(value: object, **overrides: object) -> tuple[bool, str]:
    args: dict[str, object] = {
        "subject": "42",
        "salt": "f",
        "scopes": [],
        "killed_by": [],
        "priority": None,
        "exemptions": {},
        "internal": False,
    } | overrides
    result = decide(value, **args)  # type: ignore[arg-type]
    return result.eligible, result.rule


def test_precedence_in_order() -> None:
    full = Rollout(True, 100)
    assert verdict(full, priority="kill_switch") == (
        False,
        "priority flag kill_switch is on: it overrides everything",
    )
    assert verdict(Rollout(False, 0), killed_by=[("KS5", "global")]) == (
        False,
        "kill switch KS5 (scope global)",
    )
    assert verdict(Rollout(True, 0)) == (False, "stage off (dark: enabled at 0%)")
    both = {"publisher:1": "allow", "publisher:2": "deny"}
    assert verdict(full, scopes=["publisher:1", "publisher:2"], exemptions=both) == (
        False,
        "deny exemption publisher:2",
    )
    assert verdict(Rollout(True, 0), scopes=["publisher:1"], exemptions={"publisher:1": "allow"})[0] is False
    assert verdict(Rollout(True, 0, internal=True), internal=True) == (True, "internal audience")
    assert verdict(True) == (True, "on")
    assert verdict(False) == (False, "off")  # a plain on/off flag has no stage: not "stage off"


SCOPES = st.lists(st.sampled_from(["publisher:1", "publisher:2", "workspace:9"]), unique=True)
EXEMPTIONS = st.dictionaries(
    st.sampled_from(["publisher:1", "publisher:2", "workspace:9"]), st.sampled_from(["allow", "deny"])
)
ROLLOUTS = st.builds(Rollout, st.booleans(), st.integers(0, 100), st.booleans())


@given(
    value=ROLLOUTS, subject=st.text(max_size=20), scopes=SCOPES, exemptions=EXEMPTIONS, internal=st.booleans()
)
def test_a_priority_flag_beats_everything(
    value: Rollout, subject: str, scopes: list[str], exemptions: dict[str, str], internal: bool
) -> None:
    result = decide(value, subject=subject, salt="f", scopes=scopes, killed_by=[], priority="stop",
                    exemptions=exemptions, internal=internal)  # fmt: skip
    assert not result.eligible


@given(
    value=ROLLOUTS, subject=st.text(max_size=20), scopes=SCOPES, exemptions=EXEMPTIONS, internal=st.booleans()
)
def test_no_exemption_turns_on_an_off_flag(
    value: Rollout, subject: str, scopes: list[str], exemptions: dict[str, str], internal: bool
) -> None:
    result = decide(value, subject=subject, salt="f", scopes=scopes, killed_by=[], priority=None,
                    exemptions=exemptions, internal=internal)  # fmt: skip
    if not value.active:
        assert not result.eligible


@given(value=ROLLOUTS, subject=st.text(max_size=20), scopes=SCOPES, exemptions=EXEMPTIONS)
def test_deny_beats_allow_and_a_kill_beats_both(
    value: Rollout, subject: str, scopes: list[str], exemptions: dict[str, str]
) -> None:
    mine = {s: e for s, e in exemptions.items() if s in scopes}
    free = decide(value, subject=subject, salt="f", scopes=scopes, killed_by=[], priority=None,
                  exemptions=mine, internal=False)  # fmt: skip
    if value.active and "deny" in mine.values():
        assert not free.eligible and free.rule.startswith("deny exemption")
    killed_off = Rollout(False, value.percent, value.internal)
    held = decide(killed_off, subject=subject, salt="f", scopes=scopes, killed_by=[("KS1", "global")],
                  priority=None, exemptions=mine, internal=True)  # fmt: skip
    assert not held.eligible


@given(subject=st.text(max_size=30), percent=st.integers(0, 100))
def test_without_exemptions_a_rollout_is_its_bucket(subject: str, percent: int) -> None:
    result = decide(Rollout(True, percent), subject=subject, salt="f", scopes=[], killed_by=[], priority=None,
                    exemptions={}, internal=False)  # fmt: skip
    assert result.eligible == (percent > 0 and bucket("f", subject) < percent)


# ---------------------------------------------------------------- kills and bucketing


def engaged(switch: str, level: int, seq: int, setting: RolloutKill, scope: str = "global") -> Engaged:
    return Engaged(switch, scope, level, seq, T0, None, "u", "r", {}, {}, {"f": setting})


KILLS = st.lists(
    st.builds(
        RolloutKill,
        enabled=st.one_of(st.none(), st.booleans()),
        percent=st.one_of(st.none(), st.integers(0, 100)),
    ),
    min_size=1,
    max_size=4,
)


@given(base=ROLLOUTS, settings=KILLS)
def test_engaged_kills_combine_strictly_whatever_their_order(
    base: Rollout, settings: list[RolloutKill]
) -> None:
    records = [engaged(f"KS{i}", 1 + i % 5, i, s) for i, s in enumerate(settings)]
    results = {overlay(base, list(order), "f") for order in permutations(records)}
    assert len(results) == 1
    (value,) = results
    assert value.exposure <= base.exposure  # a kill never widens exposure


def test_a_global_kill_holds_every_scope_and_a_scoped_one_only_its_own() -> None:
    glob = engaged("KS5", 5, 1, RolloutKill(enabled=False))
    scoped = engaged("KS1", 1, 2, RolloutKill(enabled=False), scope="workspace:42")
    both = [glob, scoped]
    assert holding(both, "f", "workspace:42") == [scoped, glob]  # lowest level first
    assert holding(both, "f", "workspace:7") == [glob]
    assert holding([scoped], "f") == []


@given(salt=st.text(max_size=20), subject=st.text(max_size=40))
def test_a_bucket_is_in_range_and_stable(salt: str, subject: str) -> None:
    b = bucket(salt, subject)
    assert 0 <= b < 100 and bucket(salt, subject) == b


@given(
    salt=st.text(max_size=20), subject=st.text(max_size=40), low=st.integers(0, 100), high=st.integers(0, 100)
)
def test_eligibility_is_monotonic_in_percent(salt: str, subject: str, low: int, high: int) -> None:
    low, high = min(low, high), max(low, high)
    if eligible(salt, subject, True, low):
        assert eligible(salt, subject, True, high)


# ---------------------------------------------------------------- durations


@given(seconds=st.integers(0, 10**8))
def test_durations_print_as_they_parse(seconds: int) -> None:
    delta = timedelta(seconds=seconds)
    text = format_duration(delta)
    assert parse_duration(text) == delta
    assert ":" not in text  # 30m, never 0:30:00


@pytest.mark.parametrize("bad", ["", "10", "5x", "m5", "1h-2m"])
def test_bad_durations_say_what_is_accepted(bad: str) -> None:
    with pytest.raises(ValueError, match="30m"):
        parse_duration(bad)
