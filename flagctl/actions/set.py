"""SetFlag: set one typed flag, globally or at a scope.

``set`` is for direct changes. It never overrides an engaged kill switch, and on a flag
that a ladder controls it only lowers exposure unless ``--force`` (the ladder's bake
and guardrails are what ``stage set`` is for).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from flagctl.actions.base import Plan, Requestable
from flagctl.actions.stage import check_guardrails, record_verdicts, refuser
from flagctl.errors import PolicyRefused
from flagctl.model.change import Change
from flagctl.model.flagtypes import describe, effective_text
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.rules.kills import holding
from flagctl.rules.ladder import needs_approval, outside_ladder
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged

if TYPE_CHECKING:
    import psycopg

    from flagctl.verify.guardrails import GuardrailResult


@dataclass
class SetFlag(Requestable[Plan]):
    """Set ``flag`` to ``value`` at ``scope`` (``value=None`` at a scope: remove the override)."""

    manifest: Manifest
    flag: str
    value: Any
    scope: str = GLOBAL
    force: bool = False
    # Guardrail results of the unlocked plan, reused by the locked one (see slow_checks).
    evidence: dict[str, GuardrailResult] = field(default_factory=dict, repr=False, compare=False)
    slow_checks: ClassVar[bool] = True

    @property
    def name(self) -> str:
        return "set"

    def validate(self) -> None:
        spec = self.manifest.flag(self.flag)
        check_scope(self.manifest, self.flag, self.scope)
        if self.value is not None:
            spec.coerce(spec.to_db(self.value))  # the type's own check, before anything is read

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> Plan:
        self.validate()
        name, scope, value = self.flag, self.scope, self.value
        snapshot = FlagStore(conn, self.manifest).for_change([name], locked=locked)
        current = snapshot.at(name, scope)
        summary = f"set {name} ({scope}): {effective_text(current)} → {effective_text(value)}"
        holders = [e.switch for e in holding(list_engaged(conn, self.manifest), name, scope)]
        if holders:
            raise PolicyRefused(
                f"kill switch {', '.join(holders)} holds {name}; the kill beats every other setting",
                f"release it first: flagctl release {holders[0]} --reason …",
                system=self.manifest.system,
                target=f"flag:{name}",
            )
        if current == value:
            shown = "has no override" if value is None else f"is already {describe(value)}"
            return Plan("set", summary, noop=f"{name} ({scope}) {shown}")
        changes = [Change(name, scope, current, value)]
        forced, checks = outside_ladder(self.manifest, changes, self.force, f"flag:{name}")
        if forced:  # --force skips a ladder's stages and bake, never its guardrails
            for ladder in self.manifest.ladders_of(name):
                check_guardrails(
                    conn, self.manifest, ladder.require, checks, refuser(self.manifest, ladder), self.evidence
                )
        return Plan("set", summary, changes=changes, checks=checks, forced=forced, snapshot=snapshot)

    def apply(self, conn: psycopg.Connection[Any], plan: Plan) -> None:
        FlagStore(conn, self.manifest).write(plan.changes)
        for ladder in self.manifest.ladders_of(self.flag) if self.evidence else ():
            record_verdicts(conn, self.manifest, ladder.name, self.evidence)

    def approval(self, plan: Plan) -> str | None:
        return needs_approval(self.manifest, plan.changes, plan.forced)

    def request_spec(self, plan: Plan) -> dict[str, Any]:
        spec = self.manifest.flag(self.flag)
        value = None if self.value is None else spec.to_db(self.value)
        return {"kind": "set", "flag": self.flag, "value": value, "scope": self.scope, "force": self.force}
