"""Flag types: what a value is, how it is parsed, stored, compared and overridden.

Types: ``rollout`` (enabled + percent, optionally an internal audience), ``bool``, ``int``
and ``float`` (with min/max), ``enum`` (values), ``list`` (of strings). A flag is stored
in ``flagctl.flag_state`` (jsonb, scoped rows allowed) or bound to an application table
by ``table``, ``key`` and ``columns`` (rollout: enabled, percent[, internal]; others: value).

Stage values and kill-switch settings are per type too:
- a rollout stage may give a percent range; a kill may set enabled and/or percent, and
  engaged kills combine strictly (enabled is AND-ed, percent is the minimum);
- any other type's stage or kill sets a literal; among engaged kills the highest level wins.
"""

from __future__ import annotations

import math
import re
import unicodedata
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, ClassVar, Literal

from flagctl.model.shape import Invalid, Name, Percent, Record, Rule, StrictBool, StrictInt, validate
from flagctl.model.values import Rollout, parse_rollout

# ---------------------------------------------------------------- flag specs


@dataclass(frozen=True, kw_only=True)
class FlagBase(Record, ABC):
    description: str | None = None
    # Lifecycle (ORCA "Documentation": purpose, owner, created, expected removal, plans).
    owner: str | None = None
    created: date | None = None
    remove_by: date | None = None
    rollout_plan: str | None = None
    rollback_criteria: str | None = None
    scopes: list[Name] = field(default_factory=list)  # scope kinds accepted besides global
    table: str | None = None
    key: dict[str, str | int] | None = None
    columns: dict[str, str] | None = None
    # What an application's gate answers once it is stale (the database out of reach past
    # its staleness bound): "off" (the flag's off value) or "last" (the last value it read).
    when_stale: Literal["off", "last"] | None = None

    value_columns: ClassVar[tuple[str, ...]] = ("value",)
    optional_columns: ClassVar[tuple[str, ...]] = ()
    # The default of ``when_stale``: a configuration value keeps its last known value (its
    # default may be no safer than what was set, e.g. a payment provider); rollouts and
    # bools, which turn something on, fail closed.
    stale_default: ClassVar[Literal["off", "last"]] = "last"

    @property
    def keeps_last_when_stale(self) -> bool:
        return (self.when_stale or self.stale_default) == "last"

    @property
    def bound(self) -> bool:
        return self.table is not None

    # Every type implements these three.
    @abstractmethod
    def coerce(self, raw: Any) -> Any:
        """A value from YAML/JSON, checked against the type; ValueError if it does not fit."""

    @abstractmethod
    def parse(self, text: str) -> Any:
        """A value as typed on the command line."""

    @abstractmethod
    def default_value(self) -> Any:
        """The value of a flag that has never been set."""

    def exposure(self, value: Any) -> float | None:
        """An order on values by how many subjects see the feature (None: no order)."""
        return None

    # Storage, shared.
    def to_db(self, value: Any) -> Any:
        return value.to_json() if isinstance(value, Rollout) else value

    def from_db(self, data: Any) -> Any:
        return self.coerce(data)

    def to_columns(self, value: Any) -> dict[str, Any]:
        assert self.columns is not None
        return {self.columns["value"]: value}

    def from_columns(self, row: dict[str, Any]) -> Any:
        return self.coerce(row["value"])


@dataclass(frozen=True, kw_only=True)
class RolloutValueSpec(Record):
    enabled: StrictBool
    percent: Percent
    internal: StrictBool = False


@dataclass(frozen=True, kw_only=True)
class RolloutFlag(FlagBase):
    type: Literal["rollout"]
    salt: str | None = None
    hash_version: Literal[1] = 1
    default: RolloutValueSpec | None = None

    value_columns: ClassVar[tuple[str, ...]] = ("enabled", "percent")
    optional_columns: ClassVar[tuple[str, ...]] = ("internal",)
    stale_default: ClassVar[Literal["off", "last"]] = "off"

    def coerce(self, raw: Any) -> Rollout:
        try:
            spec = validate(RolloutValueSpec, raw)
        except Invalid as exc:
            raise ValueError(f"not a rollout value {raw!r}: {exc}") from None
        return Rollout(spec.enabled, spec.percent, spec.internal)

    def from_db(self, data: Any) -> Rollout:
        return Rollout.from_json(data)

    def parse(self, text: str) -> Rollout:
        return parse_rollout(text)

    def default_value(self) -> Rollout:
        d = self.default
        return Rollout(False, 0) if d is None else Rollout(d.enabled, d.percent, d.internal)

    def exposure(self, value: Any) -> float:
        return float(value.exposure) + (0.5 if value.enabled and value.internal else 0.0)

    def to_columns(self, value: Any) -> dict[str, Any]:
        assert self.columns is not None
        out = {self.columns["enabled"]: value.enabled, self.columns["percent"]: value.percent}
        if "internal" in self.columns:
            out[self.columns["internal"]] = value.internal
        return out

    def from_columns(self, row: dict[str, Any]) -> Rollout:
        return Rollout(bool(row["enabled"]), int(row["percent"]), bool(row.get("internal") or False))

    def salt_for(self, name: str) -> str:
        return self.salt if self.salt is not None else name


_TRUE = {"on", "true", "yes", "1", "enabled"}
_FALSE = {"off", "false", "no", "0", "disabled"}


@dataclass(frozen=True, kw_only=True)
class BoolFlag(FlagBase):
    type: Literal["bool"]
    default: StrictBool = False
    stale_default: ClassVar[Literal["off", "last"]] = "off"

    def coerce(self, raw: Any) -> bool:
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw

    def parse(self, text: str) -> bool:
        value = text.strip().lower()
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        raise ValueError(f"not a bool: {text!r}; use on/off or true/false")

    def default_value(self) -> bool:
        return self.default

    def exposure(self, value: Any) -> float:
        return 100.0 if value else 0.0


@dataclass(frozen=True, kw_only=True)
class _Ranged(FlagBase):
    min: float | None = None
    max: float | None = None

    def _check_range(self, value: float) -> None:
        if self.min is not None and value < self.min:
            raise ValueError(f"{value} is below the minimum {fmt_number(self.min)}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{value} is above the maximum {fmt_number(self.max)}")


@dataclass(frozen=True, kw_only=True)
class IntFlag(_Ranged):
    type: Literal["int"]
    default: StrictInt = 0

    def coerce(self, raw: Any) -> int:
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise ValueError(f"expected a whole number, got {raw!r}")
        self._check_range(raw)
        return raw

    def parse(self, text: str) -> int:
        try:
            return self.coerce(int(text.strip()))
        except ValueError as exc:
            if "expected" in str(exc) or "invalid literal" in str(exc):
                raise ValueError(f"not a whole number: {text!r}") from None
            raise

    def default_value(self) -> int:
        return self.default


@dataclass(frozen=True, kw_only=True)
class FloatFlag(_Ranged):
    type: Literal["float"]
    default: float = 0.0

    def coerce(self, raw: Any) -> float:
        if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
            raise ValueError(f"expected a number, got {raw!r}")
        self._check_range(float(raw))
        return float(raw)

    def parse(self, text: str) -> float:
        try:
            number = float(text.strip())
        except ValueError:
            raise ValueError(f"not a number: {text!r}") from None
        return self.coerce(number)

    def default_value(self) -> float:
        return float(self.default)


@dataclass(frozen=True, kw_only=True)
class EnumFlag(FlagBase):
    type: Literal["enum"]
    values: Annotated[list[str], Rule(min_length=1)]
    default: str | None = None

    def coerce(self, raw: Any) -> str:
        if raw not in self.values:
            raise ValueError(f"{raw!r} is not one of {', '.join(self.values)}")
        return str(raw)

    def parse(self, text: str) -> str:
        return self.coerce(text.strip())

    def default_value(self) -> str:
        return self.default if self.default is not None else self.values[0]


MAX_LIST_ITEMS = 1000
MAX_ITEM_LENGTH = 200


@dataclass(frozen=True, kw_only=True)
class ListFlag(FlagBase):
    type: Literal["list"]
    default: list[str] = field(default_factory=list)

    def coerce(self, raw: Any) -> list[str]:
        if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
            raise ValueError(f"expected a list of strings, got {raw!r}")
        return list(raw)

    def parse(self, text: str) -> list[str]:
        return self.accept([item.strip() for item in text.split(",") if item.strip()])

    def accept(self, items: list[str]) -> list[str]:
        """An operator's list (command line, profile): bounded, plain items. (A stored value
        is read as it is, so a kill never fails on what someone wrote by hand.)"""
        if len(items) > MAX_LIST_ITEMS:
            raise ValueError(f"{len(items)} items; at most {MAX_LIST_ITEMS}")
        for item in items:
            if len(item) > MAX_ITEM_LENGTH:
                raise ValueError(f"an item of {len(item)} characters; at most {MAX_ITEM_LENGTH}")
            if item != item.strip() or not item:
                raise ValueError(f"item {item!r} is empty or has leading or trailing whitespace")
            if any(unicodedata.category(c) in ("Cc", "Cf", "Cs") for c in item):
                raise ValueError(f"item {item!r} has a control character")
        return items

    def from_columns(self, row: dict[str, Any]) -> list[str]:
        return [] if row["value"] is None else self.coerce(list(row["value"]))  # a NULL array is empty

    def default_value(self) -> list[str]:
        return list(self.default)


FlagSpec = Annotated[
    RolloutFlag | BoolFlag | IntFlag | FloatFlag | EnumFlag | ListFlag, Rule(discriminator="type")
]
AnyFlag = RolloutFlag | BoolFlag | IntFlag | FloatFlag | EnumFlag | ListFlag


def fmt_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def describe(value: Any) -> str:
    if isinstance(value, Rollout):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return fmt_number(value)
    if isinstance(value, list):
        return "[" + ", ".join(value) + "]"
    if value is None:
        return "(unset)"
    return str(value)


def effective_text(value: Any) -> str:
    """What a value means for subjects, in a word or two."""
    if isinstance(value, Rollout):
        return value.effective()
    if isinstance(value, bool):
        return "on" if value else "off"
    if value is None:
        return "(no override)"
    return describe(value)


def to_json(value: Any) -> Any:
    return value.to_json() if isinstance(value, Rollout) else value


def effective_value(value: Any) -> Any:
    """A value as subjects see it, typed: a rollout's percent of subjects it is on for (0 when
    off or dark), any other type its value (None: no override)."""
    return value.exposure if isinstance(value, Rollout) else value


def change_text(before: Any, after: Any) -> str:
    """One line for a change: field by field for rollouts, a → b otherwise."""
    if isinstance(after, Rollout) and isinstance(before, Rollout):
        from flagctl.model.values import changed_fields

        return "; ".join(changed_fields(before, after))
    return f"{describe(before)} → {describe(after)}"


# ---------------------------------------------------------------- stage values


@dataclass(frozen=True, kw_only=True)
class RolloutStage(Record):
    """A rollout flag's values in a stage; ``percent`` may be a [low, high] range."""

    enabled: StrictBool
    percent: Percent | tuple[Percent, Percent]
    internal: StrictBool = False

    @property
    def low(self) -> int:
        return self.percent[0] if isinstance(self.percent, tuple) else self.percent

    @property
    def high(self) -> int:
        return self.percent[1] if isinstance(self.percent, tuple) else self.percent

    @property
    def is_range(self) -> bool:
        return isinstance(self.percent, tuple) and self.percent[0] != self.percent[1]

    @property
    def takes_percent(self) -> bool:
        return self.enabled

    def value(self, percent: int | None = None) -> Rollout:
        return Rollout(self.enabled, self.low if percent is None else percent, self.internal)

    def matches(self, value: Any) -> bool:
        target = self.value()
        if not target.active:
            return not value.active  # off and dark are one state: effectively off
        return bool(
            value.enabled and self.low <= value.percent <= self.high and value.internal == self.internal
        )

    def describe(self) -> str:
        if not self.enabled:
            return "off"
        audience = "internal" if self.internal else ""
        if self.is_range:
            share = f"{self.low}–{self.high}%"
        else:
            share = f"{self.low}%" if self.low else ("" if self.internal else "dark")
        return " + ".join(p for p in (audience, share) if p)


@dataclass(frozen=True)
class LiteralStage:
    """Any other type's value in a stage: exactly this value."""

    literal: Any
    is_range: ClassVar[bool] = False
    takes_percent: ClassVar[bool] = False
    low: ClassVar[int] = 0
    high: ClassVar[int] = 0

    def value(self, percent: int | None = None) -> Any:
        return self.literal

    def matches(self, value: Any) -> bool:
        matched: bool = value == self.literal
        return matched

    def describe(self) -> str:
        return describe(self.literal)


StageValue = RolloutStage | LiteralStage


def stage_value(flag: AnyFlag, raw: Any) -> StageValue:
    if isinstance(flag, RolloutFlag):
        try:
            stage = validate(RolloutStage, raw)
        except Invalid as exc:
            raise ValueError(str(exc)) from None
        return stage
    return LiteralStage(flag.coerce(raw))


# ---------------------------------------------------------------- kill settings


@dataclass(frozen=True, kw_only=True)
class RolloutKill(Record):
    """What a kill switch sets on a rollout flag: any of enabled, percent, internal.

    Engaged kills combine strictly whatever their order: enabled and internal are AND-ed,
    percent is the minimum."""

    enabled: StrictBool | None = None
    percent: Percent | None = None
    internal: StrictBool | None = None

    def overlay(self, current: Any) -> Rollout:
        return Rollout(
            current.enabled if self.enabled is None else current.enabled and self.enabled,
            current.percent if self.percent is None else min(current.percent, self.percent),
            current.internal if self.internal is None else current.internal and self.internal,
        )

    @classmethod
    def parse(cls, raw: Any) -> RolloutKill:
        """A setting from the manifest or as stored with an engaged switch. Checked here by
        hand, not by pydantic: a kill reads back the settings of every engaged switch, and
        must not pay for importing a validator to do it."""
        if not isinstance(raw, dict):
            raise ValueError(f"expected a mapping of enabled, percent and/or internal, got {raw!r}")
        for key in raw:
            if key not in ("enabled", "percent", "internal"):
                raise ValueError(f"{key}: unknown key")
        for key in ("enabled", "internal"):
            if not isinstance(raw.get(key), bool | None):
                raise ValueError(f"{key}: expected true or false, got {raw[key]!r}")
        percent = raw.get("percent")
        if percent is not None and (
            isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100
        ):
            raise ValueError(f"percent: expected a whole number from 0 to 100, got {percent!r}")
        return cls(enabled=raw.get("enabled"), percent=percent, internal=raw.get("internal"))

    def to_json(self) -> dict[str, Any]:
        given = {"enabled": self.enabled, "percent": self.percent, "internal": self.internal}
        return {key: value for key, value in given.items() if value is not None}

    def combine(self, lower: KillSetting) -> RolloutKill:
        """This setting together with an included (lower) switch's, strictly."""
        if not isinstance(lower, RolloutKill):
            return self
        return RolloutKill(
            enabled=_strict_and(self.enabled, lower.enabled),
            percent=lower.percent
            if self.percent is None
            else min(self.percent, lower.percent or self.percent),
            internal=_strict_and(self.internal, lower.internal),
        )


def _strict_and(a: bool | None, b: bool | None) -> bool | None:
    return b if a is None else a if b is None else a and b


@dataclass(frozen=True)
class LiteralKill:
    """Any other type's kill setting: this value (the highest engaged level wins)."""

    literal: Any

    def overlay(self, current: Any) -> Any:
        return self.literal

    def to_json(self) -> Any:
        return self.literal

    def combine(self, lower: KillSetting) -> LiteralKill:
        return self  # the including (higher-level) switch's value wins


KillSetting = RolloutKill | LiteralKill


def kill_setting(flag: AnyFlag, raw: Any) -> KillSetting:
    if isinstance(flag, RolloutFlag):
        setting = RolloutKill.parse(raw)
        if setting.enabled is None and setting.percent is None and setting.internal is None:
            raise ValueError("give enabled, percent and/or internal")
        return setting
    return LiteralKill(flag.coerce(raw))


# KIND:VALUE; the value has no whitespace or control characters (a scope with a trailing
# space or a newline would be "applied" and match nothing).
SCOPE = re.compile(r"\A(?P<kind>[a-z][a-z0-9_-]*):(?P<value>[^\s\x00-\x1f\x7f]+)\Z")
