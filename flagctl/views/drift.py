"""Drift: a controlled value that differs from the last value the audit trail recorded for it.

Every change made through PostgreSQL's normal paths is audited by a trigger, so the live
value of a flag always equals the after-image of its last audit row. When it does not,
someone changed it around the trigger — ``session_replication_role = replica``, a
disabled trigger — and the audit trail alone would never show it. ``status`` and
``audit verify`` report drift; a kill writes its values back regardless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.model.flagtypes import describe
from flagctl.model.manifest import Manifest
from flagctl.model.scopes import GLOBAL
from flagctl.store.audit import AuditRow, last_audited, value_from_row
from flagctl.store.flags import FlagStore, Snapshot

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class Drift:
    flag: str
    scope: str
    live: Any  # None: no stored row
    audited: Any  # None: the trail's last record has no row (deleted) or there is none
    seq: int | None  # the last audit row (None: never audited)

    def describe(self) -> str:
        live = "no row" if self.live is None else describe(self.live)
        if self.seq is None:
            return f"{self.flag} ({self.scope}) is {live}, but the audit trail has no record of it"
        audited = "no row" if self.audited is None else describe(self.audited)
        return (
            f"{self.flag} ({self.scope}) is {live}; the audit trail last recorded {audited} (row {self.seq})"
        )

    def to_json(self) -> dict[str, Any]:
        from flagctl.model.flagtypes import to_json

        return {
            "flag": self.flag,
            "scope": self.scope,
            "live": to_json(self.live),
            "audited": to_json(self.audited),
            "audit_seq": self.seq,
        }


def drift(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    snapshot: Snapshot | None = None,
    flags: list[str] | None = None,
    before_txid: int | None = None,
) -> list[Drift]:
    """Every flag and scope whose live value differs from its last audited after-image.
    ``flags`` (with their ``snapshot``): only those; ``before_txid``: as it was just before
    that transaction (the snapshot is the one it read), leaving its own rows out."""
    snapshot = snapshot or FlagStore(conn, manifest).snapshot(flags)
    last: dict[tuple[str, str], AuditRow] = {}
    for audit_row in last_audited(
        conn, manifest.system, list(manifest.flags) if flags is None else flags, before_txid
    ):
        if audit_row.flag in manifest.flags and _same_storage(manifest, audit_row):
            last[(audit_row.flag or "", audit_row.scope or GLOBAL)] = audit_row
    audited_scopes: dict[str, set[str]] = {}
    for flag, scope in last:
        audited_scopes.setdefault(flag, set()).add(scope)
    wanted = None if flags is None else set(flags)
    found = []
    for name, spec in manifest.flags.items():
        if wanted is not None and name not in wanted:
            continue
        if spec.bound:
            scopes = {GLOBAL}
            live = {GLOBAL: snapshot.globals[name]}
        else:
            live = dict(snapshot.overrides.get(name, {}))
            if name in snapshot.stored:
                live[GLOBAL] = snapshot.globals[name]
            scopes = set(live) | audited_scopes.get(name, set())
        for scope in sorted(scopes):
            row = last.get((name, scope))
            now = live.get(scope)
            if row is None:
                if now is not None and not spec.bound:  # a bound row predates flagctl: no record is fine
                    found.append(Drift(name, scope, now, None, None))
                continue
            audited = value_from_row(manifest, row, "after")
            if audited != now:
                found.append(Drift(name, scope, now, audited, row.seq))
    return found


def _same_storage(manifest: Manifest, row: AuditRow) -> bool:
    """An audit row of where the flag lives now (not of an earlier binding)."""
    table = manifest.flags[row.flag or ""].table
    if table is None:
        return row.target == "flagctl.flag_state"
    return row.target == table or row.target.endswith("." + table.rsplit(".", 1)[-1])
