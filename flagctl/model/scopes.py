"""Scopes: ``global``, or ``KIND:VALUE`` with a kind the flag accepts (its ``scopes:``)."""

from __future__ import annotations

from flagctl.errors import UsageError
from flagctl.model.flagtypes import SCOPE
from flagctl.model.manifest import Manifest

GLOBAL = "global"


def check_scope(manifest: Manifest, name: str, scope: str) -> None:
    """A scope is global, or KIND:VALUE with a kind the flag accepts."""
    if scope == GLOBAL:
        return
    match = SCOPE.match(scope)
    if not match:
        raise UsageError(f"invalid scope {scope!r}", "use global, or KIND:VALUE such as workspace:42")
    flag = manifest.flag(name)
    if match["kind"] not in flag.scopes:
        accepted = ", ".join(flag.scopes) or "none (global only)"
        raise UsageError(
            f"flag {name} has no {match['kind']} scope",
            f"scope kinds it accepts: {accepted} (the manifest's flags.{name}.scopes)",
        )
