"""The gate's compiled decisions (flagctl.gate.compiled) are `flagctl eval`'s: over random
states — values, scoped overrides, kills engaged globally and at scopes, exemptions,
priority flags — and random subjects, scopes and audiences, ``Gate.enabled`` answers as
``views.evaluate.decide_from`` does, for every flag."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flagctl.gate import Gate
from flagctl.model.manifest import parse_manifest
from flagctl.model.scopes import GLOBAL
from flagctl.model.values import Rollout
from flagctl.rules.kills import Engaged
from flagctl.store.flags import Snapshot
from flagctl.store.gate import Check
from flagctl.views.evaluate import decide_from

MANIFEST = parse_manifest(
    """
version: 1
system: s
priority: [stop]
flags:
  r1: {type: rollout, scopes: [workspace, region]}
  r2: {type: rollout, salt: shared, scopes: [workspace]}
  b: {type: bool, scopes: [workspace, region]}
  n: {type: int, scopes: [region]}
  stop: {type: bool}
kill_switches:
  K1: {level: 1, set: {r1: {enabled: false}}}
  K2: {level: 2, set: {r1: {percent: 10}, r2: {percent: 5, internal: false}, b: false}}
  K3: {level: 3, set: {n: 0, r2: {enabled: false}}}
  K4: {level: 4, set: {b: true}}
""",
    "m.yaml",
)
FLAGS = list(MANIFEST.flags)
SCOPES = ["workspace:1", "workspace:2", "workspace:3", "region:eu", "region:us", "cohort:a"]
NO_CHECK = Check("", ())

percents = st.one_of(st.sampled_from([0, 1, 25, 50, 99, 100]), st.integers(0, 100))
rollouts = st.builds(Rollout, st.booleans(), percents, st.booleans())
VALUES: dict[str, Any] = {
    "r1": rollouts,
    "r2": rollouts,
    "b": st.booleans(),
    "n": st.integers(-2, 3),
    "stop": st.sampled_from([False, False, False, True]),
}


@st.composite
def states(draw: st.DrawFn) -> tuple[Snapshot, list[Engaged], dict[str, dict[str, str]]]:
    snapshot = Snapshot(globals={flag: draw(VALUES[flag]) for flag in FLAGS})
    for flag in ("r1", "r2", "b", "n"):
        scoped = draw(st.dictionaries(st.sampled_from(SCOPES), VALUES[flag], max_size=3))
        if scoped:
            snapshot.overrides[flag] = scoped
    kills = st.tuples(st.sampled_from(list(MANIFEST.switches)), st.sampled_from([GLOBAL, *SCOPES]))
    engaged = []
    for seq, (switch, scope) in enumerate(draw(st.lists(kills, max_size=4, unique=True))):
        level = MANIFEST.switch(switch).level
        at = datetime(2026, 1, 1, tzinfo=UTC)
        order = draw(st.integers(0, 50)) * 10 + seq  # engagement order, not list order
        engaged.append(
            Engaged(switch, scope, level, order, at, None, "u", "r", {}, {}, MANIFEST.switches[switch])
        )
    exemptions = {
        flag: table
        for flag in ("r1", "r2", "b")
        if (
            table := draw(
                st.dictionaries(st.sampled_from(SCOPES), st.sampled_from(["allow", "deny"]), max_size=3)
            )
        )
    }
    return snapshot, engaged, exemptions


subjects = st.one_of(st.text(max_size=12), st.integers(-(10**12), 10**12))


def gate_at(snapshot: Snapshot, engaged: list[Engaged], exemptions: dict[str, dict[str, str]]) -> Gate:
    gate = Gate("", manifest=MANIFEST, register=False, start=False, clock=lambda: 0.0)
    gate.apply(MANIFEST, snapshot, engaged, exemptions, 1, "d", NO_CHECK)
    return gate


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    states(),
    st.lists(st.tuples(subjects, st.lists(st.sampled_from(SCOPES), max_size=3), st.booleans()), min_size=1, max_size=8),
)  # fmt: skip
def test_the_compiled_decision_is_decide_from(
    state: tuple[Snapshot, list[Engaged], dict[str, dict[str, str]]], asked: list[tuple[Any, list[str], bool]]
) -> None:
    snapshot, engaged, exemptions = state
    gate = gate_at(snapshot, engaged, exemptions)
    for subject, scopes, internal in asked:
        for flag in FLAGS:
            expected = decide_from(
                MANIFEST, snapshot, engaged, exemptions, flag, str(subject), scopes, internal
            )
            assert gate.enabled(flag, subject, scopes, internal=internal) is expected.eligible, (
                flag,
                expected,
            )
            assert gate.enabled(flag, subject, tuple(scopes), internal=internal) is expected.eligible


def test_a_subject_outside_every_relevant_scope_takes_the_compiled_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a scope with an override, a kill or an exemption of the flag sends a decision
    to decide_from; every other one is the compiled threshold and one hash."""
    snapshot = Snapshot(globals={"r1": Rollout(True, 50), "r2": Rollout(True, 0, True), "b": True, "n": 1,
                                 "stop": False}, overrides={"r1": {"workspace:1": Rollout(True, 100)}})  # fmt: skip
    gate = gate_at(snapshot, [], {"r1": {"region:eu": "deny"}})
    exact: list[str] = []
    real = Gate._decide

    def counted(state: Any, flag: str, *args: Any) -> Any:
        exact.append(flag)
        return real(state, flag, *args)

    monkeypatch.setattr(Gate, "_decide", staticmethod(counted))
    on = sum(gate.enabled("r1", s, ["workspace:2", "region:us"]) for s in range(1000))
    assert 400 < on < 600 and exact == []
    assert gate.enabled("r2", "x", internal=True) and not gate.enabled("r2", "x") and exact == []
    assert gate.enabled("r1", "x", ["workspace:1"]) and exact == ["r1"]  # its override: decide_from
    assert not gate.enabled("r1", "x", ["workspace:1", "region:eu"]) and exact == ["r1", "r1"]
