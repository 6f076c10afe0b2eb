"""A decision looks up the subject's own scopes among a flag's exemptions: it never walks
them all (10,000 exemptions made every gate decision 37 times slower; bench/gate_exemptions.py)."""

from __future__ import annotations

from typing import Any

from flagctl.model.manifest import parse_manifest
from flagctl.model.values import Rollout
from flagctl.store.flags import Snapshot
from flagctl.views.evaluate import decide_from

MANIFEST = parse_manifest(
    "version: 1\nsystem: s\nflags:\n  f: {type: rollout, scopes: [publisher]}\n", "m.yaml"
)


class LookupsOnly(dict[str, str]):
    """Exemptions that may be looked up by scope, never walked."""

    def __iter__(self) -> Any:
        raise AssertionError("the decision walked every exemption")

    def items(self) -> Any:
        raise AssertionError("the decision walked every exemption")

    def keys(self) -> Any:
        raise AssertionError("the decision walked every exemption")

    def values(self) -> Any:
        raise AssertionError("the decision walked every exemption")


def test_a_decision_looks_up_the_subjects_scopes_and_walks_no_exemption() -> None:
    exemptions = LookupsOnly({f"publisher:{i}": "deny" for i in range(10_000)})
    snapshot = Snapshot(globals={"f": Rollout(True, 100)})
    denied = decide_from(MANIFEST, snapshot, [], {"f": exemptions}, "f", "7", ["publisher:42"])
    assert (denied.eligible, denied.rule) == (False, "deny exemption publisher:42")
    assert denied.exemptions == {"publisher:42": "deny"}
    free = decide_from(MANIFEST, snapshot, [], {"f": exemptions}, "f", "7", ["publisher:99999"])
    assert free.eligible and free.exemptions == {}


class Counted(LookupsOnly):
    """Overrides that may be walked while a gate compiles its snapshot, never after."""

    walkable = True

    def __iter__(self) -> Any:
        return super().__iter__() if not self.walkable else dict.__iter__(self)

    def keys(self) -> Any:
        return super().keys() if not self.walkable else dict.keys(self)


def test_a_decision_looks_up_the_subjects_scoped_overrides_and_walks_none() -> None:
    """Scoped overrides too: 10,000 of them, each decision (decide_from, and the gate's
    compiled path in front of it) looks up the subject's own scopes."""
    from flagctl.gate import Gate
    from flagctl.store.gate import Check

    overrides = Counted({f"publisher:{i}": Rollout(True, 0) for i in range(10_000)})
    snapshot = Snapshot(globals={"f": Rollout(True, 100)}, overrides={"f": overrides})
    gate = Gate("", manifest=MANIFEST, register=False, start=False, clock=lambda: 0.0)
    gate.apply(MANIFEST, snapshot, [], {}, 1, "d", Check("", ()))  # compiling walks them, once
    overrides.walkable = False
    held = decide_from(MANIFEST, snapshot, [], {}, "f", "7", ["publisher:42"])
    assert (held.eligible, held.value_scope) == (False, "publisher:42")
    assert not gate.enabled("f", "7", ["publisher:42"])  # its override: decide_from, by lookup
    assert gate.enabled("f", "7", ["publisher:99999"]) and gate.enabled("f", "7")  # the global value
