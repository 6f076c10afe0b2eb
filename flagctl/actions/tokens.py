"""Tokens for ``flagctl serve``: one per application of a system, created and revoked as
audited changes (``tokens.create`` / ``tokens.revoke``, which need flagctl_admin).

The secret is made here, once, when the action is built; the database receives only its
hash (``flagctl.store.tokens``). It is shown in the plan that was applied — never in a
preview or a dry run — so the person who creates it is the only one who ever sees it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flagctl.actions.base import Action, Plan
from flagctl.errors import UsageError
from flagctl.store import tokens as store

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest

NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


@dataclass
class TokenPlan(Plan):
    name: str = ""
    secret: str = field(default="", repr=False)  # only in a creation's plan

    def details(self) -> dict[str, Any]:
        return {"name": self.name, **({"token": self.secret} if self.secret else {})}

    def detail_lines(self) -> list[str]:
        if not self.secret:
            return []
        return [
            f"token: {self.secret}",
            "  shown once: flagctl keeps only its hash; give it to the application now",
        ]

    def fingerprint(self) -> tuple[Any, ...]:
        return (self.noop is None, self.name)  # the secret is only in the plan that is applied


def _valid(name: str) -> None:
    if not NAME.match(name):
        raise UsageError(
            f"{name!r} is not a token name",
            "name it after the application: lower-case letters, digits, '_', '.', '-' (up to 63)",
        )


@dataclass
class TokenCreate(Action[TokenPlan]):
    manifest: Manifest
    application: str
    secret: str = field(default_factory=store.new_secret, repr=False)

    @property
    def name(self) -> str:
        return "tokens.create"

    def honours_freezes(self) -> bool:
        return False  # it changes no flag

    def validate(self) -> None:
        _valid(self.application)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> TokenPlan:
        system = self.manifest.system
        if any(t.name == self.application for t in store.listed(conn, system)):
            raise UsageError(
                f"{self.application} already has a live token in {system}",
                f"revoke it first (flagctl tokens revoke {self.application}), then create a new one",
            )
        # The secret is in the plan applied (locked) only: never in a preview or a dry run,
        # where it would look like a token that works.
        return TokenPlan(
            self.name, f"create a flagctl serve token for {self.application} in {system}",
            name=self.application, secret=self.secret if locked else "",
        )  # fmt: skip

    def apply(self, conn: psycopg.Connection[Any], plan: TokenPlan) -> None:
        store.create(conn, self.manifest.system, plan.name, store.digest(plan.secret))


@dataclass
class TokenRevoke(Action[TokenPlan]):
    manifest: Manifest
    application: str

    @property
    def name(self) -> str:
        return "tokens.revoke"

    def honours_freezes(self) -> bool:
        return False  # it changes no flag, and an exposed token must go at once

    def validate(self) -> None:
        _valid(self.application)

    def plan(self, conn: psycopg.Connection[Any], locked: bool) -> TokenPlan:
        system = self.manifest.system
        summary = f"revoke the flagctl serve token of {self.application} in {system}"
        if not any(t.name == self.application for t in store.listed(conn, system)):
            return TokenPlan(
                self.name, summary, name=self.application, noop=f"{self.application} has no live token"
            )
        return TokenPlan(self.name, summary, name=self.application)

    def apply(self, conn: psycopg.Connection[Any], plan: TokenPlan) -> None:
        store.revoke(conn, self.manifest.system, plan.name)
