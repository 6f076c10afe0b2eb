"""Exempt: allow or deny one scope a flag (the canary plan's publisher exemptions), or
remove the exemption. Audited by the database trigger like every other change; the
evaluation order is in ``flagctl.rules.evaluation``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan
from flagctl.errors import UsageError
from flagctl.model.change import Change
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL, check_scope
from flagctl.store.exemptions import exemption, write_exemption
from flagctl.store.flags import FlagStore

if TYPE_CHECKING:
    import psycopg


@dataclass
class ExemptPlan(Plan):
    note: str | None = None


@dataclass
class Exempt(Action[ExemptPlan]):
    """Give ``scope`` an ``effect`` (allow / deny) on ``flag``; ``effect=None`` removes it."""

    manifest: Manifest
    flag: str
    scope: str
    effect: str | None
    note: str | None = None

    @property
    def name(self) -> str:
        return "exempt"

    def honours_freezes(self) -> bool:
        return False  # exemptions are not flag values

    def validate(self) -> None:
        if self.scope == GLOBAL:
            raise UsageError("an exemption is for one scope (KIND:VALUE), not global")
        check_scope(self.manifest, self.flag, self.scope)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> ExemptPlan:
        self.validate()
        flag, scope, effect, note = self.flag, self.scope, self.effect, self.note
        if locked:
            FlagStore(conn, self.manifest).lock([flag])  # exemptions of a flag change under its lock
        found = exemption(conn, self.manifest, flag, scope)
        current = found[0] if found else None
        summary = f"exemption of {scope} from {flag}: {current or 'none'} → {effect or 'none'}"
        if current == effect and (effect is None or found is None or found[1] == note):
            return ExemptPlan(
                "exempt", summary, noop=f"{scope} already has {'no' if effect is None else effect} exemption"
            )
        return ExemptPlan(
            "exempt", summary, changes=[Change(flag, scope, current, effect)],
            checks=["order: kill > stage off > deny > allow > internal > bucket; allow never reopens an off stage"],
            note=note,
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: ExemptPlan) -> None:
        change = plan.changes[0]
        write_exemption(conn, self.manifest, change.flag, change.scope, change.after, plan.note)
