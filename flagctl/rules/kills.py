"""How engaged kill switches combine, and when a kill holds a flag. Pure.

Any number of switches may be engaged, globally or per scope. For each flag a switch
holds, the engagement records the flag's *base* value (before any kill held it at that
scope; ``None`` at a scope means "no override") and the switch's own settings. A flag's
value is then always

    base, overlaid with the settings of every switch engaged on it (lowest level first)

where rollout settings combine strictly (enabled AND-ed, percent the minimum) and other
types take the highest level's value. So releasing one switch never undoes another still
engaged, and releasing the last restores the base exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
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


def engaged_on(engaged: list[Engaged], flag: str) -> list[Engaged]:
    """Every engagement that sets this flag, at any scope, lowest level first (for listing)."""
    return sorted((e for e in engaged if flag in e.settings), key=lambda e: (e.level, e.seq))


def engaged_at(engaged: list[Engaged], flag: str, scope: str) -> list[Engaged]:
    """The engagements recorded at exactly this scope that set this flag, lowest level first:
    the ones whose settings are overlaid on the value stored at that scope."""
    return [e for e in engaged_on(engaged, flag) if e.scope == scope]


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
