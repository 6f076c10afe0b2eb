"""Reading and verifying the audit trail (``flagctl.audit``).

Rows are written only by the database (triggers and ``flagctl.audit_event``); this
module reads them, maps bound-table rows back to flag values, and re-computes the hash
chain so a rewritten, removed or inserted row is found.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError
from flagctl.model.manifest import Manifest

if TYPE_CHECKING:
    import psycopg

COLUMNS = (
    "seq, at, txid, db_user, actor, action, system, flag, scope, target, key, before, after, "
    "reason, command, forced, claimed, request_id"
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
    claimed: dict[str, Any] | None = None  # what an untrusted session declared (not believed)
    request_id: str | None = None  # the command that wrote it

    @property
    def who(self) -> str:
        """The declared actor beside the database user, or the database user alone (with
        any name an untrusted session claimed, marked as such)."""
        if self.actor and self.actor != self.db_user:
            return f"{self.actor} (db: {self.db_user})"
        if self.claimed and self.claimed.get("actor"):
            return f"{self.db_user} (claimed: {self.claimed['actor']})"
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
            "claimed": self.claimed,
            "request_id": self.request_id,
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


@dataclass(frozen=True)
class LogFilter:
    """Which audit rows to read: every field narrows (None: no narrowing)."""

    system: str | None = None
    flags: list[str] | None = None
    actors: list[str] | None = None  # the declared actor or the database user
    actions: list[str] | None = None  # exact, or a prefix ending in * (stage.*)
    since: datetime | None = None
    until: datetime | None = None


def iter_log(
    conn: psycopg.Connection[Any], where: LogFilter, limit: int | None = 50, oldest_first: bool = False
) -> Iterator[AuditRow]:
    """The rows that match, newest first (or oldest first), streamed from a server-side
    cursor: a large trail is never loaded whole."""
    from psycopg import sql

    clauses: list[sql.Composable] = []
    params: list[Any] = []
    if where.system is not None:
        clauses.append(sql.SQL("system = %s"))
        params.append(where.system)
    if where.flags:
        clauses.append(sql.SQL("flag = ANY(%s)"))
        params.append(where.flags)
    if where.actors:
        clauses.append(sql.SQL("(actor = ANY(%s) OR db_user = ANY(%s))"))
        params += [where.actors, where.actors]
    if where.actions:
        clauses.append(sql.SQL("action LIKE ANY(%s)"))
        params.append([_like(action) for action in where.actions])
    if where.since is not None:
        clauses.append(sql.SQL("at >= %s"))
        params.append(where.since)
    if where.until is not None:
        clauses.append(sql.SQL("at < %s"))
        params.append(where.until)
    query = sql.SQL("SELECT {} FROM flagctl.audit {} ORDER BY seq {} {}").format(
        sql.SQL(COLUMNS),
        sql.SQL("WHERE ") + sql.SQL(" AND ").join(clauses) if clauses else sql.SQL(""),
        sql.SQL("ASC" if oldest_first else "DESC"),
        sql.SQL("LIMIT %s") if limit is not None else sql.SQL(""),
    )
    if limit is not None:
        params.append(limit)
    with conn.transaction(), conn.cursor(name="flagctl_audit_log") as cur:
        cur.itersize = 1000
        cur.execute(query, params)
        for row in cur:
            yield AuditRow(*row)


def _like(action: str) -> str:
    """An action filter as a LIKE pattern: exact, or a prefix when it ends in *."""
    prefix = action.endswith("*")
    text = (action[:-1] if prefix else action).replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return text + "%" if prefix else text


def read_log(
    conn: psycopg.Connection[Any],
    *,
    system: str | None = None,
    flags: list[str] | None = None,
    since: datetime | None = None,
    limit: int = 50,
) -> list[AuditRow]:
    """The newest rows first, filtered by system, flag and time."""
    return list(iter_log(conn, LogFilter(system=system, flags=flags, since=since), limit))


# A request id (``--request-id``) already applied: its first audit row and transaction.
APPLIED_REQUEST = """
SELECT min(seq), min(txid) FROM flagctl.audit WHERE request_id = %s AND action NOT LIKE '%%.refused'
"""
# Two retries of one request id apply it once: the second waits here, then finds it applied.
LOCK_REQUEST = "SELECT pg_advisory_xact_lock(hashtextextended('flagctl.request:' || %s, 0))"
# An event of its own (a refusal), with who and why from the declared change.
RECORD_EVENT = "SELECT flagctl.audit_event(%s, %s, %s, %s, %s)"


def lock_request(conn: psycopg.Connection[Any], request: str) -> None:
    """Hold a request id until the caller's transaction ends."""
    conn.execute(LOCK_REQUEST, (request,))


def applied_request(conn: psycopg.Connection[Any], request: str) -> tuple[int, int] | None:
    """(audit seq, txid) of the first change applied with this request id (None: none was)."""
    row = conn.execute(APPLIED_REQUEST, (request,)).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def record_event(
    conn: psycopg.Connection[Any],
    action: str,
    system: str | None,
    flag: str | None,
    target: str,
    detail: dict[str, Any],
) -> None:
    """Write an audit event (inside the caller's declared change; ``flagctl.audit_event``)."""
    from psycopg.types.json import Jsonb

    conn.execute(RECORD_EVENT, (action, system, flag, target, Jsonb(detail)))


# Which audit rows changed a flag value (refusals and events are about no value); the
# partial index audit_last_value (schema 34) holds exactly these, by (system, flag, scope).
VALUE_ROWS = (
    "a.flag IS NOT NULL AND a.action NOT LIKE '%%.refused'"
    " AND a.target NOT IN ('flagctl.exemption', 'flagctl.engaged_switch') AND a.target NOT LIKE '%%:%%'"
)


def _columns(*left_out: str) -> str:
    """The audit row's columns, these read as NULL: a read of thousands of rows that needs
    no images leaves them in the database rather than decode three jsonb values a row."""
    names = (column.strip() for column in COLUMNS.split(","))
    return ", ".join(f"NULL::jsonb AS {n}" if n in left_out else f"a.{n}" for n in names)


ACOLUMNS = _columns()
# Each of these flags' scopes among the rows that changed a value, found by skipping through
# the index from one scope to the next (a loose index scan): the cost follows the flags and
# scopes, not the history.
PAIRS = f"""
WITH RECURSIVE pairs (flag, sc) AS (
    SELECT f.flag, first.sc FROM unnest(%(flags)s::text[]) AS f(flag) CROSS JOIN LATERAL (
        SELECT coalesce(a.scope, 'global') AS sc FROM flagctl.audit a
         WHERE a.system = %(system)s AND a.flag = f.flag AND {VALUE_ROWS}
         ORDER BY coalesce(a.scope, 'global') LIMIT 1) first
    UNION ALL
    SELECT p.flag, n.sc FROM pairs p CROSS JOIN LATERAL (
        SELECT coalesce(a.scope, 'global') AS sc FROM flagctl.audit a
         WHERE a.system = %(system)s AND a.flag = p.flag AND {VALUE_ROWS}
           AND coalesce(a.scope, 'global') > p.sc
         ORDER BY coalesce(a.scope, 'global') LIMIT 1) n
)
"""  # noqa: S608 - constant predicates
# One pair's value rows, through the same index, newest first.
PAIR_ROWS = f"""
SELECT {ACOLUMNS} FROM flagctl.audit a
 WHERE a.system = %(system)s AND {VALUE_ROWS} AND a.flag = p.flag AND coalesce(a.scope, 'global') = p.sc
"""  # noqa: S608 - constant columns and predicates
# The last audit row of each of these flags at every scope, among the rows that changed a
# value: each pair's newest row. ``txid``: that transaction's own rows left out (the kill's
# drift report).
LAST_AUDITED = f"""{PAIRS}
SELECT last.* FROM pairs p CROSS JOIN LATERAL (
    SELECT {_columns("key", "before")} FROM flagctl.audit a
     WHERE a.system = %(system)s AND {VALUE_ROWS} AND a.flag = p.flag AND coalesce(a.scope, 'global') = p.sc
       AND a.txid IS DISTINCT FROM %(txid)s
     ORDER BY a.seq DESC LIMIT 1) last
ORDER BY last.flag, coalesce(last.scope, 'global')
"""  # noqa: S608 - constant columns and predicates
# What each of these flags held at every scope at a moment (``restore --as-of``): the last
# value row written at or before it ('after': the value it left) or, when there is none, the
# first one after it ('before': the value it found there). Each pair's rows are walked back
# from its newest to the first at or before the moment, in the database: the read costs the
# pairs and the rows written since the moment, never the history before it, and what comes
# back is one row per pair.
AS_OF = f"""{PAIRS}
SELECT found.* FROM pairs p CROSS JOIN LATERAL (
    (SELECT 'after' AS side, a.* FROM ({PAIR_ROWS} AND a.at <= %(when)s ORDER BY a.seq DESC LIMIT 1) a)
    UNION ALL
    (SELECT 'before' AS side, a.* FROM ({PAIR_ROWS} ORDER BY a.seq LIMIT 1) a)
    LIMIT 1) found
ORDER BY found.flag, coalesce(found.scope, 'global')
"""  # noqa: S608 - constant columns and predicates


def as_of(
    conn: psycopg.Connection[Any], system: str, flags: list[str], when: datetime
) -> list[tuple[str, AuditRow]]:
    """For each of these flags of a system at every scope it was audited at, the row that
    tells its value at ``when`` and which image of it does: ``after`` (the last change at or
    before it) or ``before`` (no change by then: the first one after it)."""
    rows = conn.execute(AS_OF, {"system": system, "flags": flags, "when": when}).fetchall()
    return [(row[0], AuditRow(*row[1:])) for row in rows]


def last_audited(
    conn: psycopg.Connection[Any], system: str, flags: list[str], before_txid: int | None
) -> list[AuditRow]:
    """The last audit row of each of these flags of a system, at every scope, that changed
    its value (``before_txid``: leaving that transaction's own rows out): its after-image,
    not its before-image or key (None)."""
    rows = conn.execute(LAST_AUDITED, {"system": system, "flags": flags, "txid": before_txid}).fetchall()
    return [AuditRow(*row) for row in rows]


# The newest row that changed each of these flags: one backward step through the
# (system, flag, seq) index per flag, whatever the length of the history.
LAST_CHANGES = f"""
SELECT last.* FROM unnest(%s::text[]) AS f(flag) CROSS JOIN LATERAL (
    SELECT {_columns("key", "before", "after")} FROM flagctl.audit a
     WHERE a.system = %s AND a.flag = f.flag AND a.action NOT LIKE '%%.refused'
     ORDER BY a.seq DESC LIMIT 1) last
"""  # noqa: S608 - constant columns


def last_changes(conn: psycopg.Connection[Any], system: str, flags: list[str]) -> dict[str, AuditRow]:
    """The most recent row that changed each of these flags of the system: who, when, why —
    not its images or key (None)."""
    rows = conn.execute(LAST_CHANGES, (flags, system)).fetchall()
    return {row[7]: AuditRow(*row) for row in rows}


@dataclass(frozen=True)
class ChainReport:
    rows: int
    head_seq: int  # the last sealed row
    problems: list[str]
    signed: int = 0  # signatures checked with the key
    unchecked: int = 0  # signatures that need a key not given (or another key)
    sealed_now: int = 0  # rows left unsealed (their at-commit seal skipped) that verify sealed

    @property
    def ok(self) -> bool:
        return not self.problems


SEAL_NOW = "SELECT flagctl.audit_seal(true)"
# The seals after position %(pos)s (0: all of them), each with whether its row is there: the
# links of the chain. Each seal's hash is checked against its row's digest in the rows' pass,
# which computes every digest once (it was computed in both passes: half of a full verify).
SEALS = """
SELECT s.pos, s.seq, s.prev_hash, s.hash, a.seq IS NOT NULL
  FROM flagctl.audit_seal s LEFT JOIN flagctl.audit a ON a.seq = s.seq
 WHERE s.pos > %(pos)s
 ORDER BY s.pos
"""
# The rows after row %(seq)s (0: all of them): each one's stored hash against its digest now,
# its seal (position, link and hash; NULL: none), and whether it waits to be sealed.
ROWS = """
SELECT a.seq, a.hash, flagctl.audit_digest(a), s.pos, s.prev_hash, s.hash, u.seq IS NOT NULL
  FROM flagctl.audit a
  LEFT JOIN flagctl.audit_seal s ON s.seq = a.seq
  LEFT JOIN flagctl.audit_unsealed u ON u.seq = a.seq
 WHERE a.seq > %(seq)s
 ORDER BY a.seq
"""
# Where an incremental verify starts its rows: after the checkpoint's own row, or before a
# row sealed after it that was written before it (rows are sealed as they committed).
FIRST_AFTER = """
SELECT least(c.seq, (SELECT min(s.seq) - 1 FROM flagctl.audit_seal s WHERE s.pos > c.pos)), c.seq
  FROM flagctl.audit_seal c WHERE c.pos = %s
"""
ORPHANS = """
SELECT u.seq FROM flagctl.audit_unsealed u
 WHERE NOT EXISTS (SELECT 1 FROM flagctl.audit a WHERE a.seq = u.seq) ORDER BY u.seq
"""


BACKLOG = "SELECT rows, oldest FROM flagctl.audit_backlog()"


@dataclass(frozen=True)
class Backlog:
    """Committed audit rows not sealed yet: their writers' at-commit seals were skipped
    (the seal was held), and they wait for the next sealer."""

    rows: int
    oldest: datetime | None

    def describe(self) -> str:
        if not self.rows:
            return "no audit row waits to be sealed"
        since = f", the oldest written {self.oldest:%Y-%m-%d %H:%M:%S %Z}" if self.oldest else ""
        return f"{self.rows} audit rows wait to be sealed{since}"


def backlog(conn: psycopg.Connection[Any]) -> Backlog | None:
    """How many committed audit rows wait to be sealed (None: a schema older than 24)."""
    if conn.execute("SELECT to_regprocedure('flagctl.audit_backlog()')").fetchone() == (None,):
        return None
    row = conn.execute(BACKLOG).fetchone()
    return Backlog(int(row[0]), row[1]) if row else None


def seal(conn: psycopg.Connection[Any], lock_timeout: timedelta = timedelta(seconds=5)) -> int:
    """Seal every committed audit row not sealed yet, waiting at most ``lock_timeout`` for a
    sealer at work; how many were sealed. A seal held longer (a session sitting in an open
    transaction that called ``flagctl.audit_seal``) is a conflict naming who holds it and
    saying how many rows stay unsealed meanwhile."""
    from psycopg import errors

    from flagctl.store.db import ADVISORY_HOLDERS, _blockers, lock_conflict, transaction

    try:
        with transaction(conn, lock_timeout=lock_timeout) as tx:
            row = tx.execute(SEAL_NOW).fetchone()
    except errors.LockNotAvailable:
        holders = _blockers(conn.execute(ADVISORY_HOLDERS, (["flagctl.audit_seal"],)).fetchall())
        waiting = backlog(conn)
        left = f"; {waiting.describe()}" if waiting is not None else ""
        raise lock_conflict(f"the audit seal (rows stay unsealed until it is free{left})", holders) from None
    return int(row[0] or 0) if row else 0


@dataclass(frozen=True)
class Checkpoint:
    """The chain's head at one moment, kept outside the database (a ticket, a CI artifact):
    a later verify against it finds the chain rewritten or trimmed since, which the chain
    alone cannot show to someone who recomputed it."""

    pos: int
    seq: int
    hash: str

    def token(self) -> str:
        return f"{self.pos}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Checkpoint:
        """``POS:HASH`` as printed by ``audit checkpoint``."""
        pos, _, digest = text.strip().partition(":")
        if not pos.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise ValueError(
                f"not a checkpoint: {text.strip()!r}; give POS:HASH as `flagctl audit checkpoint` prints it"
            )
        return cls(int(pos), 0, digest)


@dataclass(frozen=True, repr=False)
class AuditKey:
    """A key held outside the database that signs the chain's head (HMAC-SHA256). Never
    printed, stored or sent: only its id (a digest prefix) and the MACs it makes are."""

    secret: bytes

    @property
    def key_id(self) -> str:
        import hashlib

        return hashlib.sha256(self.secret).hexdigest()[:16]

    def mac(self, pos: int, digest: str) -> str:
        import hashlib
        import hmac

        return hmac.new(self.secret, f"{pos}:{digest}".encode(), hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return f"AuditKey(id={self.key_id})"


# Only a sealed head, with the hash its seal holds (routines/96_records.sql).
SIGN = "SELECT flagctl.audit_sign(%s, %s, %s, %s)"
SIGNATURES = """
SELECT g.pos, g.hash, g.mac, g.key_id, g.signed_at, s.hash
  FROM flagctl.audit_signature g LEFT JOIN flagctl.audit_seal s ON s.pos = g.pos
 ORDER BY g.pos
"""


def sign(conn: psycopg.Connection[Any], key: AuditKey) -> Checkpoint | None:
    """Seal what is committed, then sign the chain's head with the key (None: nothing to sign)."""
    head = checkpoint(conn)
    if head is not None:
        conn.execute(SIGN, (head.pos, head.hash, key.mac(head.pos, head.hash), key.key_id))
    return head


def check_signatures(conn: psycopg.Connection[Any], key: AuditKey | None) -> tuple[int, int, list[str]]:
    """Every signature against the chain as it is now: (checked, unchecked, problems). Each
    signed seal must still hold the hash that was signed; with the key, each signature of
    that key must be its own MAC (a superuser without the key cannot make one)."""
    import hmac

    checked, unchecked, problems = 0, 0, []
    for pos, signed_hash, mac, key_id, signed_at, now in conn.execute(SIGNATURES).fetchall():
        when = f"{signed_at:%Y-%m-%d %H:%M:%S %Z}"
        if now is None:
            problems.append(f"seal {pos}, signed {when}, is gone: the chain was cut back since")
        elif now != signed_hash:
            problems.append(f"seal {pos} differs from what was signed {when}: the chain was rewritten since")
        if key is None or key_id != key.key_id:
            unchecked += 1
            continue
        checked += 1
        if not hmac.compare_digest(mac, key.mac(pos, signed_hash)):
            problems.append(f"the signature of seal {pos} ({when}) is not this key's: it was forged")
    return checked, unchecked, problems


HEAD = "SELECT pos, seq, hash FROM flagctl.audit_seal ORDER BY pos DESC LIMIT 1"
SEAL_AT = "SELECT hash FROM flagctl.audit_seal WHERE pos = %s"


def checkpoint(
    conn: psycopg.Connection[Any], lock_timeout: timedelta = timedelta(seconds=5)
) -> Checkpoint | None:
    """Seal what is committed, then the chain's head (None: nothing audited yet)."""
    seal(conn, lock_timeout)
    row = conn.execute(HEAD).fetchone()
    return None if row is None else Checkpoint(*row)


def verify_chain(
    conn: psycopg.Connection[Any],
    max_problems: int = 20,
    against: Checkpoint | None = None,
    key: AuditKey | None = None,
    lock_timeout: timedelta = timedelta(seconds=5),
    since: Checkpoint | None = None,
) -> ChainReport:
    """Seal what is left, then check every row's digest and every link of the chain, every
    signature (with ``key``: its MAC too) and, given a checkpoint, that the chain still
    holds it. ``since``: a checkpoint a verify already covered: the chain must still hold it,
    and only what came after it is checked (its seals and their rows, and every row after its
    own), so the cost follows what was written since, not the whole trail."""
    import hashlib

    sealed_now = seal(conn, lock_timeout)
    problems: list[str] = []
    for point in (p for p in (against, since) if p is not None):
        found = conn.execute(SEAL_AT, (point.pos,)).fetchone()
        if found is None:
            problems.append(f"seal {point.pos} of the checkpoint is gone: the chain was cut back since")
        elif found[0] != point.hash:
            problems.append(f"seal {point.pos} differs from the checkpoint: the chain was rewritten since")
    if since is not None and problems:
        return ChainReport(rows=0, head_seq=0, problems=problems)
    expected_prev = since.hash if since else "genesis"
    expected_pos = since.pos + 1 if since else 1
    first_pos = expected_pos - 1  # the seals checked: those after it
    after = head = 0
    if since is not None:
        row = conn.execute(FIRST_AFTER, (since.pos,)).fetchone()
        if row is not None:
            after, head = int(row[0]), int(row[1])
    with conn.transaction(), conn.cursor(name="flagctl_audit_seals") as cur:
        cur.execute(SEALS, {"pos": since.pos if since else 0})
        for pos, seq, prev_hash, stored, present in cur:
            if pos != expected_pos:
                problems.append(f"seals {expected_pos}–{pos - 1} are missing (the chain was cut)")
            if prev_hash != expected_prev:
                problems.append(f"seal {pos} (row {seq}): chain broken (it does not follow seal {pos - 1})")
            if not present:
                problems.append(f"row {seq} is missing (deleted after it was sealed)")
            expected_prev, expected_pos, head = stored, pos + 1, seq
            if len(problems) >= max_problems:
                return ChainReport(rows=pos, head_seq=head, problems=problems)
    count = 0
    with conn.transaction(), conn.cursor(name="flagctl_audit_rows") as cur:
        cur.execute(ROWS, {"seq": after})
        for seq, stored, digest, pos, prev_hash, seal_hash, pending in cur:
            count += 1
            if stored != digest:
                problems.append(f"row {seq}: contents changed after it was written (hash mismatch)")
            if pos is None and not pending:
                problems.append(f"row {seq} was written around the audit trigger (never sealed)")
            elif (
                pos is not None
                and pos > first_pos
                and hashlib.sha256((prev_hash + digest).encode()).hexdigest() != seal_hash
            ):
                problems.append(
                    f"row {seq}: contents changed after it was written (seal {pos} does not match)"
                )
            if len(problems) >= max_problems:
                break
    for (seq,) in conn.execute(ORPHANS).fetchall():
        problems.append(f"row {seq} is missing (deleted before it was sealed)")
    signed, unchecked, forged = check_signatures(conn, key)
    problems.extend(forged)
    return ChainReport(count, head, problems[:max_problems], signed, unchecked, sealed_now)
