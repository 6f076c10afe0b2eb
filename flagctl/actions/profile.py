"""Safe-baseline profiles, safe points, and point-in-time restore.

A profile is a YAML file of flag values (globally, and optionally per scope)::

    profile: emergency            # default: the file's name
    system: recsys                # must be the manifest's system
    description: 10% traffic, content-only, popularity fallback
    values: {exposure_percent: 10, policy_mode: content_only}
    scopes:
      region:eu: {exposure_percent: 5}

It lives in the manifest's ``profiles:`` folder (default: ``profiles/`` beside the
manifest). ``apply``, ``rollback --to-last-safe`` and ``restore --as-of`` all compute a
*desired state* ``{scope: {flag: value}}`` (``None`` at a scope: no override) and plan it
the same way: the diff against the live state, refused while a kill switch holds a flag
it changes, checked against the constraints, applied in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field, ValidationError

from flagctl.actions import kill as killswitch
from flagctl.actions.base import Change, Plan
from flagctl.actions.stage import exposure_increases
from flagctl.errors import ManifestError, PolicyRefused, UsageError
from flagctl.model.flagtypes import AnyFlag, Model, RolloutFlag, to_json
from flagctl.model.manifest import Manifest
from flagctl.store import audit as audit_mod
from flagctl.store.flags import GLOBAL, FlagStore, check_scope

if TYPE_CHECKING:
    import psycopg

State = dict[str, dict[str, Any]]  # scope → flag → value (None: no override at that scope)


class ProfileModel(Model):
    profile: str | None = None
    system: str
    description: str | None = None
    values: dict[str, Any] = Field(default_factory=dict)
    scopes: dict[str, dict[str, Any]] = Field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    path: str
    description: str | None
    state: State

    def flags(self) -> list[str]:
        return sorted({f for values in self.state.values() for f in values})


# ---------------------------------------------------------------- files


def profiles_dir(manifest: Manifest) -> Path:
    base = Path(manifest.path).resolve().parent
    return base / (manifest.model.profiles or "profiles")


def profile_path(manifest: Manifest, name: str) -> Path:
    """A profile by name (in the profiles folder) or by path."""
    if name.endswith((".yaml", ".yml")) or "/" in name:
        return Path(name)
    return profiles_dir(manifest) / f"{name}.yaml"


def list_profiles(manifest: Manifest) -> list[Profile]:
    folder = profiles_dir(manifest)
    return [load_profile(manifest, str(path)) for path in sorted(folder.glob("*.yaml"))]


def load_profile(manifest: Manifest, name: str) -> Profile:
    """Read and validate a profile against the manifest (no database); exit 2 if invalid."""
    from flagctl.model.yamlio import load_yaml

    path = profile_path(manifest, name)
    shown = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        known = ", ".join(p.stem for p in sorted(profiles_dir(manifest).glob("*.yaml"))) or "none"
        raise UsageError(
            f"no profile {name!r} ({shown})", f"profiles in {profiles_dir(manifest)}: {known}"
        ) from None
    data = load_yaml(text, shown, what="profile")
    if not isinstance(data, dict):
        raise ManifestError(shown, ["a profile is a mapping: system, values, scopes"])
    try:
        model = ProfileModel.model_validate(data)
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg'].lower()}" for e in exc.errors()]
        raise ManifestError(shown, problems) from None
    problems, state = _typed_state(manifest, model)
    if problems:
        raise ManifestError(
            shown, problems, "fix the profile; `flagctl profile schema` gives a JSON Schema for editors"
        )
    return Profile(model.profile or path.stem, shown, model.description, state)


def _typed_state(manifest: Manifest, model: ProfileModel) -> tuple[list[str], State]:
    problems: list[str] = []
    if model.system != manifest.system:
        problems.append(f"system: this profile is for {model.system!r}, the manifest is {manifest.system!r}")
    state: State = {}
    sections = [(GLOBAL, "values", model.values)] + [
        (scope, f"scopes.{scope}", values) for scope, values in model.scopes.items()
    ]
    for scope, where, values in sections:
        for flag, raw in values.items():
            if flag not in manifest.flags:
                problems.append(f"{where}.{flag}: unknown flag (not in {manifest.path})")
                continue
            try:
                if scope != GLOBAL:
                    check_scope(manifest, flag, scope)
                state.setdefault(scope, {})[flag] = typed_value(manifest.flags[flag], raw)
            except (ValueError, UsageError) as exc:
                problems.append(f"{where}.{flag}: {getattr(exc, 'message', exc)}")
    given = state.get(GLOBAL, {})
    for rule in manifest.model.constraints:
        if all(f in given for f in rule.flags()):
            why = rule.violation(given)
            if why:
                problems.append(f"constraint {rule.name}: {why}")
    return problems, state


def typed_value(flag: AnyFlag, raw: Any) -> Any:
    """A profile value: the type's own form, or (for convenience) the command-line form."""
    if isinstance(raw, str) and flag.type in ("rollout", "bool", "int", "float"):
        return flag.parse(raw)
    return flag.coerce(raw)


def dump_profile(manifest: Manifest, name: str, state: State, description: str) -> str:
    import yaml

    document: dict[str, Any] = {"profile": name, "system": manifest.system, "description": description}
    document["values"] = {f: to_json(v) for f, v in sorted(state.get(GLOBAL, {}).items())}
    scoped = {s: {f: to_json(v) for f, v in sorted(vals.items()) if v is not None}
              for s, vals in sorted(state.items()) if s != GLOBAL}  # fmt: skip
    if any(scoped.values()):
        document["scopes"] = {s: v for s, v in scoped.items() if v}
    return str(yaml.safe_dump(document, sort_keys=False, allow_unicode=True))


def json_schema(manifest: Manifest) -> dict[str, Any]:
    """A JSON Schema for this manifest's profile files, for editors."""
    flag_schemas = {name: _value_schema(flag) for name, flag in manifest.flags.items()}
    values = {"type": "object", "properties": flag_schemas, "additionalProperties": False}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": f"flagctl profile for system {manifest.system}",
        "type": "object",
        "required": ["system"],
        "additionalProperties": False,
        "properties": {
            "profile": {"type": "string"},
            "system": {"const": manifest.system},
            "description": {"type": "string"},
            "values": values,
            "scopes": {
                "type": "object",
                "propertyNames": {"pattern": "^[a-z][a-z0-9_-]*:.+$"},
                "additionalProperties": values,
            },
        },
    }


def _value_schema(flag: AnyFlag) -> dict[str, Any]:
    base: dict[str, Any] = {"description": flag.description} if flag.description else {}
    if isinstance(flag, RolloutFlag):
        return {**base, "oneOf": [
            {"type": "object", "required": ["enabled", "percent"], "additionalProperties": False,
             "properties": {"enabled": {"type": "boolean"}, "internal": {"type": "boolean"},
                            "percent": {"type": "integer", "minimum": 0, "maximum": 100}}},
            {"type": "string", "pattern": "^(off|internal|\\d{1,3}%?)$"},
        ]}  # fmt: skip
    if flag.type == "bool":
        return {**base, "type": "boolean"}
    if flag.type in ("int", "float"):
        schema = {**base, "type": "integer" if flag.type == "int" else "number"}
        low, high = getattr(flag, "min", None), getattr(flag, "max", None)
        schema.update({k: v for k, v in (("minimum", low), ("maximum", high)) if v is not None})
        return schema
    if flag.type == "enum":
        return {**base, "enum": list(getattr(flag, "values", []))}
    return {**base, "type": "array", "items": {"type": "string"}}


# ---------------------------------------------------------------- live state and diffs


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


# ---------------------------------------------------------------- planning desired states


@dataclass
class Target:
    """A desired state and how to describe it."""

    action: str
    summary: str
    state: State
    skipped: list[str] = field(default_factory=list)
    mark_safe: str | None = None  # record as a safe point of this kind ("profile", "snapshot")
    name: str = ""


def plan_state(
    conn: psycopg.Connection[Any], manifest: Manifest, target: Target, *, force: bool, locked: bool
) -> Plan:
    flags = {f for values in target.state.values() for f in values}
    snapshot = FlagStore(conn, manifest).for_change(flags, locked=locked)
    changes = []
    for scope, values in sorted(target.state.items()):
        for flag, wanted in sorted(values.items()):
            live = snapshot.at(flag, scope)
            if live != wanted:
                changes.append(Change(flag, scope, live, wanted))
    checks = [f"skipped {s}" for s in target.skipped]
    if not changes and not target.mark_safe:
        return Plan(target.action, target.summary, noop="the live state already matches", checks=checks)
    engaged = killswitch.list_engaged(conn, manifest)
    held = sorted({f"{c.flag} ({e.switch})" for c in changes
                   for e in killswitch.holding(engaged, c.flag, c.scope)})  # fmt: skip
    if held:
        raise PolicyRefused(
            f"kill switches hold flags this would change: {', '.join(held)}; the kill beats every profile",
            "release the kill switch first, or leave those flags out (--flag)",
            system=manifest.system,
            target=target.action,
        )
    forced = False
    for change in changes:
        ladders = manifest.ladders_of(change.flag) if change.scope == GLOBAL else []
        if ladders and exposure_increases(
            manifest, {change.flag: change.before}, {change.flag: change.after}
        ):
            if not force:
                raise PolicyRefused(
                    f"{change.flag} is controlled by ladder {ladders[0].name}; this would raise its exposure "
                    "outside the ladder's bake and guardrails",
                    "use flagctl stage set, or --force with --reason (marked in the audit)",
                    system=manifest.system,
                    target=target.action,
                )
            forced = True
            checks.append(f"forced: raises {change.flag} outside ladder {ladders[0].name}")
    if target.mark_safe:
        checks.append(f"recorded as a safe point ({target.mark_safe} {target.name})")
    return Plan(target.action, target.summary, changes=changes, checks=checks, forced=forced,
                data={"safe": target.mark_safe, "name": target.name, "state": _state_json(manifest, target.state)},
                snapshot=snapshot)  # fmt: skip


def apply_state(conn: psycopg.Connection[Any], manifest: Manifest, plan: Plan) -> None:
    from psycopg.types.json import Jsonb

    FlagStore(conn, manifest).write(plan.changes)
    if plan.data.get("safe"):
        conn.execute(
            "INSERT INTO flagctl.safe_point (system, name, kind, state, actor, reason)"
            " VALUES (%s, %s, %s, %s, current_setting('flagctl.actor', true), current_setting('flagctl.reason', true))",
            (manifest.system, plan.data["name"], plan.data["safe"], Jsonb(plan.data["state"])),
        )


def _state_json(manifest: Manifest, state: State) -> dict[str, Any]:
    return {
        s: {f: None if v is None else manifest.flags[f].to_db(v) for f, v in vals.items()}
        for s, vals in state.items()
    }


def _state_from_json(manifest: Manifest, data: dict[str, Any]) -> tuple[State, list[str]]:
    state: State = {}
    skipped = []
    for scope, values in data.items():
        for flag, raw in values.items():
            if flag not in manifest.flags:
                skipped.append(f"{flag} (no longer in the manifest)")
                continue
            state.setdefault(scope, {})[flag] = None if raw is None else manifest.flags[flag].from_db(raw)
    return state, skipped


def last_safe(conn: psycopg.Connection[Any], manifest: Manifest) -> Target:
    row = conn.execute(
        "SELECT name, kind, state, at, coalesce(actor, db_user) FROM flagctl.safe_point"
        " WHERE system = %s ORDER BY id DESC LIMIT 1",
        (manifest.system,),
    ).fetchone()
    if row is None:
        raise UsageError(
            f"no safe point recorded for system {manifest.system}",
            "mark one: flagctl profile apply NAME --mark-safe, or flagctl profile snapshot NAME --mark-safe",
        )
    name, kind, data, at, who = row
    state, skipped = _state_from_json(manifest, data)
    summary = f"roll back to the last safe point: {kind} {name} (marked {at:%Y-%m-%d %H:%M:%S %Z} by {who})"
    return Target("rollback", summary, state, skipped)


# ---------------------------------------------------------------- point in time


def state_as_of(
    conn: psycopg.Connection[Any], manifest: Manifest, when: datetime, flags: list[str] | None
) -> Target:
    """The values at ``when``, rebuilt from the audit trail.

    For each flag and scope: the last recorded change at or before ``when`` gives the
    value; if there is none, the first change after it tells the value before it; with no
    change at all the value is unchanged. A scoped override that did not exist then is
    removed. A flag with no stored value at that time (it did not exist yet) is left
    unchanged and listed as skipped.
    """
    names = flags or list(manifest.flags)
    for name in names:
        manifest.flag(name)
    rows = [
        r
        for r in reversed(audit_mod.read_log(conn, system=manifest.system, flags=names, limit=1_000_000))
        if not r.action.endswith(".refused")
        and not r.target.startswith(("exemption:", "kill_switch:", "safe_point:"))
    ]
    snapshot = FlagStore(conn, manifest).snapshot(names)
    state: State = {}
    skipped = []
    for name in names:
        scopes = {GLOBAL} | {r.scope or GLOBAL for r in rows if r.flag == name}
        scopes |= set(snapshot.overrides.get(name, {}))
        for scope in sorted(scopes):
            mine = [r for r in rows if r.flag == name and (r.scope or GLOBAL) == scope]
            before = [r for r in mine if r.at <= when]
            after = [r for r in mine if r.at > when]
            if before:
                value = audit_mod.value_from_row(manifest, before[-1], "after")
            elif after:
                value = audit_mod.value_from_row(manifest, after[0], "before")
            else:
                value = snapshot.at(name, scope)
            if value is None and scope == GLOBAL:
                spec = manifest.flag(name)
                if spec.bound:
                    skipped.append(
                        f"{name} (its row in {spec.table} did not exist at {when:%Y-%m-%d %H:%M:%S %Z})"
                    )
                    continue
                value = spec.default_value()  # no row then: it read as its default
            state.setdefault(scope, {})[name] = value
    summary = f"restore {', '.join(flags) if flags else 'all flags'} as of {when:%Y-%m-%d %H:%M:%S %Z}"
    return Target("restore", summary, state, skipped)
