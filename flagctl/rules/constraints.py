"""Cross-flag constraints checked against the state a change would produce. Pure.

The state checked is the global values with the change applied, and, for every scope that
has an override of a constrained flag, that scope's values (overrides over global).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from flagctl.model.change import Change
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL


@dataclass(frozen=True)
class Violation:
    rule: str
    scope: str
    why: str


def violations(manifest: Manifest, state: dict[str, Any], scope: str = GLOBAL) -> list[Violation]:
    found = []
    for rule in manifest.model.constraints:
        why = rule.violation(state)
        if why:
            found.append(Violation(rule.name, scope, why))
    return found


def constrained_flags(manifest: Manifest) -> set[str]:
    """The flags some cross-flag constraint reads."""
    return {f for rule in manifest.model.constraints for f in rule.flags()}


def violations_after(
    manifest: Manifest,
    globals_: dict[str, Any],
    overrides: dict[str, dict[str, Any]],
    changes: Iterable[Change],
) -> list[Violation]:
    """The violations of the state the changes produce: the global values, and every scope
    that has an override of a constrained flag (its overrides over the global values)."""
    constrained = constrained_flags(manifest)
    state = {flag: globals_[flag] for flag in constrained}
    scopes: dict[str, dict[str, Any]] = {}
    for flag in constrained:
        for scope, value in overrides.get(flag, {}).items():
            scopes.setdefault(scope, {})[flag] = value
    for change in changes:
        if change.flag not in constrained:
            continue
        if change.scope == GLOBAL:
            state[change.flag] = change.after
        elif change.after is None:
            scopes.get(change.scope, {}).pop(change.flag, None)
        else:
            scopes.setdefault(change.scope, {})[change.flag] = change.after
    found = violations(manifest, state)
    for scope, overrides in sorted(scopes.items()):
        found += violations(manifest, {**state, **overrides}, scope)
    return found


def overriding(manifest: Manifest, state: dict[str, Any]) -> str | None:
    """The first priority flag that is on (it overrides every other flag), if any."""
    for flag in manifest.model.priority:
        if state.get(flag) is True:
            return flag
    return None
