"""Reading and verifying the audit trail (``flagctl.audit``).

Rows are written only by the database (triggers and ``flagctl.audit_event``); this
module reads them, maps bound-table rows back to flag values, and re-computes the hash
chain so a rewritten, removed or inserted row is found.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError
from flagctl.model.manifest import Manifest

if TYPE_CHECKING:
    import psycopg

COLUMNS = (
    "seq, at, txid, db_user, actor, action, system, flag, scope, target, key, before, after, "
    "reason, command, forced"
)


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    txid: int
    db_user: str
    actor: str | None
    action: str
    system: str | None
    flag: str | None
    scope: str | None
    target: str
    key: dict[str, Any] | None
    before: Any
    after: Any
    reason: str | None
    command: str | None
    forced: bool

    @property
    def who(self) -> str:
        """The declared actor beside the database user, or the database user alone."""
        if self.actor and self.actor != self.db_user:
            return f"{self.actor} (db: {self.db_user})"
        return self.db_user

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at.isoformat(),
            "txid": self.txid,
            "db_user": self.db_user,
            "actor": self.actor,
            "action": self.action,
            "system": self.system,
            "flag": self.flag,
            "scope": self.scope,
            "target": self.target,
            "key": self.key,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "command": self.command,
            "forced": self.forced,
        }


def value_from_row(manifest: Manifest, row: AuditRow, side: str) -> Any | None:
    """The flag value an audit row records before or after the change (None: no row)."""
    data = row.before if side == "before" else row.after
    if data is None or row.flag is None or row.flag not in manifest.flags:
        return None
    flag = manifest.flags[row.flag]
    try:
        if flag.columns is not None and row.target != "flagctl.flag_state":
            return flag.from_columns({logical: data[column] for logical, column in flag.columns.items()})
        return flag.from_db(data)
    except (KeyError, TypeError, ValueError, UsageError):
        return None


def read_log(
    conn: psycopg.Connection[Any],
    *,
    system: str | None = None,
    flags: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[AuditRow]:
    """The newest rows first, filtered by system, flag and time."""
    from psycopg import sql

    where: list[sql.Composable] = []
    params: list[Any] = []
    if system is not None:
        where.append(sql.SQL("system = %s"))
        params.append(system)
    if flags:
        where.append(sql.SQL("flag = ANY(%s)"))
        params.append(flags)
    if since is not None:
        where.append(sql.SQL("at >= %s"))
        params.append(since)
    query = sql.SQL("SELECT {} FROM flagctl.audit {} ORDER BY seq DESC LIMIT %s").format(
        sql.SQL(COLUMNS),
        sql.SQL("WHERE ") + sql.SQL(" AND ").join(where) if where else sql.SQL(""),
    )
    params.append(limit)
    return [AuditRow(*row) for row in conn.execute(query, params)]


def last_changes(conn: psycopg.Connection[Any], system: str) -> dict[str, AuditRow]:
    """The most recent row that changed each flag of the system."""
    rows = conn.execute(
        f"SELECT DISTINCT ON (flag) {COLUMNS} FROM flagctl.audit"  # noqa: S608 - constant columns
        " WHERE system = %s AND flag IS NOT NULL AND action NOT LIKE '%%.refused'"
        " ORDER BY flag, seq DESC",
        (system,),
    ).fetchall()
    return {row[7]: AuditRow(*row) for row in rows}


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head_seq: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def verify_chain(conn: psycopg.Connection[Any], max_problems: int = 20) -> ChainReport:
    """Recompute every row's digest and link; report the first problems found."""
    problems: list[str] = []
    expected_prev = "genesis"
    expected_seq = 1
    count = 0
    with conn.cursor(name="flagctl_audit_verify") as cur, conn.transaction():
        cur.execute(
            "SELECT a.seq, a.prev_hash, a.hash, flagctl.audit_digest(a) FROM flagctl.audit a ORDER BY a.seq"
        )
        for seq, prev_hash, stored, digest in cur:
            count += 1
            if seq != expected_seq:
                problems.append(f"rows {expected_seq}–{seq - 1} are missing (deleted?)")
            if prev_hash != expected_prev:
                problems.append(f"row {seq}: chain broken (prev_hash does not match row {seq - 1})")
            if stored != digest:
                problems.append(f"row {seq}: contents changed after it was written (hash mismatch)")
            expected_prev = stored
            expected_seq = seq + 1
            if len(problems) >= max_problems:
                break
    head = conn.execute("SELECT seq, hash FROM flagctl.audit_head").fetchone()
    if head is not None and len(problems) < max_problems and count:
        head_seq, head_hash = head
        if head_seq != expected_seq - 1 or head_hash != expected_prev:
            problems.append(f"the chain head (row {head_seq}) does not match the last row")
    return ChainReport(rows=count, head_seq=head[0] if head else 0, problems=problems)
