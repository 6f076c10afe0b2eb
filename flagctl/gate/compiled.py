"""Each flag's decision compiled once per snapshot, so a gate decision is a dict lookup
and at most one hash. Pure: no I/O.

``views.evaluate.decide_from`` stays the one definition of a decision; this is that
function partially evaluated for the subjects whose scopes do not matter. When a snapshot
is built, for every flag:

- the scopes at which something *could* change the decision — a scoped override, a kill
  engaged at a scope, an exemption — are collected (``relevant``). A subject in none of
  them gets the decision of a subject with no scopes; one in any of them is decided by
  ``decide_from`` itself (still O(1) in the overrides and exemptions: it looks up the
  subject's own scopes);
- for a subject with no scopes the value (the global one, with every global kill
  overlaid) and the priority flags are fixed, so the rule chain (``rules.evaluation.decide``,
  run here once for an internal and once for a public subject) either gives a constant or
  says "by bucket"; the latter is kept as the rollout's percent, the constants as 100
  (always) and 0 (never).

``enabled`` is then ``bucket(salt, id) < threshold`` — the same murmur3 as
``rules.bucketing.bucket`` — for the subject's audience. A property test
(tests/unit/test_gate_compiled.py) checks, over random states, subjects and scopes, that
the two agree on every decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import mmh3

from flagctl.model.flagtypes import RolloutFlag
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL
from flagctl.rules.constraints import overriding
from flagctl.rules.evaluation import decide
from flagctl.rules.kills import Engaged, engaged_on, overlay
from flagctl.store.flags import Snapshot

ALWAYS = 100  # bucket < 100 for every subject
NEVER = 0


@dataclass(frozen=True, slots=True)
class Compiled:
    """One flag's decision for a subject none of whose scopes is ``relevant``: on iff
    ``bucket(prefix + id) < threshold`` (public or internal audience)."""

    public: int
    internal: int
    prefix: str  # "salt:" — what the subject id is appended to before hashing
    relevant: frozenset[str]  # scopes at which the flag has an override, a kill or an exemption

    def eligible(self, subject: str, internal: bool) -> bool:
        threshold = self.internal if internal else self.public
        if threshold >= ALWAYS:
            return True
        if threshold <= NEVER:
            return False
        return bucket_of(self.prefix + subject) < threshold


def bucket_of(key: str) -> int:
    """``rules.bucketing.bucket`` of an already joined ``salt:id`` (unsigned murmur3 % 100)."""
    return int(mmh3.hash(key, 0, False)) % 100


def compile_flags(
    manifest: Manifest,
    snapshot: Snapshot,
    engaged: list[Engaged],
    exemptions: dict[str, dict[str, str]],
) -> dict[str, Compiled]:
    """Every flag of the manifest, compiled against this state."""
    priority = overriding(manifest, snapshot.globals)
    return {
        name: compile_flag(manifest, snapshot, engaged, exemptions, name, priority)
        for name in manifest.flags
        if name in snapshot.globals
    }


def compile_flag(
    manifest: Manifest,
    snapshot: Snapshot,
    engaged: list[Engaged],
    exemptions: dict[str, dict[str, str]],
    name: str,
    priority: str | None,
) -> Compiled:
    spec = manifest.flag(name)
    salt = spec.salt_for(name) if isinstance(spec, RolloutFlag) else name
    on_flag = engaged_on(engaged, name)
    held = [e for e in on_flag if e.scope == GLOBAL]  # what holds a subject with no scopes
    value = overlay(snapshot.globals[name], held, name)
    relevant = {e.scope for e in on_flag if e.scope != GLOBAL}
    relevant.update(snapshot.overrides.get(name, {}))
    relevant.update(exemptions.get(name, {}))
    public, internal = (
        _threshold(value, salt, held, priority if priority != name else None, audience)
        for audience in (False, True)
    )
    return Compiled(public, internal, f"{salt}:", frozenset(relevant))


def _threshold(value: Any, salt: str, held: list[Engaged], priority: str | None, internal: bool) -> int:
    """The rule chain for a subject with no scopes: a constant, or the percent it buckets at."""
    verdict = decide(
        value,
        subject="",
        salt=salt,
        scopes=[],
        killed_by=[(e.switch, e.scope) for e in held],
        priority=priority,
        exemptions={},
        internal=internal,
    )
    if verdict.bucket is None:  # decided without the subject's bucket
        return ALWAYS if verdict.eligible else NEVER
    return int(value.percent)  # by bucket: eligible iff bucket < percent
