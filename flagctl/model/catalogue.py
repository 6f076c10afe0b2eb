"""The catalogue: what the database needs to know of a manifest to check a change itself.

``flagctl manifest publish`` stores the manifest's exact text in the database, and beside
it this digest of it, as jsonb: every flag with its type, where it lives, its default and the scope kinds it takes;
every kill switch with its level and the settings it writes (includes expanded); the
cross-flag constraints; the approval policy. The database's own functions read it to judge what a write means (does
it widen exposure? is it the kill's own set? does it need a second person?), so the rules
hold in psql as in flagctl. Pure: no database here.
"""

from __future__ import annotations

from typing import Any

from flagctl.model.durations import parse_duration
from flagctl.model.manifest import Manifest

# Types whose values have an exposure order in the database's functions (flagctl.exposure):
# a rollout's share (plus half a point for the internal audience), a bool's 0 or 100.
ORDERED = ("rollout", "bool")


def catalogue_of(manifest: Manifest) -> dict[str, Any]:
    """The manifest as the database checks changes against it."""
    model = manifest.model
    flags = {}
    for name, spec in model.flags.items():
        flags[name] = {
            "type": spec.type,
            "table": spec.table,
            "key": spec.key,
            "columns": spec.columns,
            "default": spec.to_db(spec.default_value()),
            "scopes": list(spec.scopes),
        }
    switches = {
        name: {
            "level": model.kill_switches[name].level,
            "settings": {flag: setting.to_json() for flag, setting in sorted(settings.items())},
        }
        for name, settings in manifest.switches.items()
    }
    approvals = model.approvals
    return {
        "system": model.system,
        "flags": flags,
        "switches": switches,
        "constraints": [_constraint(rule) for rule in model.constraints],
        "approvals": None
        if approvals is None
        else {
            "at_or_above": approvals.at_or_above,
            "forced": approvals.forced,
            "expire_seconds": int(parse_duration(approvals.expire).total_seconds()),
        },
    }


def _constraint(rule: Any) -> dict[str, Any]:
    """A cross-flag constraint as flagctl.kill_violations reads it (literals as in YAML)."""
    if rule.range is not None:
        return {
            "name": rule.name,
            "range": {"flag": rule.range.flag, "min": rule.range.min, "max": rule.range.max},
        }
    if rule.one_of is not None:
        return {"name": rule.name, "one_of": {"flag": rule.one_of.flag, "values": list(rule.one_of.values)}}
    if rule.exclusive is not None:
        return {"name": rule.name, "exclusive": list(rule.exclusive)}
    return {"name": rule.name, "implies": {"if": dict(rule.implies.if_), "then": dict(rule.implies.then)}}
