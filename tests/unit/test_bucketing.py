"""Bucketing in Python: Unleash's published vectors and the distribution."""

from __future__ import annotations

import pytest

from flagctl.rules.bucketing import bucket, eligible

# From Unleash's client specification (gradual rollout, normalizedValue = bucket + 1).
UNLEASH = [
    ("AB12A", "122", 50, True),
    ("AB12A", "155", 50, False),
    ("Feature.flexibleRollout.10", "174", 10, True),
    ("Feature.flexibleRollout.10", "499", 10, False),
]


@pytest.mark.parametrize(("group", "subject", "percent", "enabled"), UNLEASH)
def test_unleash_vectors(group: str, subject: str, percent: int, enabled: bool) -> None:
    assert eligible(group, subject, True, percent) is enabled


def test_disabled_is_never_eligible() -> None:
    assert not eligible("AB12A", "122", False, 100)


def test_buckets_are_spread_evenly() -> None:
    counts = [0] * 100
    for i in range(100_000):
        counts[bucket("flag", str(i))] += 1
    assert min(counts) > 850 and max(counts) < 1150  # ±15% of 1000: a broken hash fails this
