"""Guardrail verdicts (verify.guardrails.judge): pass, fail, inconclusive, no data and error,
each from the first row a query returns, and how each counts for a decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from flagctl.model.manifest import Guardrail
from flagctl.rules.rollback import MachineState, next_state
from flagctl.verify.guardrails import Verdict, judge

ON = {"P1": "ROLLBACK_PENDING", "P2": "DEGRADED"}


def guard(**kw: Any) -> Guardrail:
    return Guardrail(sql="select 1", max=kw.pop("max", 0.01), **kw)


@pytest.mark.parametrize(
    ("row", "kw", "verdict", "counts"),
    [
        ((0.004,), {}, Verdict.PASS, Verdict.PASS),
        ((0.02,), {}, Verdict.FAIL, Verdict.FAIL),
        ((Decimal("0.004"), 1200), {"min_samples": 100}, Verdict.PASS, Verdict.PASS),
        ((Decimal("0.02"), 1200), {"min_samples": 100}, Verdict.FAIL, Verdict.FAIL),
        # Too few samples to judge either way, even a breach.
        ((0.02, 12), {"min_samples": 100}, Verdict.INCONCLUSIVE, Verdict.INCONCLUSIVE),
        ((0.0, 12), {"min_samples": 100}, Verdict.INCONCLUSIVE, Verdict.INCONCLUSIVE),
        # An empty window: coalesce(max(rate), 0) reads 0, but nothing was measured.
        ((0, 0), {}, Verdict.NO_DATA, Verdict.FAIL),
        ((0, None), {}, Verdict.NO_DATA, Verdict.FAIL),
        (None, {}, Verdict.NO_DATA, Verdict.FAIL),
        ((None,), {}, Verdict.NO_DATA, Verdict.FAIL),
        ((None, 5), {}, Verdict.NO_DATA, Verdict.FAIL),
        (None, {"on_no_data": "pass"}, Verdict.NO_DATA, Verdict.PASS),
        (None, {"on_no_data": "inconclusive"}, Verdict.NO_DATA, Verdict.INCONCLUSIVE),
        (("many",), {}, Verdict.ERROR, Verdict.FAIL),
        (("many",), {"on_error": "inconclusive"}, Verdict.ERROR, Verdict.INCONCLUSIVE),
        ((float("nan"),), {}, Verdict.ERROR, Verdict.FAIL),
        ((0.001, "x"), {}, Verdict.ERROR, Verdict.FAIL),
        ((0.001, 2.5), {}, Verdict.ERROR, Verdict.FAIL),
        ((0.001, -1), {}, Verdict.ERROR, Verdict.FAIL),
        # min_samples without a sample count cannot be judged: an error, never a pass.
        ((0.001,), {"min_samples": 100}, Verdict.ERROR, Verdict.FAIL),
    ],
)
def test_each_first_row_has_one_verdict(
    row: Any, kw: dict[str, Any], verdict: Verdict, counts: Verdict
) -> None:
    result = judge("g", guard(**kw), row)
    assert (result.verdict, result.counts_as) == (verdict, counts)
    assert result.passed is (counts is Verdict.PASS)
    assert result.to_json()["verdict"] == verdict.value


def test_the_samples_are_carried_and_told() -> None:
    result = judge("error_rate", guard(min_samples=100), (0.02, 12))
    assert result.samples == 12
    assert result.to_json()["samples"] == 12
    assert "12 samples < min_samples 100" in result.describe()
    assert "INCONCLUSIVE" in result.describe()
    empty = judge("error_rate", guard(), (0, 0))
    assert "NO DATA" in empty.describe() and "0 samples" in empty.describe()


def test_how_no_data_counts_is_shown_beside_it() -> None:
    assert judge("g", guard(on_no_data="pass"), None).shown() == "NO DATA (counts as pass)"
    assert judge("g", guard(), None).shown() == "NO DATA"


def test_the_manifest_refuses_a_min_samples_below_one_and_unknown_counts() -> None:
    from flagctl.model.shape import Invalid, validate

    for bad in ({"min_samples": 0}, {"on_no_data": "ignore"}, {"on_error": "pass"}, {"min_samples": "10"}):
        with pytest.raises(Invalid):
            validate(Guardrail, {"sql": "select 1", "max": 1, **bad})


T0 = datetime(2026, 12, 1, tzinfo=UTC)


def test_an_inconclusive_guardrail_is_neither_a_breach_nor_green() -> None:
    recovery = timedelta(minutes=15)
    degraded = MachineState("DEGRADED", T0, None)
    assert next_state(degraded, None, ON, T0, recovery, unsure=True).state == "DEGRADED"
    assert next_state(degraded, None, ON, T0, recovery).state == "NORMAL"
    rolled = MachineState("ROLLED_BACK", T0, None)
    assert next_state(rolled, None, ON, T0, recovery, unsure=True).state == "ROLLED_BACK"
    # In recovery, an inconclusive tick restarts the window of continuous green.
    verifying = MachineState("RECOVERY_VERIFY", T0, T0)
    held = next_state(verifying, None, ON, T0 + timedelta(minutes=14), recovery, unsure=True)
    assert held.state == "RECOVERY_VERIFY" and held.green_since is None
    green = next_state(held, None, ON, T0 + timedelta(minutes=16), recovery)
    assert green.state == "RECOVERY_VERIFY"
    assert next_state(green, None, ON, T0 + timedelta(minutes=31), recovery).state == "NORMAL"
    # A breach beside an inconclusive one is still a breach.
    normal = MachineState("NORMAL", T0, None)
    assert next_state(normal, "P1", ON, T0, recovery, unsure=True).state == "ROLLBACK_PENDING"
