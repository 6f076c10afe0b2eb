"""The manifest (``flagctl.yaml``): flags, ladders, kill switches, guardrails, proofs,
constraints and priority flags, rollback, approvals.

Its records are frozen dataclasses (``model.shape.Record``). Loading is two passes, both
before anything touches a database:
1. shape: ``model.shape.validate`` (pydantic, whose validator is built on first use)
   catches unknown keys, missing keys and wrong types;
2. references and sense: every name a ladder, kill switch, constraint, rollback action or
   ``require`` uses must exist, and what the shape cannot say must hold (a bound flag's key
   and columns, a valid default and min not above max, stage and kill values of their
   flag's type, durations, a switch including only lower levels, a bound and exactly one
   source (``sql:`` or ``prometheus:``) on every guardrail).
Every problem is reported with the file, the key path and what was expected. Then the
ladders are resolved (``ResolvedLadder``) and each kill switch flattened with what it
includes. A manifest validated before comes back from the manifest cache (``model.cache``)
with neither pass, and without importing pydantic.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from flagctl.errors import ManifestError, UsageError
from flagctl.model.constraints import Constraint
from flagctl.model.constraints import check_references as check_constraints
from flagctl.model.durations import format_duration, parse_duration
from flagctl.model.flagtypes import (
    AnyFlag,
    FlagSpec,
    KillSetting,
    RolloutFlag,
    StageValue,
    kill_setting,
    stage_value,
)
from flagctl.model.shape import Invalid, Name, Percent, Record, Rule, StrictBool, validate

if TYPE_CHECKING:
    from flagctl.model.cache import ManifestCache


@dataclass(frozen=True, kw_only=True)
class AnalysisSpec(Record):
    """How a runner (``flagctl run``) judges a stage before it advances: given on a ladder,
    and overridden key by key on a stage. Unset keys take the ladder's, then the defaults."""

    guardrails: list[str] | None = None  # default: the ladder's require
    interval: str | None = None  # how often it analyses (default 5m)
    passes: Annotated[int, Rule(ge=1, strict=True)] | None = None  # consecutive passes to advance (3)
    failures: Annotated[int, Rule(ge=1, strict=True)] | None = (
        None  # failed analyses in a stage to roll back (2)
    )


@dataclass(frozen=True)
class Analysis:
    """A stage's analysis, resolved."""

    guardrails: tuple[str, ...]
    interval: timedelta
    passes: int
    failures: int

    def describe(self) -> str:
        every = format_duration(self.interval)
        return (f"every {every}: {self.passes} consecutive passes of {', '.join(self.guardrails) or 'nothing'} "
                f"to advance, {self.failures} failures to roll back")  # fmt: skip


ANALYSIS_DEFAULTS = {"interval": "5m", "passes": 3, "failures": 2}


@dataclass(frozen=True, kw_only=True)
class Stage(Record):
    name: Name
    description: str | None = None
    enabled: StrictBool | None = None
    percent: Percent | tuple[Percent, Percent] | None = None
    internal: StrictBool | None = None
    set: dict[str, Any] | None = None
    require: list[str] = field(default_factory=list)  # guardrails that must pass to enter this stage
    analysis: AnalysisSpec | None = None  # a runner's analysis of this stage, over the ladder's


@dataclass(frozen=True, kw_only=True)
class Ladder(Record):
    flag: str | None = None
    description: str | None = None
    subjects: str | None = None  # SQL whose first column is a subject id: blast radius in --dry-run
    stages: Annotated[list[Stage], Rule(min_length=1)]
    require: list[str] = field(default_factory=list)
    bake: dict[str, str] = field(default_factory=dict)
    analysis: AnalysisSpec | None = None  # how a runner advances it (flagctl rollout); None: by hand only


@dataclass(frozen=True, kw_only=True)
class KillSwitch(Record):
    level: Annotated[int, Rule(ge=1, le=5)] = 5
    description: str | None = None
    set: dict[str, Any] = field(default_factory=dict)
    includes: list[str] = field(default_factory=list)


StateName = Literal["NORMAL", "DEGRADED", "ROLLBACK_PENDING", "ROLLED_BACK", "RECOVERY_VERIFY"]
Severity = Literal["P1", "P2"]


def _default_on() -> dict[Severity, StateName]:
    return {"P1": "ROLLBACK_PENDING", "P2": "DEGRADED"}


@dataclass(frozen=True, kw_only=True)
class RollbackAction(Record):
    profile: str | None = None
    step_back: str | None = None  # a ladder
    kill: str | None = None  # a kill switch

    def __post_init__(self) -> None:
        if sum(x is not None for x in (self.profile, self.step_back, self.kill)) != 1:
            raise ValueError("give exactly one of profile, step_back, kill")

    def describe(self) -> str:
        if self.profile:
            return f"apply profile {self.profile}"
        if self.step_back:
            return f"step ladder {self.step_back} back one stage"
        return f"engage kill switch {self.kill}"


@dataclass(frozen=True, kw_only=True)
class RollbackSpec(Record):
    on: dict[Severity, StateName] = field(default_factory=_default_on)
    guardrails: list[str] | None = None
    actions: list[RollbackAction] = field(default_factory=list)
    recovery: str = "15m"


# How a guardrail's NoData or Error result counts (``verify.guardrails.Verdict``): as a
# failure (the default: a broken metrics pipeline must not look healthy), as Inconclusive
# (a runner pauses, a forward move waits), or, for NoData only, as a pass.
NoDataCounts = Literal["fail", "inconclusive", "pass"]
ErrorCounts = Literal["fail", "inconclusive"]


@dataclass(frozen=True, kw_only=True)
class PrometheusQuery(Record):
    """A guardrail read from Prometheus: an instant query whose one value is compared with
    the bound, and optionally a second one whose value is the sample count."""

    query: Annotated[str, Rule(json_schema_extra={"pattern": r"\S"})]
    # The server's base URL; without it, FLAGCTL_PROMETHEUS_URL (see flagctl.config).
    url: Annotated[str, Rule(json_schema_extra={"pattern": "^https?://"})] | None = None
    samples: Annotated[str, Rule(json_schema_extra={"pattern": r"\S"})] | None = None


# A guardrail has one source: the schema says so too, so an editor refuses both or neither.
ONE_SOURCE = {"oneOf": [{"required": ["sql"]}, {"required": ["prometheus"]}]}


@dataclass(frozen=True, kw_only=True)
class Guardrail(Record):
    __pydantic_config__: ClassVar[dict[str, Any]] = {"extra": "forbid", "json_schema_extra": ONE_SOURCE}

    sql: str | None = None
    prometheus: PrometheusQuery | None = None
    max: float | None = None
    min: float | None = None

    severity: Literal["P1", "P2"] = "P1"
    timeout: str = "5s"
    description: str | None = None
    # Fewer samples than this (the query's second column) is Inconclusive, not a pass.
    min_samples: Annotated[int, Rule(ge=1, strict=True)] | None = None
    on_no_data: NoDataCounts = "fail"
    on_error: ErrorCounts = "fail"

    @property
    def source(self) -> Literal["sql", "prometheus"]:
        return "prometheus" if self.prometheus is not None else "sql"

    def __post_init__(self) -> None:
        for bound in (self.max, self.min):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("not a number: a bound must be finite (NaN would pass every value)")


@dataclass(frozen=True, kw_only=True)
class Proofs(Record):
    phase_tables: str | None = None
    phase_role: str | None = None


@dataclass(frozen=True, kw_only=True)
class Approvals(Record):
    """Which changes need a second person (four eyes): a pending request another database
    user approves."""

    at_or_above: Percent | None = None  # a ladder move to this exposure (percent) or more
    forced: bool = False  # any --force
    expire: str = "24h"  # how long a request waits for its approval


SinkKind = Literal["cloudevents", "slack"]
ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"
EVENT_PATTERN = r"^[a-z*][a-z0-9_.:*-]*$"


@dataclass(frozen=True, kw_only=True)
class Sink(Record):
    """Where audited changes are delivered (docs/notifications.md). Secrets never appear here
    (the manifest is published into the database): the HMAC key, and a URL that is itself a
    secret (Slack's), come from the environment of whoever runs ``notify deliver``."""

    kind: SinkKind
    url: str | None = None
    url_env: Annotated[str, Rule(pattern=ENV_NAME)] | None = None
    secret_env: Annotated[str, Rule(pattern=ENV_NAME)] | None = None
    events: list[Annotated[str, Rule(pattern=EVENT_PATTERN)]] | None = None  # None: the kind's default


@dataclass(frozen=True, kw_only=True)
class Notifications(Record):
    sinks: dict[Name, Sink] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ManifestModel(Record):
    version: Literal[1]
    system: Name
    description: str | None = None
    flags: Annotated[dict[Name, FlagSpec], Rule(min_length=1)]
    ladders: dict[Name, Ladder] = field(default_factory=dict)
    kill_switches: dict[Name, KillSwitch] = field(default_factory=dict)
    guardrails: dict[Name, Guardrail] = field(default_factory=dict)
    proofs: Proofs = field(default_factory=Proofs)
    profiles: str | None = None  # the folder of profile files, relative to the manifest
    constraints: list[Constraint] = field(default_factory=list)
    priority: list[str] = field(default_factory=list)
    rollback: RollbackSpec | None = None
    approvals: Approvals | None = None
    notifications: Notifications | None = None


# ---------------------------------------------------------------- resolved views


@dataclass(frozen=True)
class ResolvedStage:
    """A stage with the values it sets on each of the ladder's flags."""

    index: int
    name: str
    specs: dict[str, StageValue]
    require: tuple[str, ...] = ()

    def matches(self, values: dict[str, Any]) -> bool:
        return all(spec.matches(values[flag]) for flag, spec in self.specs.items())

    def describe(self) -> str:
        if len(self.specs) == 1:
            return next(iter(self.specs.values())).describe()
        return ", ".join(f"{f}={s.describe()}" for f, s in self.specs.items())


@dataclass(frozen=True)
class ResolvedLadder:
    name: str
    flags: tuple[str, ...]
    stages: tuple[ResolvedStage, ...]
    require: tuple[str, ...]
    bake: dict[str, timedelta]
    subjects: str | None = None
    analysis: dict[str, Analysis] | None = None  # by stage; None: the ladder declares none

    def analysis_of(self, stage: str) -> Analysis:
        if self.analysis is None:
            raise UsageError(
                f"ladder {self.name} says nothing of how a runner advances it",
                f"give it analysis: (guardrails, interval, passes, failures) in the manifest: "
                f"ladders.{self.name}.analysis",
            )
        return self.analysis[stage]

    def stage(self, name: str) -> ResolvedStage:
        for stage in self.stages:
            if stage.name == name:
                return stage
        names = ", ".join(s.name for s in self.stages)
        raise UsageError(f"ladder {self.name} has no stage {name!r}", f"stages: {names}")

    def position(self, values: dict[str, Any]) -> ResolvedStage | None:
        """The highest stage the values match (``None``: off the ladder)."""
        found = None
        for stage in self.stages:
            if stage.matches(values):
                found = stage
        return found


@dataclass(frozen=True)
class Manifest:
    path: str
    model: ManifestModel
    ladders: dict[str, ResolvedLadder]
    switches: dict[str, dict[str, KillSetting]]  # switch → flattened (includes expanded)
    source: str = field(default="", repr=False, compare=False)  # the text it was read from (published as is)

    @property
    def system(self) -> str:
        return self.model.system

    @property
    def flags(self) -> dict[str, AnyFlag]:
        return self.model.flags

    def flag(self, name: str) -> AnyFlag:
        try:
            return self.model.flags[name]
        except KeyError:
            raise UsageError(
                f"unknown flag {name!r} in {self.path}",
                f"flags: {', '.join(self.model.flags)}",
            ) from None

    def ladder(self, name: str) -> ResolvedLadder:
        try:
            return self.ladders[name]
        except KeyError:
            known = ", ".join(self.ladders) or "(none)"
            raise UsageError(f"unknown ladder {name!r} in {self.path}", f"ladders: {known}") from None

    def switch(self, name: str) -> KillSwitch:
        try:
            return self.model.kill_switches[name]
        except KeyError:
            known = ", ".join(self.model.kill_switches) or "(none)"
            raise UsageError(
                f"unknown kill switch {name!r} in {self.path}", f"kill switches: {known}"
            ) from None

    def ladders_of(self, flag: str) -> list[ResolvedLadder]:
        """The ladders that move this flag, in the manifest's order."""
        return list(self._ladders_by_flag.get(flag, ()))

    @cached_property
    def _ladders_by_flag(self) -> dict[str, tuple[ResolvedLadder, ...]]:
        # Indexed once: a command over every flag asks for each (status at 10,000 flags).
        found: dict[str, list[ResolvedLadder]] = {}
        for ladder in self.ladders.values():
            for flag in ladder.flags:
                found.setdefault(flag, []).append(ladder)
        return {flag: tuple(ladders) for flag, ladders in found.items()}


# ---------------------------------------------------------------- loading


def load_manifest(path: str | Path, cache: ManifestCache | None = None) -> Manifest:
    """Read, parse and validate a manifest file; raise ManifestError on any problem.

    With a cache, the same text validated before is loaded back from it instead (see
    ``flagctl.model.cache``), and a newly validated one is kept there."""
    from flagctl.model.yamlio import read_utf8

    shown = str(path)
    try:
        text = read_utf8(Path(path))
    except FileNotFoundError:
        raise ManifestError(
            shown,
            ["file not found"],
            "pass --manifest PATH, set FLAGCTL_MANIFEST, or run from the folder with flagctl.yaml",
        ) from None
    except OSError as exc:
        raise ManifestError(shown, [f"cannot read: {exc.strerror}"]) from None
    cached: Manifest | None = cache.get(text, shown) if cache is not None else None
    if cached is not None:
        return cached
    manifest = parse_manifest(text, shown)
    if cache is not None:
        cache.put(text, manifest)
    return manifest


def parse_manifest(text: str, path: str = "<manifest>") -> Manifest:
    from flagctl.model.yamlio import load_yaml

    data = load_yaml(text, path)
    if not isinstance(data, dict):
        raise ManifestError(path, ["the top level must be a mapping (version, system, flags, …)"])
    try:
        model = validate(ManifestModel, data)
    except Invalid as exc:
        raise ManifestError(path, [_describe(err) for err in exc.errors]) from None
    problems = list(_check_references(model))
    if problems:
        raise ManifestError(path, problems)
    return Manifest(
        path=path,
        model=model,
        ladders={name: _resolve_ladder(model, name, ladder) for name, ladder in model.ladders.items()},
        switches={name: _flatten_switch(model, name) for name in model.kill_switches},
        source=text,
    )


FLAG_TYPES = ("rollout", "bool", "int", "float", "enum", "list")


def _describe(err: Any) -> str:
    loc = list(err["loc"])
    if len(loc) > 2 and loc[0] == "flags" and loc[2] in FLAG_TYPES:
        del loc[2]  # the union's tag: the user wrote flags.NAME.KEY
    where = ".".join(str(part) for part in loc) or "(top level)"
    kind = err["type"]
    if kind in ("extra_forbidden", "unexpected_keyword_argument"):
        return f"{where}: unknown key"
    if kind == "missing":
        return f"{where}: required key is missing"
    if kind == "literal_error":
        return f"{where}: {err['msg'].lower()}"
    got = err.get("input")
    shown = f" (got {got!r})" if not isinstance(got, dict | list) else ""
    return f"{where}: {err['msg']}{shown}"


def _check_references(model: ManifestModel) -> list[str]:
    problems: list[str] = []
    bound_keys: dict[str, tuple[str, ...]] = {}
    for name, flag in model.flags.items():
        where = f"flags.{name}"
        problems.extend(_check_flag_values(flag, where))
        if flag.table is None:
            if flag.key is not None or flag.columns is not None:
                problems.append(f"{where}: key and columns need table (the bound table's name)")
            continue
        if flag.scopes:
            problems.append(
                f"{where}.scopes: a bound flag has only the global scope (its table has no scope)"
            )
        if not re.match(r"^[A-Za-z_][\w$]*(\.[A-Za-z_][\w$]*)?$", flag.table):
            problems.append(f"{where}.table: expected table or schema.table, got {flag.table!r}")
        if not flag.key:
            problems.append(f"{where}.key: required for a bound flag, e.g. {{feature_name: {name}}}")
        wanted = ", ".join(f"{c}: COLUMN" for c in flag.value_columns)
        if flag.columns is None:
            problems.append(f"{where}.columns: required for a bound {flag.type} flag: {{{wanted}}}")
        else:
            allowed = set(flag.value_columns) | set(flag.optional_columns)
            for column in flag.columns:
                if column not in allowed:
                    problems.append(f"{where}.columns.{column}: unknown; a {flag.type} flag has {{{wanted}}}")
            for column in flag.value_columns:
                if column not in flag.columns:
                    problems.append(f"{where}.columns.{column}: required key is missing")
        if flag.key:
            cols = tuple(sorted(flag.key))
            first = bound_keys.setdefault(flag.table, cols)
            if first != cols:
                problems.append(
                    f"{where}.key: every flag bound to {flag.table} must use the same key columns "
                    f"({', '.join(first)})"
                )
    for name, ladder in model.ladders.items():
        problems.extend(_check_ladder(model, name, ladder))
    for name, switch in model.kill_switches.items():
        where = f"kill_switches.{name}"
        for flag_name, raw in switch.set.items():
            if flag_name not in model.flags:
                problems.append(f"{where}.set.{flag_name}: unknown flag")
                continue
            try:
                kill_setting(model.flags[flag_name], raw)
            except ValueError as exc:
                problems.append(f"{where}.set.{flag_name}: {exc}")
        for other in switch.includes:
            if other not in model.kill_switches:
                problems.append(f"{where}.includes: unknown kill switch {other!r}")
            elif model.kill_switches[other].level >= switch.level:
                problems.append(
                    f"{where}.includes: {other} has level {model.kill_switches[other].level}; "
                    f"a switch may only include lower levels than its own ({switch.level})"
                )
        if not switch.set and not switch.includes:
            problems.append(f"{where}: sets nothing; give set: or includes:")
    problems.extend(check_constraints(model.constraints, model.priority, model.flags))
    problems.extend(_check_rollback(model))
    if model.approvals is not None:
        try:
            if parse_duration(model.approvals.expire).total_seconds() <= 0:
                problems.append("approvals.expire: must be more than 0s")
        except ValueError as exc:
            problems.append(f"approvals.expire: {exc}")
    for name, guard in model.guardrails.items():
        problems.extend(_check_source(name, guard))
        if guard.max is None and guard.min is None:
            problems.append(f"guardrails.{name}: give a bound, max: or min:")
        try:
            if parse_duration(guard.timeout).total_seconds() <= 0:
                problems.append(
                    f"guardrails.{name}.timeout: must be more than 0s (a guardrail never runs unbounded)"
                )
        except ValueError as exc:
            problems.append(f"guardrails.{name}.timeout: {exc}")
    problems.extend(_check_notifications(model.notifications))
    return problems


def _check_notifications(notifications: Notifications | None) -> list[str]:
    """What a sink's shape cannot say: one URL, given or named; an http(s) URL with no
    password in it; the HMAC key named for a CloudEvents sink."""
    from urllib.parse import urlsplit

    problems: list[str] = []
    for name, sink in (notifications.sinks if notifications else {}).items():
        where = f"notifications.sinks.{name}"
        if (sink.url is None) == (sink.url_env is None):
            problems.append(f"{where}: give one of url: or url_env: (the environment variable holding it)")
        if sink.url is not None:
            parts = urlsplit(sink.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(f"{where}.url: expected an http:// or https:// URL, got {sink.url!r}")
            elif parts.password is not None:
                problems.append(
                    f"{where}.url: holds a password; the manifest is published: use url_env: for a secret URL"
                )
        if sink.kind == "cloudevents" and sink.secret_env is None:
            problems.append(
                f"{where}.secret_env: required for a cloudevents sink (the environment variable holding "
                "its HMAC key)"
            )
        if sink.events is not None and not sink.events:
            problems.append(f"{where}.events: empty; leave it out for the kind's default")
    return problems


def _check_source(name: str, guard: Guardrail) -> list[str]:
    """Exactly one of ``sql:`` or ``prometheus:``, and a Prometheus source that can be asked."""
    where = f"guardrails.{name}"
    if (guard.sql is None) == (guard.prometheus is None):
        both = "both" if guard.sql is not None else "neither"
        return [f"{where}: give exactly one of sql: or prometheus: (got {both})"]
    if guard.sql is not None:
        return [] if guard.sql.strip() else [f"{where}.sql: empty; give a read-only query"]
    assert guard.prometheus is not None
    problems = []
    source = guard.prometheus
    for key in ("query", "samples"):
        text = getattr(source, key)
        if text is not None and not text.strip():
            problems.append(f"{where}.prometheus.{key}: empty; give a PromQL expression")
    if guard.min_samples is not None and source.samples is None:
        problems.append(
            f"{where}.min_samples: a prometheus guardrail needs prometheus.samples: too, "
            f"a query whose value is the sample count"
        )
    if source.url is not None and not is_http_url(source.url):
        problems.append(
            f"{where}.prometheus.url: expected an http:// or https:// URL (e.g. http://prometheus:9090), "
            f"got {source.url!r}"
        )
    return problems


def is_http_url(text: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _check_rollback(manifest_model: ManifestModel) -> list[str]:
    spec = manifest_model.rollback
    if spec is None:
        return []
    problems = []
    for name in spec.guardrails or []:
        if name not in manifest_model.guardrails:
            problems.append(f"rollback.guardrails: unknown guardrail {name!r}")
    for i, action in enumerate(spec.actions):
        if action.step_back and action.step_back not in manifest_model.ladders:
            problems.append(f"rollback.actions.{i}.step_back: unknown ladder {action.step_back!r}")
        if action.kill and action.kill not in manifest_model.kill_switches:
            problems.append(f"rollback.actions.{i}.kill: unknown kill switch {action.kill!r}")
    try:
        parse_duration(spec.recovery)
    except ValueError as exc:
        problems.append(f"rollback.recovery: {exc}")
    return problems


def _check_flag_values(flag: AnyFlag, where: str) -> list[str]:
    problems = []
    low, high = getattr(flag, "min", None), getattr(flag, "max", None)
    if low is not None and high is not None and low > high:
        problems.append(f"{where}: min {low} is above max {high}")
    try:
        flag.coerce(flag.to_db(flag.default_value()))
    except ValueError as exc:
        problems.append(f"{where}.default: {exc}")
    return problems


def _check_ladder(model: ManifestModel, name: str, ladder: Ladder) -> list[str]:
    where = f"ladders.{name}"
    problems: list[str] = []
    if ladder.flag is not None and ladder.flag not in model.flags:
        problems.append(f"{where}.flag: unknown flag {ladder.flag!r}")
    elif ladder.flag is not None and not isinstance(model.flags[ladder.flag], RolloutFlag):
        problems.append(f"{where}.flag: {ladder.flag} is not a rollout flag; give each stage set: instead")
    seen: set[str] = set()
    for i, stage in enumerate(ladder.stages):
        at = f"{where}.stages.{i}"
        if stage.name in seen:
            problems.append(f"{at}.name: duplicate stage {stage.name!r}")
        seen.add(stage.name)
        short = stage.enabled is not None or stage.percent is not None or stage.internal is not None
        if short and stage.set is not None:
            problems.append(f"{at}: give either enabled/percent (for flag:) or set:, not both")
        elif short:
            if ladder.flag is None:
                problems.append(f"{at}: enabled/percent need the ladder's flag: key")
            if stage.enabled is None or stage.percent is None:
                problems.append(f"{at}: a stage needs both enabled and percent")
        elif stage.set is None:
            problems.append(f"{at}: a stage needs enabled and percent (or set:)")
        for flag, raw in (stage.set or {}).items():
            if flag not in model.flags:
                problems.append(f"{at}.set.{flag}: unknown flag")
                continue
            try:
                stage_value(model.flags[flag], raw)
            except ValueError as exc:
                problems.append(f"{at}.set.{flag}: {exc}")
        pct = stage.percent
        if isinstance(pct, tuple) and pct[0] > pct[1]:
            problems.append(f"{at}.percent: range [{pct[0]}, {pct[1]}] must be [low, high]")
    for stage_name, text in ladder.bake.items():
        if stage_name not in seen:
            problems.append(f"{where}.bake.{stage_name}: unknown stage")
        try:
            parse_duration(text)
        except ValueError as exc:
            problems.append(f"{where}.bake.{stage_name}: {exc}")
    for guard in ladder.require:
        if guard not in model.guardrails:
            problems.append(f"{where}.require: unknown guardrail {guard!r}")
    for i, stage in enumerate(ladder.stages):
        for guard in stage.require:
            if guard not in model.guardrails:
                problems.append(f"{where}.stages.{i}.require: unknown guardrail {guard!r}")
    specs = [(f"{where}.analysis", ladder.analysis)]
    specs += [(f"{where}.stages.{i}.analysis", stage.analysis) for i, stage in enumerate(ladder.stages)]
    for at, spec in specs:
        if spec is None:
            continue
        if at != f"{where}.analysis" and ladder.analysis is None:
            problems.append(
                f"{at}: a stage's analysis overrides the ladder's: give ladders.NAME.analysis too"
            )
        for guard in spec.guardrails or []:
            if guard not in model.guardrails:
                problems.append(f"{at}.guardrails: unknown guardrail {guard!r}")
        if spec.interval is not None:
            try:
                if parse_duration(spec.interval) <= timedelta(0):
                    problems.append(f"{at}.interval: must be more than 0s")
            except ValueError as exc:
                problems.append(f"{at}.interval: {exc}")
    if ladder.analysis is not None and not (ladder.analysis.guardrails or ladder.require):
        problems.append(
            f"{where}.analysis.guardrails: name the guardrails to analyse (or give the ladder require:)"
        )
    return problems


def _resolve_analysis(ladder: Ladder) -> dict[str, Analysis] | None:
    if ladder.analysis is None:
        return None
    resolved = {}
    for stage in ladder.stages:
        merged: dict[str, Any] = {"guardrails": list(ladder.require), **ANALYSIS_DEFAULTS}
        for spec in (ladder.analysis, stage.analysis):
            if spec is not None:
                merged.update({k: v for k, v in vars(spec).items() if v is not None})
        resolved[stage.name] = Analysis(
            guardrails=tuple(dict.fromkeys(merged["guardrails"])),
            interval=parse_duration(merged["interval"]),
            passes=merged["passes"],
            failures=merged["failures"],
        )
    return resolved


def _resolve_ladder(model: ManifestModel, name: str, ladder: Ladder) -> ResolvedLadder:
    stages = []
    for index, stage in enumerate(ladder.stages):
        if stage.set is not None:
            specs = {f: stage_value(model.flags[f], raw) for f, raw in stage.set.items()}
        else:
            assert ladder.flag is not None
            raw = {"enabled": stage.enabled, "percent": stage.percent, "internal": bool(stage.internal)}
            specs = {ladder.flag: stage_value(model.flags[ladder.flag], raw)}
        stages.append(ResolvedStage(index=index, name=stage.name, specs=specs, require=tuple(stage.require)))
    flags: list[str] = []
    for resolved in stages:
        flags.extend(f for f in resolved.specs if f not in flags)
    return ResolvedLadder(
        name=name,
        flags=tuple(flags),
        stages=tuple(stages),
        require=tuple(ladder.require),
        bake={stage: parse_duration(text) for stage, text in ladder.bake.items()},
        subjects=ladder.subjects,
        analysis=_resolve_analysis(ladder),
    )


def _flatten_switch(model: ManifestModel, name: str) -> dict[str, KillSetting]:
    """A switch's own settings over those of everything it includes, lowest level first."""
    switch = model.kill_switches[name]
    merged: dict[str, KillSetting] = {}
    for included in sorted(switch.includes, key=lambda n: model.kill_switches[n].level):
        merged.update(_flatten_switch(model, included))
    for flag, raw in switch.set.items():
        own = kill_setting(model.flags[flag], raw)
        merged[flag] = own.combine(merged[flag]) if flag in merged else own
    return merged
