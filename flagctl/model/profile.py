"""Safe-baseline profile files: read, validated against the manifest, written. No database.

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
from pathlib import Path
from typing import Any

from flagctl.errors import ProfileError, UsageError
from flagctl.model.flagtypes import AnyFlag, ListFlag, RolloutFlag, to_json
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.model.shape import Invalid, Record, validate

State = dict[str, dict[str, Any]]  # scope → flag → value (None: no override at that scope)


@dataclass(frozen=True, kw_only=True)
class ProfileModel(Record):
    profile: str | None = None
    system: str
    description: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    scopes: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True)
class Profile:
    name: str
    path: str
    description: str | None
    state: State

    def flags(self) -> list[str]:
        return sorted({f for values in self.state.values() for f in values})


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
    from flagctl.model.yamlio import load_yaml, read_utf8

    path = profile_path(manifest, name)
    shown = str(path)
    try:
        text = read_utf8(path, ProfileError)
    except FileNotFoundError:
        known = ", ".join(p.stem for p in sorted(profiles_dir(manifest).glob("*.yaml"))) or "none"
        raise UsageError(
            f"no profile {name!r} ({shown})", f"profiles in {profiles_dir(manifest)}: {known}"
        ) from None
    data = load_yaml(text, shown, error=ProfileError)
    if not isinstance(data, dict):
        raise ProfileError(shown, ["a profile is a mapping: system, values, scopes"])
    try:
        model = validate(ProfileModel, data)
    except Invalid as exc:
        problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg'].lower()}" for e in exc.errors]
        raise ProfileError(shown, problems) from None
    problems, state = _typed_state(manifest, model)
    if problems:
        raise ProfileError(
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
    if isinstance(flag, ListFlag):
        return flag.accept(flag.coerce(raw))
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
