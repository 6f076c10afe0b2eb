"""Human durations ("30m", "1h30m", "2d", "45s") and relative times ("2h ago")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_PART = re.compile(r"(\d+)(ms|s|m|h|d|w)")
_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}


LONGEST = timedelta(days=3650)  # ten years: any longer is a typo, and overflows clocks


def parse_duration(text: str) -> timedelta:
    """Parse "90s", "30m", "1h30m", "2d"; raise ValueError with the accepted forms."""
    compact = text.strip().replace(" ", "")
    if not compact:
        raise ValueError("empty duration; use e.g. 30s, 30m, 1h30m, 2d")
    total = timedelta()
    pos = 0
    for match in _PART.finditer(compact):
        if match.start() != pos:
            break
        count = int(match.group(1))
        if count > LONGEST.total_seconds():  # any unit: beyond it (and timedelta's range)
            raise ValueError(
                f"{text!r} is longer than {format_duration(LONGEST)}, the longest duration flagctl takes"
            )
        total += count * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(compact):
        raise ValueError(f"not a duration: {text!r}; use e.g. 30s, 30m, 1h30m, 2d")
    if total > LONGEST:
        raise ValueError(
            f"{text!r} is longer than {format_duration(LONGEST)}, the longest duration flagctl takes"
        )
    return total


def format_duration(delta: timedelta) -> str:
    """Render a timedelta compactly: 1h30m, 45s, 2d3h."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "-" + format_duration(-delta)
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= size:
            parts.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(parts) or "0s"


def parse_since(text: str, now: datetime) -> datetime:
    """An ISO timestamp, or a duration meaning that long before ``now`` ("2h", "2h ago")."""
    stripped = text.strip().removesuffix("ago").strip()
    try:
        return now - parse_duration(stripped)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(
            f"not a time: {text!r}; use an ISO timestamp (2026-11-21T09:00Z) or a duration (2h)"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_until(text: str, now: datetime) -> datetime:
    """When something ends: an ISO time ("2026-12-01T18:00Z"; UTC if it names no zone) or
    a duration from ``now`` ("4h"); raise ValueError with both forms."""
    try:
        return now + parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a time nor a duration") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
