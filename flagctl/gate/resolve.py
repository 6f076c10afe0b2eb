"""One flag resolved for an OpenFeature evaluation context, as the Python provider
(``flagctl.gate.openfeature``) and ``flagctl serve``'s OFREP endpoints both answer it: the
same value, reason and variant whether a service reads flagctl in process or over HTTP.

- the context's targeting key is the subject id; an attribute named like a scope kind of
  the flag (``workspace``, ``region``, …) is that scope (``workspace:42``); an attribute
  ``scopes`` may list ``KIND:VALUE`` scopes directly; ``internal: true`` puts the subject
  in the internal audience;
- a rollout or bool flag resolves to whether it is on for the subject, with the rule that
  decided as the reason (a kill is DISABLED, a bucket SPLIT, an exemption or the internal
  audience TARGETING_MATCH, a plain value STATIC) and ``on``/``off`` as the variant; any
  other flag to its value in the scopes given (kills applied), reason STATIC;
- a stale gate answers what the gate answers when stale, reason STALE: a rollout or bool
  off, a config value its last known value (``when_stale`` in the manifest overrides
  either) — never a caller's default, which could be "on".

It needs no OpenFeature package: reasons and error codes are the specification's names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from flagctl.gate import client
from flagctl.gate.client import Gate
from flagctl.model.flagtypes import SCOPE, BoolFlag, FloatFlag, RolloutFlag
from flagctl.model.values import Rollout

# The OpenFeature reasons and error codes used here.
STATIC, SPLIT, TARGETING_MATCH, DISABLED, STALE, ERROR = (
    "STATIC", "SPLIT", "TARGETING_MATCH", "DISABLED", "STALE", "ERROR",
)  # fmt: skip
FLAG_NOT_FOUND, TARGETING_KEY_MISSING = "FLAG_NOT_FOUND", "TARGETING_KEY_MISSING"


@dataclass(frozen=True)
class Resolution:
    key: str
    value: Any = None
    reason: str = ERROR
    variant: str | None = None
    error: str | None = None  # an OpenFeature error code; the value is then meaningless
    message: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    boolean: bool = False  # the flag resolves to on/off (a rollout or a bool)


def scopes_of(kinds: Sequence[str], attributes: Mapping[str, Any]) -> list[str]:
    """The flag's scopes from the context: ``workspace: 42`` → ``workspace:42``, and any
    ``scopes: [KIND:VALUE, …]`` given directly."""
    found = [f"{kind}:{attributes[kind]}" for kind in kinds if attributes.get(kind) is not None]
    listed = attributes.get("scopes")
    if isinstance(listed, list | tuple):
        found += [s for s in listed if isinstance(s, str) and SCOPE.match(s)]
    return found


def reason_of(rule: str) -> str:
    """The OpenFeature reason for the rule that decided (``views.evaluate``): the gate's
    (``flagctl.gate.client.reason_of``), as the specification spells it."""
    return client.reason_of(rule).upper()


def resolve(gate: Gate, key: str, targeting_key: str | None, attributes: Mapping[str, Any]) -> Resolution:
    """The flag ``key`` for this context, from the gate's current snapshot (no I/O)."""
    spec = gate.manifest.flags.get(key)
    if spec is None:
        return Resolution(key, error=FLAG_NOT_FOUND, message=f"no flag {key!r} in {gate.system}")
    scopes = scopes_of(spec.scopes, attributes)
    if isinstance(spec, RolloutFlag | BoolFlag):
        if not targeting_key and isinstance(spec, RolloutFlag):
            return Resolution(
                key, error=TARGETING_KEY_MISSING, message="a rollout needs a targeting key", boolean=True
            )
        internal = attributes.get("internal") is True
        fresh = gate.fresh()
        decision = gate.decide(key, targeting_key or "", scopes, internal=internal)
        if decision is None:  # stale, and off when stale
            return Resolution(key, False, STALE, "off", boolean=True)
        metadata: dict[str, Any] = {"rule": decision.rule}
        if decision.bucket is not None:
            metadata["bucket"] = decision.bucket
        variant = "on" if decision.eligible else "off"
        reason = reason_of(decision.rule) if fresh else STALE  # stale, kept: when_stale: last
        return Resolution(key, decision.eligible, reason, variant, metadata=metadata, boolean=True)
    fresh = gate.fresh()
    value: Any = Gate.value(gate, key, scopes)  # not a hooked gate's own method: the caller records it
    if isinstance(value, Rollout):
        value = value.to_json()
    if isinstance(spec, FloatFlag) and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    return Resolution(key, value, STATIC if fresh else STALE, _variant(value))


def _variant(value: Any) -> str:
    import json

    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
