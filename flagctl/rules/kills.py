"""How engaged kill switches combine, and when a kill holds a flag. Pure.

Any number of switches may be engaged, globally or per scope. For each flag a switch
holds, the engagement records the flag's *base* value (before any kill held it at that
scope; ``None`` at a scope means "no override") and the switch's own settings. A flag's
value is then always

    base, overlaid with the settings of every switch engaged on it (lowest level first)

where rollout settings combine strictly (enabled AND-ed, percent the minimum) and other
types take the highest level's value. So releasing one switch never undoes another still
engaged, and releasing the last restores the base exactly.

A broader kill beats every narrower "on": a switch engaged globally also writes its
settings into each scoped override of its flags, and records that override's base
(``below``), so it *covers* that scope too. An override a scoped kill created (base
``None``) stays that kill's: the global kill overlays it, and when the scoped kill goes
the override goes with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flagctl.model.flagtypes import KillSetting
from flagctl.model.scopes import GLOBAL


@dataclass(frozen=True)
class Engaged:
    """One engaged kill switch at one scope, as recorded when it was engaged."""

    switch: str
    scope: str
    level: int
    seq: int
    engaged_at: datetime
    actor: str | None
    db_user: str
    reason: str
    prior: dict[str, Any]  # flag → base value (None: no override at this scope)
    applied: dict[str, Any]  # flag → value right after engaging
    settings: dict[str, KillSetting]  # flag → what this switch sets
    below: dict[str, dict[str, Below]] = field(default_factory=dict)  # global: flag → scope → override

    def covers(self, flag: str, scope: str) -> bool:
        """Whether this engagement holds the value stored at this scope."""
        if flag not in self.settings:
            return False
        return self.scope == scope or (self.scope == GLOBAL and scope in self.below.get(flag, {}))

    def base(self, flag: str, scope: str) -> Any:
        """The value stored at a scope it covers before any kill held it."""
        return self.prior[flag] if scope == self.scope else self.below[flag][scope].prior

    def applied_at(self, flag: str, scope: str) -> Any:
        return self.applied[flag] if scope == self.scope else self.below[flag][scope].applied


@dataclass(frozen=True)
class Below:
    """A scoped override a global kill covers: its base, and what the kill wrote there."""

    prior: Any  # None: a scoped kill created the override
    applied: Any


def engaged_on(engaged: list[Engaged], flag: str) -> list[Engaged]:
    """Every engagement that sets this flag, at any scope, lowest level first (for listing)."""
    return sorted((e for e in engaged if flag in e.settings), key=lambda e: (e.level, e.seq))


def engaged_by_flag(engaged: list[Engaged]) -> dict[str, list[Engaged]]:
    """``engaged_on`` for every flag at once: flag → its engagements, lowest level first. A
    command over every flag reads this once instead of walking the engagements per flag."""
    found: dict[str, list[Engaged]] = {}
    for e in sorted(engaged, key=lambda e: (e.level, e.seq)):
        for flag in e.settings:
            found.setdefault(flag, []).append(e)
    return found


def engaged_at(engaged: list[Engaged], flag: str, scope: str) -> list[Engaged]:
    """The engagements that cover the value stored at this scope, lowest level first: the
    ones whose settings are overlaid on it (those engaged there, and global ones that
    recorded an override there)."""
    return [e for e in engaged_on(engaged, flag) if e.covers(flag, scope)]


def base_at(holders: list[Engaged], flag: str, scope: str) -> Any:
    """The value stored at a scope before any of these (covering) kills held it; every
    engagement records the same base, the first one's."""
    first = min(holders, key=lambda e: e.seq)
    return first.base(flag, scope)


def left_at(holders: list[Engaged], flag: str, scope: str, global_now: Any, default: Any = None) -> Any:
    """The value these engaged kills left at a scope they cover — what a re-kill writes
    back and what a release expects to find (None: no override).

    Over a stored base: the base overlaid with every holder's settings (a global value
    never stored starts from the flag's ``default``). Where scoped kills created the
    override (no base), they built it from the global value of their time; a global move
    since is no change of it, so what they left is what the latest of them wrote, with any
    global kill covering it overlaid."""
    base = base_at(holders, flag, scope)
    if scope == GLOBAL:
        return overlay(_start(base, global_now, default), holders, flag)
    if base is not None:
        return overlay(base, holders, flag)
    scoped = [e for e in holders if e.scope == scope]
    if not scoped:
        return None  # its scoped kills are gone, and the override with them
    latest = max(scoped, key=lambda e: e.seq)
    return overlay(latest.applied_at(flag, scope), [e for e in holders if e.scope == GLOBAL], flag)


def with_kill(
    holders: list[Engaged], me: Engaged, flag: str, scope: str, now: Any, global_now: Any, default: Any = None
) -> Any:
    """The value at a scope once ``me`` covers it too (``now``: its value there today)."""
    if not holders:
        start = now if now is not None else global_now
        return overlay(start, [me], flag)
    base = base_at(holders, flag, scope)
    if scope == GLOBAL:
        return overlay(_start(base, global_now, default), [*holders, me], flag)
    if base is None and me.scope == GLOBAL:  # a scoped kill's own override: overlay what it left
        return overlay(left_at(holders, flag, scope, global_now), [me], flag)
    return overlay(base if base is not None else global_now, [*holders, me], flag)


def without(
    holders: list[Engaged], record: Engaged, flag: str, scope: str, global_now: Any, default: Any = None
) -> Any:
    """The value at a scope once ``record`` no longer covers it (None: no override — at
    the global scope, no stored row: the flag's default applies again)."""
    others = [e for e in holders if e is not record]
    base = base_at(holders, flag, scope)
    if not others:
        return base
    if scope == GLOBAL:
        return overlay(_start(base, global_now, default), others, flag)
    if base is not None:
        return overlay(base, others, flag)
    if record.scope == GLOBAL:
        return left_at(others, flag, scope, global_now)
    if not any(e.scope == scope for e in others):
        return None  # the last scoped kill goes; the global kills hold the global value
    return overlay(global_now, others, flag)


def _start(base: Any, global_now: Any, default: Any) -> Any:
    """Where the global value starts from: its base, or (never stored) its default."""
    if base is not None:
        return base
    return default if default is not None else global_now


def beneath(
    engaged: list[Engaged], values: dict[str, Any], defaults: dict[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """What lies beneath the kills engaged globally: each held flag's base (what releasing
    them all restores; never stored: its default), every other flag as it is; and the
    switches holding any of them. This is the stage a ladder stands at beneath a kill."""
    under = dict(values)
    switches: set[str] = set()
    for flag, now in values.items():
        holders = engaged_at(engaged, flag, GLOBAL)
        if holders:
            under[flag] = _start(base_at(holders, flag, GLOBAL), now, defaults.get(flag))
            switches.update(e.switch for e in holders)
    return under, sorted(switches)


def holding(engaged: list[Engaged], flag: str, *scopes: str) -> list[Engaged]:
    """The one policy rule "a kill holds this flag" for a subject in these scopes (or a
    change at this scope): a switch engaged globally holds it everywhere, one engaged at a
    scope holds it there. Lowest level first."""
    return [e for e in engaged_on(engaged, flag) if e.scope in (GLOBAL, *scopes)]


def overlay(start: Any, holders: list[Engaged], flag: str) -> Any:
    """``start`` with the settings of these engagements applied, lowest level first."""
    value = start
    for record in sorted(holders, key=lambda e: (e.level, e.seq)):
        value = record.settings[flag].overlay(value)
    return value
