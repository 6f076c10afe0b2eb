"""The OpenFeature provider over a stale gate: the gate's answers (a rollout off, a config
value kept, a `when_stale: last` bool kept), each with reason STALE."""

from __future__ import annotations

from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import Reason

from flagctl.gate import Gate
from flagctl.gate.openfeature import FlagctlProvider
from flagctl.model.manifest import parse_manifest
from flagctl.model.values import Rollout
from flagctl.store.flags import Snapshot
from flagctl.store.gate import Check

MANIFEST = parse_manifest(
    """
version: 1
system: pay
flags:
  checkout: {type: rollout}
  strict: {type: bool, when_stale: last}
  payment_provider: {type: enum, values: [stripe, adyen]}
""",
    "m.yaml",
)


class Ticks:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stale_gate_through_openfeature() -> None:
    ticks = Ticks()
    gate = Gate("", manifest=MANIFEST, register=False, start=False, clock=ticks)
    snapshot = Snapshot(globals={"checkout": Rollout(True, 100), "strict": True, "payment_provider": "adyen"})
    gate.apply(MANIFEST, snapshot, [], {}, 1, "d", Check("", ()))
    api.set_provider_and_wait(FlagctlProvider(gate=gate))
    try:
        client, user = api.get_client(), EvaluationContext("u-1")
        assert client.get_boolean_details("checkout", False, user).reason == Reason.SPLIT  # fresh
        ticks.now += 31  # stale
        rollout = client.get_boolean_details("checkout", True, user)
        kept = client.get_boolean_details("strict", False, user)
        provider = client.get_string_details("payment_provider", "stripe", user)
    finally:
        api.clear_providers()
    assert (rollout.value, rollout.reason) == (False, Reason.STALE)
    assert (kept.value, kept.reason) == (True, Reason.STALE)
    assert (provider.value, provider.reason) == ("adyen", Reason.STALE)
