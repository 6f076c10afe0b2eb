"""Deterministic bucketing, byte-compatible with Unleash's gradual rollout.

``bucket(salt, id) = murmur3_x86_32(utf8(f"{salt}:{id}"), seed=0) % 100``; a subject is
eligible iff the flag is enabled and ``bucket < percent`` (Unleash: ``bucket + 1 <=
percent``), so cohorts survive a migration in either direction. The same function is
installed in SQL as ``flagctl.bucket(salt, id)``; the two must agree on every input.
"""

from __future__ import annotations

import mmh3

HASH_VERSION = 1


def bucket(salt: str, subject: str) -> int:
    return int(mmh3.hash(f"{salt}:{subject}", 0, signed=False)) % 100


def eligible(salt: str, subject: str, enabled: bool, percent: int) -> bool:
    return enabled and bucket(salt, subject) < percent
