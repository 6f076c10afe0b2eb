"""The live state of a system's flags, and how it differs from a desired state (profile diff)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.model.manifest import Manifest
from flagctl.model.profile import State
from flagctl.model.scopes import GLOBAL
from flagctl.store.flags import FlagStore

if TYPE_CHECKING:
    import psycopg


def live_state(conn: psycopg.Connection[Any], manifest: Manifest, flags: list[str] | None = None) -> State:
    snapshot = FlagStore(conn, manifest).snapshot(flags)
    state: State = {GLOBAL: dict(snapshot.globals)}
    for name, by_scope in snapshot.overrides.items():
        for scope, value in by_scope.items():
            state.setdefault(scope, {})[name] = value
    return state


@dataclass(frozen=True)
class Drift:
    flag: str
    scope: str
    live: Any
    wanted: Any


def diff(conn: psycopg.Connection[Any], manifest: Manifest, desired: State) -> list[Drift]:
    snapshot = FlagStore(conn, manifest).snapshot({f for values in desired.values() for f in values})
    found = []
    for scope, values in sorted(desired.items()):
        for flag, wanted in sorted(values.items()):
            live = snapshot.at(flag, scope)
            if live != wanted:
                found.append(Drift(flag, scope, live, wanted))
    return found
