"""A change of one flag at one scope: what every plan is made of."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flagctl.model.flagtypes import change_text, describe, effective_value, to_json
from flagctl.model.scopes import GLOBAL


@dataclass(frozen=True)
class Change:
    """One flag at one scope, from ``before`` to ``after`` (None: no override there)."""

    flag: str
    scope: str
    before: Any
    after: Any

    @property
    def label(self) -> str:
        """The flag, and its scope unless global: ``recs_widget at tenant:acme``."""
        return self.flag if self.scope == GLOBAL else f"{self.flag} at {self.scope}"

    def describe(self) -> str:
        """What changes: ``true → false``; a global row removed or created is the flag's
        ``default``, a scoped one ``(no override)``."""
        if self.before is not None and self.after is not None:
            return change_text(self.before, self.after)
        absent = "default" if self.scope == GLOBAL else "(no override)"
        before = absent if self.before is None else describe(self.before)
        after = absent if self.after is None else describe(self.after)
        return f"{before} → {after}"

    def to_json(self) -> dict[str, Any]:
        return {
            "flag": self.flag,
            "scope": self.scope,
            "before": to_json(self.before),
            "after": to_json(self.after),
            "effective_before": effective_value(self.before),
            "effective_after": effective_value(self.after),
        }
