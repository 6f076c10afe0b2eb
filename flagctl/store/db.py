"""Connections, transactions, row locks and the mapping of database errors.

Every mutation runs in one transaction that first declares who is acting and why
(``flagctl.begin_change``, which checks the role and is what the audit trigger believes), bounds its lock waits with
``lock_timeout``, and locks the rows it will change with ``SELECT … FOR UPDATE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from flagctl.config import Target, redact_dsn
from flagctl.errors import (
    Blocker,
    ConflictError,
    ConnectionFailed,
    DatabaseError,
    FlagctlError,
    PermissionDenied,
    UsageError,
)

if TYPE_CHECKING:
    import psycopg
    from psycopg import sql

APPLICATION_NAME = "flagctl"


REASON_LONGEST = 2000
ACTOR_LONGEST = 200


@dataclass(frozen=True)
class AuditContext:
    """What the audit trigger records beside each change: who acts, why, as which action and
    command. Every caller builds it through here (``given`` for a command's options), so
    every change is held to the same rules: an actor and a reason of one plain line each,
    bounded — no one writes escape sequences or forged lines into what an operator reads
    later in ``audit log``."""

    actor: str
    reason: str
    action: str
    command: str
    request_id: str = ""  # ties the command's rows together; given by the caller, it makes a retry idempotent

    def __post_init__(self) -> None:
        # Whoever builds it: no control character reaches the trail. (The length bounds are
        # ``given``'s, for what a person typed; a drill prefixes its step to the reason.)
        plain_text("--reason", self.reason)
        plain_text("--actor", self.actor)

    @classmethod
    def given(
        cls,
        action: str,
        *,
        reason: str | None,
        actor: str | None,
        command: str,
        request_id: str | None = None,
        required: bool = True,
    ) -> AuditContext:
        """The context of a change from what its caller gave: the reason stripped (and
        required, unless ``required`` is false: a dry run changes nothing), the actor
        defaulting to the OS user, a fresh request id unless the caller names one."""
        import uuid

        text = (reason or "").strip()
        plain_text("--reason", text, REASON_LONGEST)  # the wrong reason named before the missing one
        plain_text("--actor", actor or "", ACTOR_LONGEST)
        if required and not text:
            raise UsageError(f"{action} needs --reason", "say why, e.g. --reason 'INC-123: error spike'")
        return cls(
            actor=actor or os_user(),
            reason=text,
            action=action,
            command=command,
            request_id=request_id or str(uuid.uuid4()),
        )


def plain_text(option: str, text: str, longest: int | None = None) -> str:
    """Text recorded in the audit trail: one line of printable characters (at most
    ``longest`` long, if given); else a UsageError naming ``option``."""
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in text):
        raise UsageError(
            f"{option} has a control character (a newline, a tab or an escape)", "give it as one plain line"
        )
    if longest is not None and len(text) > longest:
        raise UsageError(
            f"{option} is {len(text)} characters long; at most {longest}", "say it shorter; link the ticket"
        )
    return text


def os_user() -> str:
    """Who runs this process, as the OS says (the default actor of a change)."""
    import getpass
    import os

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid:{os.getuid()}"


# A transient failure to connect (the server restarting, a failover) is retried this many
# times in all, waiting 100 ms, then 200 ms (ORCA's "3 × 100 ms"); nothing was sent yet, so
# retrying is always safe. Changes themselves are never retried blindly: a lost COMMIT is
# answered by asking the server (``txid_status``), a conflict is exit 4.
CONNECT_ATTEMPTS = 3
CONNECT_BACKOFF = 0.1
# Every session bounds each statement server-side, and libpq gives up on a peer that stops
# acknowledging (a dead network) instead of waiting for the OS's TCP timeout (minutes).
SESSION_OPTIONS = "-c statement_timeout=60s -c idle_in_transaction_session_timeout=60s"
TCP_USER_TIMEOUT_MS = 10_000


def connect(
    target: Target, connect_timeout: int = 5, sleep: Callable[[float], None] | None = None
) -> psycopg.Connection[tuple[Any, ...]]:
    """Open an autocommit connection (transactions are explicit) to the target."""
    import time

    import psycopg

    dsn = target.dsn
    if dsn is None:
        from flagctl import local

        dsn = local.ensure_running(local.data_dir()).dsn()
    try:
        given = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError as exc:
        raise UsageError(
            f"invalid DSN for target {target.name} ({target.origin}): {str(exc).strip()}",
            "a DSN is key=value pairs (host=db dbname=flags user=ops) or a postgresql:// URI",
        ) from None
    extra: dict[str, Any] = {"options": f"{SESSION_OPTIONS} {given.get('options') or ''}".strip()}
    if "tcp_user_timeout" not in given:
        extra["tcp_user_timeout"] = TCP_USER_TIMEOUT_MS
    wait = sleep or time.sleep
    for attempt in range(1, CONNECT_ATTEMPTS + 1):
        try:
            return psycopg.connect(
                dsn,
                autocommit=True,
                application_name=APPLICATION_NAME,
                connect_timeout=connect_timeout,
                **extra,
            )
        except psycopg.OperationalError as exc:
            lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
            detail = lines[0] if lines else "connection failed"  # libpq's first line says what failed
            detail = detail.replace(dsn, redact_dsn(dsn)) if dsn else detail
            if attempt < CONNECT_ATTEMPTS and _transient(detail):
                wait(CONNECT_BACKOFF * attempt)
                continue
            tried = f" (tried {attempt} times)" if attempt > 1 else ""
            raise ConnectionFailed(
                f"cannot connect to target {target.name} ({target.origin}): {detail}{tried}",
                "check the DSN, that the server is up, and your credentials (--dsn, FLAGCTL_DSN, PG*)",
            ) from None
    raise AssertionError("unreachable")


def _transient(detail: str) -> bool:
    """A failure that may pass by itself (not a wrong password, database or role)."""
    permanent = ("password", "authentication", "does not exist", "no pg_hba.conf", "permission denied", "SSL")
    return not any(word in detail for word in permanent)


GENERIC_PRIVILEGE_HINT = "ask for the privilege, or use another role"


def translate(exc: Exception) -> FlagctlError:
    """Map a psycopg error to the domain error (and so the exit code) it means."""
    import psycopg
    from psycopg import errors as e

    if isinstance(exc, FlagctlError):
        return exc
    if not isinstance(exc, psycopg.Error):
        raise exc
    diag = exc.diag
    message = (diag.message_primary or str(exc)).strip()
    state = exc.sqlstate or "?"
    hint = diag.message_hint
    text = f"database refused: {message} (SQLSTATE {state})"
    if diag.message_detail:
        text += f"\n{diag.message_detail}"
    if isinstance(exc, e.InsufficientPrivilege):
        return PermissionDenied(text, hint or GENERIC_PRIVILEGE_HINT)
    if isinstance(exc, e.LockNotAvailable):
        return ConflictError(text, hint or "another transaction holds the lock; retry shortly")
    if isinstance(exc, e.SerializationFailure | e.DeadlockDetected):
        return ConflictError(text, "a concurrent change won; re-run the command to see the new state")
    if isinstance(exc, e.UndefinedColumn):
        return UsageError(
            text,
            "after an upgrade of flagctl, run flagctl db init (it upgrades the schema); otherwise "
            "the manifest names a column its bound table does not have (flags.*.key / columns): "
            "fix the manifest, then flagctl db init checks every binding",
        )
    if isinstance(exc, e.UndefinedTable | e.InvalidSchemaName | e.UndefinedFunction):
        return UsageError(text, hint or "is the flagctl schema installed? run: flagctl db init")
    if isinstance(exc, e.IntegrityError | e.DataError):
        return UsageError(text, hint or "the value does not fit the table's constraints")
    if isinstance(exc, e.InsufficientResources | e.ProgramLimitExceeded):
        return DatabaseError(text, hint or "the server ran out of a resource; the change was not made")
    if isinstance(exc, psycopg.OperationalError | e.AdminShutdown):
        return ConnectionFailed(text, "the connection to the database was lost; retry")
    return DatabaseError(text, hint)


def split_table(name: str) -> tuple[str | None, str]:
    """``schema.table`` → (schema, table); a bare name → (None, table)."""
    schema, _, table = name.rpartition(".")
    return (schema or None), table


SET_LOCK_TIMEOUT = "SELECT set_config('lock_timeout', %s, true)"
SET_READ_ONLY = "SELECT set_config('transaction_read_only', 'on', true), set_config('lock_timeout', %s, true)"
# The change this transaction makes, declared to the database (schema 18): flagctl.begin_change
# checks the session's role for the action and records the declaration where the audit
# trigger reads it and no session can write it. Transaction-local: it ends with the transaction.
# With the manifest's system and text, the answer also says which catalogue version is
# published and whether this text is it (schema 19).
SET_AUDIT_CONTEXT = """
SELECT set_config('lock_timeout', %s, true), b.txid, b.published, b.same
  FROM flagctl.begin_change(%s, %s, %s, %s, %s, %s, %s) AS b
"""
TXID_STATUS = "SELECT txid_status(%s)"
# The declared change overrides a rule (--force): recorded on each of its audit rows.
MARK_FORCED = "SELECT flagctl.mark_forced()"


@contextmanager
def transaction(
    conn: psycopg.Connection[Any],
    audit: AuditContext | None = None,
    lock_timeout: timedelta = timedelta(seconds=5),
    read_only: bool = False,
    txid: list[int] | None = None,
    catalogue: tuple[str, str] | None = None,
    published: list[tuple[int | None, bool | None]] | None = None,
) -> Iterator[psycopg.Connection[Any]]:
    """One transaction: audit context and lock_timeout set first; rolled back on error.
    ``txid`` (with an audit context) receives the transaction's id, to learn its outcome
    if the connection is lost while it commits. ``catalogue`` (system, manifest text): the
    change is declared with it, and ``published`` receives the published version and
    whether that text is the one published (None: nothing published)."""
    with conn.transaction():
        # PostgreSQL reads lock_timeout=0 as "wait forever"; flagctl's 0 means "do not wait".
        timeout = f"{max(1, int(lock_timeout.total_seconds() * 1000))}ms"
        if audit is None:
            conn.execute(SET_READ_ONLY if read_only else SET_LOCK_TIMEOUT, (timeout,))
        else:
            assert not read_only
            system, source = catalogue or (None, None)
            row = conn.execute(
                SET_AUDIT_CONTEXT,
                (
                    timeout,
                    audit.action,
                    audit.actor,
                    audit.reason,
                    audit.command,
                    audit.request_id,
                    system,
                    source,
                ),
            ).fetchone()
            assert row is not None
            if txid is not None:
                txid.append(int(row[1]))
            if published is not None:
                published.append((row[2], row[3]))
        yield conn


def txid_status(conn: psycopg.Connection[Any], txid: int) -> str | None:
    """committed / aborted / in progress (None: the server no longer knows)."""
    row = conn.execute(TXID_STATUS, (txid,)).fetchone()
    return None if row is None else row[0]


def mark_forced(conn: psycopg.Connection[Any]) -> None:
    """Mark the declared change as forced (inside its transaction)."""
    conn.execute(MARK_FORCED)


@contextmanager
def read_only(conn: psycopg.Connection[Any], timeout: str) -> Iterator[psycopg.Connection[Any]]:
    """A read-only (sub)transaction with a statement timeout, for SQL from a manifest or an
    operator: it can neither write nor hang. Inside a transaction it is a savepoint."""
    with conn.transaction():
        conn.execute(
            "SELECT set_config('transaction_read_only', 'on', true), set_config('statement_timeout', %s, true)",
            (timeout,),
        )
        yield conn


def subjects_from(sql_text: str) -> str:
    """An operator's subjects query as a FROM item ``s(id)`` (its first column is the id)."""
    return "(" + sql_text.strip().rstrip(";").replace("%", "%%") + ") AS s(id)"


# Who a blocker is: what an operator (and --break-locks' audit record) needs to know.
_BLOCKER = """
SELECT DISTINCT a.pid, coalesce(a.usename::text, '?'), coalesce(nullif(a.application_name, ''), '?'),
       coalesce(a.state, '?'), left(regexp_replace(coalesce(a.query, ''), '\\s+', ' ', 'g'), 120),
       coalesce(extract(epoch FROM now() - a.xact_start)::int, 0), a.xact_start
"""
ROW_LOCKERS = (
    _BLOCKER
    + """  FROM pg_stat_activity a
 WHERE a.pid <> pg_backend_pid() AND a.backend_xid IS NOT NULL AND a.backend_xid::text = ANY(%s)
 ORDER BY a.xact_start NULLS LAST
"""
)
TABLE_WRITERS = (
    _BLOCKER
    + """  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE l.granted AND l.locktype = 'relation' AND l.mode <> 'AccessShareLock'
   AND l.relation = to_regclass(%s) AND a.pid <> pg_backend_pid()
   AND l.database = a.datid AND a.datname = current_database()
 ORDER BY a.xact_start NULLS LAST
"""
)
ADVISORY_HOLDERS = (
    _BLOCKER
    + """  FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid,
       unnest(%s::text[]) AS name, hashtextextended(name, 0) AS k
 WHERE l.locktype = 'advisory' AND l.granted AND a.pid <> pg_backend_pid()
   AND l.classid::bigint = (k >> 32) & 4294967295 AND l.objid::bigint = k & 4294967295
 ORDER BY a.xact_start NULLS LAST
"""
)


def _blockers(rows: Sequence[tuple[Any, ...]]) -> list[Blocker]:
    return [Blocker(pid, user, app, state, query, age) for pid, user, app, state, query, age, _ in rows]


def table_writers(conn: psycopg.Connection[Any], tables: Iterable[str]) -> list[Blocker]:
    """The other sessions of this database holding a write lock on any of these tables,
    each once (in the order the tables are given)."""
    found: dict[int, Blocker] = {}
    for table in tables:
        for blocker in _blockers(conn.execute(TABLE_WRITERS, (table,)).fetchall()):
            found.setdefault(blocker.pid, blocker)
    return list(found.values())


def lock_conflict(what: str, blockers: list[Blocker]) -> ConflictError:
    """The error of a lock not obtained in time, naming who holds it (kept on the error, for
    --break-locks)."""
    if blockers:
        first = blockers[0]
        more = f" (+{len(blockers) - 1} more)" if len(blockers) > 1 else ""
        holder = f"pid {first.pid} (application_name {first.application}, {first.state}): {first.query}{more}"
    else:
        holder = "another transaction (it has finished since)"
    return ConflictError(
        f"could not lock {what} within lock_timeout: held by {holder}",
        "wait for that transaction to finish (or end it), then re-run; --lock-timeout waits longer"
        + ("; flagctl kill --break-locks ends it" if blockers else ""),
        blockers,
    )


def lock_rows(
    conn: psycopg.Connection[Any],
    query: sql.Composed | sql.SQL,
    params: Sequence[Any],
    table: str,
    what: str,
    lockers: tuple[str | sql.Composed | sql.SQL, Sequence[Any]] | None = None,
) -> list[tuple[Any, ...]]:
    """Run a ``SELECT … FOR UPDATE``; on lock timeout raise ConflictError naming the blocker.

    The attempt runs in a savepoint so the transaction survives long enough to ask who
    holds the lock: ``lockers`` (a query of the rows' ``xmax``) names the transactions that
    hold those very rows; without it, whoever holds a write lock on the table is named.
    """
    from psycopg import errors as e

    try:
        with conn.transaction():
            rows: list[tuple[Any, ...]] = conn.execute(query, params).fetchall()
            return rows
    except e.LockNotAvailable:
        found = row_lockers(conn, *lockers) if lockers else []
        found = found or _blockers(conn.execute(TABLE_WRITERS, (table,)).fetchall())
        raise lock_conflict(what, found) from None


# The group key first (shared), then each name (exclusive), in one ordered scan.
LOCK_KEYS = """
SELECT count(CASE WHEN n = 0 THEN pg_advisory_xact_lock_shared(hashtextextended(k, 0))
                  ELSE pg_advisory_xact_lock(hashtextextended(k, 0)) END)
  FROM (SELECT k, n FROM unnest(%s::text[]) WITH ORDINALITY AS u(k, n)
        UNION ALL SELECT %s, 0 ORDER BY n) AS ordered
"""
LOCK_GROUP = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
# Past this many names a locker takes the whole group exclusively: one lock instead of
# thousands (PostgreSQL's lock table holds max_locks_per_transaction × connections).
MANY_KEYS = 256


def lock_keys(conn: psycopg.Connection[Any], keys: list[str], what: str, group: str) -> None:
    """Take transaction-level advisory locks on names (e.g. ``system/flag``) within a group
    (``system/*``), in one statement, waiting at most lock_timeout; on timeout raise
    ConflictError naming the holder.

    A few names: the group shared, then each name exclusively, in name order. Many names:
    the group exclusively — which every locker of a few names waits for, and waits for
    them — so a kill of 50,000 flags takes one lock, not 50,000."""
    from psycopg import errors as e

    try:
        with conn.transaction():
            if len(keys) > MANY_KEYS:
                conn.execute(LOCK_GROUP, (group,))
            else:
                conn.execute(LOCK_KEYS, (sorted(keys), group))
    except e.LockNotAvailable:
        raise lock_conflict(
            what, _blockers(conn.execute(ADVISORY_HOLDERS, ([group, *keys],)).fetchall())
        ) from None


def row_lockers(
    conn: psycopg.Connection[Any], query: str | sql.Composed | sql.SQL, params: Sequence[Any]
) -> list[Blocker]:
    """The transactions that hold the rows ``query`` selects the ``xmax`` of (a row locked or
    changed by an open transaction carries that transaction's id there)."""
    xids = [str(row[0]) for row in conn.execute(query, params).fetchall() if row[0] is not None]
    return _blockers(conn.execute(ROW_LOCKERS, (xids,)).fetchall()) if xids else []


def interference(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """The triggers and rules of a table's own (not flagctl's) that can change or skip a
    write to it, described for an operator: ``trigger keep_flags (BEFORE UPDATE, function …)``.
    The one definition is the database's ``flagctl.interference`` (routines/90_kill.sql), which
    the SQL kill names in its refusal too; a schema whose routines predate it reports none."""
    rows = conn.execute(
        "SELECT flagctl.interference(to_regclass(%(table)s))"
        " WHERE to_regprocedure('flagctl.interference(regclass)') IS NOT NULL",
        {"table": table},
    ).fetchall()
    return [row[0] for row in rows]
