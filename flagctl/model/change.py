"""A change of one flag at one scope: what every plan is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flagctl.model.flagtypes import change_text, effective_value, to_json


@dataclass(frozen=True)
class Change:
    """One flag at one scope, from ``before`` to ``after`` (None: no override there)."""

    flag: str
    scope: str
    before: Any
    after: Any

    def describe(self) -> str:
        return change_text(self.before, self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "scope": self.scope,
            "before": to_json(self.before),
            "after": to_json(self.after),
            "effective_before": effective_value(self.before),
            "effective_after": effective_value(self.after),
        }
