"""Evaluation precedence: is a flag on for one subject, and which rule decided. Pure.

First match wins:
  priority flag on > kill (when it leaves the flag off) > stage off > deny exemption >
  allow exemption > internal audience > bucket.
An allow exemption never turns on a flag whose stage is off, and no exemption reopens a
flag a kill holds. A kill that only lowers a rollout's percent still buckets (at the
lowered percent).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flagctl.model.values import Rollout
from flagctl.rules.bucketing import bucket


@dataclass(frozen=True)
class Verdict:
    eligible: bool
    rule: str
    bucket: int | None = None


def decide(
    value: Any,
    *,
    subject: str,
    salt: str,
    scopes: list[str],
    killed_by: list[tuple[str, str]],
    priority: str | None,
    exemptions: dict[str, str],
    internal: bool,
) -> Verdict:
    """The decision for one subject. ``value`` is the flag's value in the subject's scopes
    (a Rollout or a bool); ``killed_by`` the (switch, scope) kills holding it, lowest level
    first; ``priority`` a priority flag that is on; ``exemptions`` scope → allow | deny."""
    on = value.active if isinstance(value, Rollout) else bool(value)
    if priority:
        return Verdict(False, f"priority flag {priority} is on: it overrides everything")
    if killed_by and not on:
        switch, scope = killed_by[-1]
        return Verdict(False, f"kill switch {switch} (scope {scope})")
    if not on:
        if not isinstance(value, Rollout):  # a plain on/off flag: no stage to speak of
            return Verdict(False, "off")
        return Verdict(False, "stage off (dark: enabled at 0%)" if value.enabled else "stage off")
    if not killed_by:
        for scope in scopes:
            if exemptions.get(scope) == "deny":
                return Verdict(False, f"deny exemption {scope}")
        for scope in scopes:
            if exemptions.get(scope) == "allow":
                return Verdict(True, f"allow exemption {scope}")
    if not isinstance(value, Rollout):
        return Verdict(True, "on" if not killed_by else f"on (kill switch {killed_by[-1][0]} leaves it on)")
    if value.internal and internal:
        return Verdict(True, "internal audience")
    b = bucket(salt, subject)
    prefix = f"kill switch {killed_by[-1][0]} limits it; " if killed_by else ""
    if b < value.percent:
        return Verdict(True, f"{prefix}bucket {b} < {value.percent}%", b)
    return Verdict(False, f"{prefix}bucket {b} ≥ {value.percent}%", b)
