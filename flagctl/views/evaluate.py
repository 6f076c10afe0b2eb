"""Eligibility of one subject, the rule that decided, and the blast radius of a percent.

Precedence, first match wins:
  0. priority     a priority flag of the manifest (e.g. a global kill_switch toggle) is on
  1. kill         a kill switch holds the flag (globally or at one of the subject's scopes)
                  and leaves it off; exemptions never reopen a killed flag
  2. stage off    the flag is off (rollout: disabled, or enabled at 0% with no audience;
                  a plain on/off flag that is off: rule "off")
  3. deny         a deny exemption for one of the subject's scopes
  4. allow        an allow exemption (it never turns on a flag whose stage is off: rule 2 first)
  5. internal     the stage's internal audience, for a subject marked internal
  6. bucket       bucket(salt, id) < percent

The subject's value is the global one, overridden by its scoped rows (for the flag's scope
kinds in the manifest's order, later kinds more specific).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError
from flagctl.model.flagtypes import SCOPE, BoolFlag, RolloutFlag, effective_value, to_json
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.rules.bucketing import HASH_VERSION
from flagctl.rules.constraints import overriding
from flagctl.rules.evaluation import decide
from flagctl.rules.kills import Engaged, holding, overlay
from flagctl.store import bucketing
from flagctl.store.exemptions import exemptions_of
from flagctl.store.flags import FlagStore, Snapshot
from flagctl.store.switches import list_engaged

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Decision:
    flag: str
    subject: str
    scopes: list[str]
    eligible: bool
    rule: str
    bucket: int | None
    value: Any
    value_scope: str
    exemptions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "subject": self.subject,
            "scopes": self.scopes,
            "eligible": self.eligible,
            "bucket": self.bucket,
            "rule": self.rule,
            "value": to_json(self.value),
            "value_scope": self.value_scope,
            "effective": effective_value(self.value),
            "exemptions": self.exemptions,
        }


def check_hash_version(conn: psycopg.Connection[Any], spec: RolloutFlag) -> None:
    installed = bucketing.hash_version(conn)
    if installed != spec.hash_version or spec.hash_version != HASH_VERSION:
        raise UsageError(
            f"bucketing hash_version mismatch: manifest {spec.hash_version}, database {installed}, "
            f"flagctl {HASH_VERSION}",
            "cohorts would silently change; upgrade flagctl and run flagctl db init, or fix the manifest",
        )


def subject_value(manifest: Manifest, snapshot: Snapshot, name: str, scopes: list[str]) -> tuple[Any, str]:
    """The value that applies to a subject in these scopes, and the scope it comes from."""
    spec = manifest.flag(name)
    value, source = snapshot.globals[name], GLOBAL
    by_kind = {SCOPE.match(s)["kind"]: s for s in scopes if SCOPE.match(s)}  # type: ignore[index]
    for kind in spec.scopes:  # manifest order: later kinds are more specific
        if kind in by_kind:
            override = snapshot.at(name, by_kind[kind])
            if override is not None:
                value, source = override, by_kind[kind]
    return value, source


def evaluate(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    name: str,
    subject: str,
    scopes: list[str],
    internal: bool = False,
) -> Decision:
    spec = manifest.flag(name)
    if not isinstance(spec, RolloutFlag | BoolFlag):
        raise UsageError(
            f"eval needs a rollout or bool flag; {name} is {spec.type}", "flagctl status shows its value"
        )
    for scope in scopes:
        check_scope(manifest, name, scope)
    if isinstance(spec, RolloutFlag):
        check_hash_version(conn, spec)
    snapshot = FlagStore(conn, manifest).snapshot({name, *manifest.model.priority})
    found = {name: exemptions_of(conn, manifest, name)}
    return decide_from(
        manifest, snapshot, list_engaged(conn, manifest), found, name, subject, scopes, internal
    )


def decide_from(
    manifest: Manifest,
    snapshot: Snapshot,
    engaged: list[Engaged],
    exemptions: dict[str, dict[str, str]],
    name: str,
    subject: str,
    scopes: list[str],
    internal: bool = False,
) -> Decision:
    """The decision for one subject from state already read — the one implementation
    behind ``flagctl eval`` and the application's gate (``flagctl.gate``)."""
    spec = manifest.flag(name)
    value, source = subject_value(manifest, snapshot, name, scopes)
    table = exemptions.get(name, {})
    mine = {s: table[s] for s in scopes if s in table}  # the subject's scopes looked up: O(1) in exemptions
    held = holding(engaged, name, *scopes)
    value = overlay(value, held, name)  # a kill holding the subject beats any override it has
    priority = overriding(manifest, snapshot.globals)
    verdict = decide(
        value,
        subject=subject,
        salt=spec.salt_for(name) if isinstance(spec, RolloutFlag) else name,
        scopes=scopes,
        killed_by=[(e.switch, e.scope) for e in held],
        priority=priority if priority != name else None,
        exemptions=mine,
        internal=internal,
    )
    return Decision(
        name, subject, scopes, verdict.eligible, verdict.rule, verdict.bucket, value, source, mine
    )


@dataclass(frozen=True)
class BlastRadius:
    subjects: int
    eligible_now: int
    percent_now: int
    eligible_at: int | None
    percent_at: int | None

    def describe(self) -> str:
        text = f"{self.eligible_now} of {self.subjects} subjects eligible now ({self.percent_now}%)"
        if self.percent_at is not None:
            text += f" → {self.eligible_at} at {self.percent_at}%"
        return text + " (by bucket; exemptions and the internal audience not counted)"

    def to_json(self) -> dict[str, Any]:
        return {
            "subjects": self.subjects,
            "eligible_now": self.eligible_now,
            "percent_now": self.percent_now,
            "eligible_at": self.eligible_at,
            "percent_at": self.percent_at,
        }


def blast_radius(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    name: str,
    subjects_sql: str,
    percent: int | None,
    now_value: Any | None = None,
    timeout: str = "30s",
) -> BlastRadius:
    """Count, in the database with flagctl.bucket, who is eligible now and at ``percent``.

    The subjects query (its first column is the subject id) runs read-only with a timeout.
    """
    import psycopg as pg

    spec = manifest.flag(name)
    if not isinstance(spec, RolloutFlag):
        raise UsageError(f"a blast radius needs a rollout flag; {name} is {spec.type}")
    current = now_value if now_value is not None else FlagStore(conn, manifest).values([name])[name]
    now_pct = current.exposure
    try:
        total, eligible_now, eligible_at = bucketing.eligible_counts(
            conn, subjects_sql, spec.salt_for(name), now_pct, percent or 0, timeout
        )
    except pg.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip()
        raise UsageError(f"the subjects query failed: {message} (SQLSTATE {exc.sqlstate})") from None
    return BlastRadius(total, eligible_now, now_pct, eligible_at if percent is not None else None, percent)
