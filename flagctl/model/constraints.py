"""Cross-flag constraints, checked against the state a change would produce.

Kinds (manifest ``constraints:``, each with a ``name``):
- ``range:    {flag: F, min: A, max: B}``        a number (or a rollout's percent) within bounds
- ``one_of:   {flag: F, values: [...]}``          an enum/int/string restricted further
- ``exclusive: [F, G, ...]``                       at most one of these bools is true
- ``implies:  {if: {F: v, ...}, then: {G: w, ...}}`` when every ``if`` holds, every ``then`` must
- ``requires: {flag: F, when: {G: v}}`` is not a kind: write it as ``implies``.

and ``priority: [F, ...]``: bool flags that, when true, override every other flag of the
system (the recommender's global ``kill_switch``); ``status`` and ``eval`` show it.

The state checked is the global values with the change applied, and, for every scope that
has an override of a constrained flag, that scope's values (overrides over global).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from flagctl.model.flagtypes import AnyFlag, describe
from flagctl.model.shape import Record, Rule
from flagctl.model.values import Rollout


def _without_underscore(name: str) -> str:
    return name.rstrip("_")


@dataclass(frozen=True, kw_only=True)
class RangeRule(Record):
    flag: str
    min: float | None = None
    max: float | None = None


@dataclass(frozen=True, kw_only=True)
class OneOfRule(Record):
    flag: str
    values: Annotated[list[Any], Rule(min_length=1)]


@dataclass(frozen=True, kw_only=True)
class ImpliesRule(Record):
    # `if` is a keyword: the field is if_, its key in YAML "if"
    __pydantic_config__: ClassVar[dict[str, Any]] = {
        "extra": "forbid",
        "alias_generator": _without_underscore,
    }

    if_: dict[str, Any]
    then: dict[str, Any]


@dataclass(frozen=True, kw_only=True)
class Constraint(Record):
    name: str
    description: str | None = None
    range: RangeRule | None = None
    one_of: OneOfRule | None = None
    exclusive: list[str] | None = None
    implies: ImpliesRule | None = None

    def __post_init__(self) -> None:
        kinds = [k for k in ("range", "one_of", "exclusive", "implies") if getattr(self, k) is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of range, one_of, exclusive, implies")

    def flags(self) -> list[str]:
        if self.range:
            return [self.range.flag]
        if self.one_of:
            return [self.one_of.flag]
        if self.exclusive:
            return list(self.exclusive)
        assert self.implies is not None
        return [*self.implies.if_, *self.implies.then]

    def violation(self, state: dict[str, Any]) -> str | None:
        """Why this state breaks the rule (None: it holds)."""
        if self.range:
            value = _number(state[self.range.flag])
            low, high = self.range.min, self.range.max
            if (low is not None and value < low) or (high is not None and value > high):
                bounds = f"{'' if low is None else describe(low)}..{'' if high is None else describe(high)}"
                return f"{self.range.flag} = {describe(value)} is outside {bounds}"
            return None
        if self.one_of:
            value = state[self.one_of.flag]
            if value not in self.one_of.values:
                allowed = ", ".join(describe(v) for v in self.one_of.values)
                return f"{self.one_of.flag} = {describe(value)} is not one of {allowed}"
            return None
        if self.exclusive:
            on = [f for f in self.exclusive if _truthy(state[f])]
            if len(on) > 1:
                return f"{' and '.join(on)} are all true; at most one may be"
            return None
        assert self.implies is not None
        if all(_equal(state[f], v) for f, v in self.implies.if_.items()):
            wrong = [f for f, v in self.implies.then.items() if not _equal(state[f], v)]
            if wrong:
                cond = ", ".join(f"{f} = {describe(v)}" for f, v in self.implies.if_.items())
                need = ", ".join(
                    f"{f} = {describe(self.implies.then[f])} (is {describe(state[f])})" for f in wrong
                )
                return f"when {cond}, {need}"
        return None


def _number(value: Any) -> float:
    return float(value.percent if isinstance(value, Rollout) else value)


def _truthy(value: Any) -> bool:
    return value.active if isinstance(value, Rollout) else bool(value)


def _equal(value: Any, expected: Any) -> bool:
    if isinstance(value, Rollout):
        return bool(_truthy(value) == expected) if isinstance(expected, bool) else value.percent == expected
    return bool(value == expected)


def check_references(
    constraints: list[Constraint], priority: list[str], flags: Mapping[str, AnyFlag]
) -> list[str]:
    """Manifest-time problems: unknown flags, and literals that do not fit the flag's type."""
    problems = []
    for i, rule in enumerate(constraints):
        where = f"constraints.{i} ({rule.name})"
        for flag in rule.flags():
            if flag not in flags:
                problems.append(f"{where}: unknown flag {flag!r}")
        if rule.exclusive:
            for flag in rule.exclusive:
                spec = flags.get(flag)
                if spec is not None and spec.type not in ("bool", "rollout"):
                    problems.append(f"{where}: exclusive needs bool or rollout flags; {flag} is {spec.type}")
        if rule.implies:
            for flag, literal in [*rule.implies.if_.items(), *rule.implies.then.items()]:
                spec = flags.get(flag)
                if spec is None or spec.type == "rollout":
                    continue
                try:
                    spec.coerce(literal)
                except ValueError as exc:
                    problems.append(f"{where}: {flag}: {exc}")
    for flag in priority:
        spec = flags.get(flag)
        if spec is None:
            problems.append(f"priority: unknown flag {flag!r}")
        elif spec.type != "bool":
            problems.append(f"priority: {flag} must be a bool flag (true overrides everything)")
    return problems
