"""Flag values and their effective state.

A rollout flag's value is ``{"enabled": bool, "percent": int}``. The effective-state
rules of the seeds hold everywhere: ``enabled=false`` is off; ``enabled=true`` with
``percent=0`` is off too (dark); otherwise the flag is on for ``percent`` of subjects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flagctl.errors import UsageError


@dataclass(frozen=True, order=True)
class Rollout:
    enabled: bool
    percent: int
    internal: bool = False  # the internal audience sees it too (canary plan's Internal stage)

    @property
    def is_on(self) -> bool:
        return self.enabled and self.percent > 0

    @property
    def active(self) -> bool:
        """Anyone sees it: a percent above 0, or the internal audience."""
        return self.enabled and (self.percent > 0 or self.internal)

    @property
    def exposure(self) -> int:
        """Share of subjects that see the feature by bucket: 0 when off or dark."""
        return self.percent if self.is_on else 0

    def effective(self) -> str:
        if not self.enabled:
            return "off"
        if self.percent == 0:
            return "internal only" if self.internal else "dark"
        share = f"on {self.percent}%"
        return f"{share} + internal" if self.internal else share

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"enabled": self.enabled, "percent": self.percent}
        if self.internal:
            data["internal"] = True
        return data

    @classmethod
    def from_json(cls, data: Any) -> Rollout:
        if not isinstance(data, dict) or "enabled" not in data or "percent" not in data:
            raise UsageError(f"not a rollout value: {data!r}", "expected enabled and percent")
        return cls(bool(data["enabled"]), int(data["percent"]), bool(data.get("internal", False)))

    def __str__(self) -> str:
        text = f"enabled={str(self.enabled).lower()} percent={self.percent}"
        return text + " internal" if self.internal else text


DARK = Rollout(enabled=False, percent=0)

_PERCENT = re.compile(r"^(\d{1,3})%?$")


def parse_rollout(text: str) -> Rollout:
    """Parse the ``flagctl set`` forms for a rollout flag: ``N%`` or ``off``."""
    value = text.strip().lower()
    if value in {"off", "false", "dark"}:
        return DARK
    if value == "internal":
        return Rollout(enabled=True, percent=0, internal=True)
    match = _PERCENT.match(value)
    if not match or int(match.group(1)) > 100:
        raise UsageError(
            f"not a rollout value: {text!r}",
            "use N% with N from 0 to 100 (enabled at N percent), 'internal', or 'off'",
        )
    return Rollout(enabled=True, percent=int(match.group(1)))


def changed_fields(before: Rollout | None, after: Rollout) -> list[str]:
    """Human summary of what a change does, field by field."""
    if before is None:
        return [f"{name}: (none) → {_fmt(value)}" for name, value in after.to_json().items()]
    parts = []
    for name in ("enabled", "percent", "internal"):
        old, new = getattr(before, name), getattr(after, name)
        if old != new:
            parts.append(f"{name}: {_fmt(old)} → {_fmt(new)}")
    return parts


def _fmt(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)
