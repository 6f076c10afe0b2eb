"""Notifications (docs/notifications.md): every audited change delivered to the manifest's
sinks — CloudEvents 1.0 webhooks signed per Standard Webhooks, and Slack incoming webhooks.

Nothing here runs inside a change: the outbox is ``flagctl.audit`` itself, which the
triggers write in the change's own transaction, so a kill neither waits for a sink nor
sends one statement more. ``deliver_once`` is one pass of the deliverer: it seals what
committed, then for each sink takes the rows after its cursor in seal order, POSTs each
event, and records the outcome in a short transaction of its own declared as
``notify.deliver``. A failure stops that sink at that row (at least once, in order) until
its next attempt is due (exponential backoff, on the caller's clock); the other sinks go
on. One deliverer per sink at a time (an advisory lock; a second one passes the sink by).

The HTTP call is a ``Sender`` (``urllib.request`` by default, at most 5 s): tests give
their own, or a real receiver on the loopback.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol

from flagctl.errors import UsageError

if TYPE_CHECKING:
    import psycopg

    from flagctl.model.manifest import Manifest, Sink
    from flagctl.store.audit import AuditRow

# Which actions a sink receives when it names none.
DEFAULT_EVENTS = {
    "cloudevents": ("*",),
    # People read Slack: the runner's decisions, not each analysis or wait
    "slack": (
        "kill",
        "release",
        "rollback",
        "rollback.*",
        "*.refused",
        "rollout.start",
        "rollout.advance",
        "rollout.rollback",
        "rollout.pause",
        "rollout.resume",
        "rollout.abort",
        "rollout.done",
        "schedule.settle",
    ),
}
TIMEOUT = 5.0  # seconds per HTTP call, at most
BACKOFF_FIRST = timedelta(seconds=1)  # before the second attempt at a row, doubling …
BACKOFF_LONGEST = timedelta(minutes=5)  # … up to this
BATCH = 200  # rows read per sink per pass
TYPE_PREFIX = "dev.flagctl."
ACTION = "notify.deliver"


class Sender(Protocol):
    def __call__(self, url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
        """POST ``body``; the HTTP status (raise OSError when no answer came)."""
        ...


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def http_post(url: str, body: bytes, headers: Mapping[str, str], timeout: float) -> int:
    """The default sender: ``urllib.request``, no redirects (a sink's URL is exact), the
    environment's proxy but for the loopback; the status of any answer, 4xx and 5xx included."""
    import urllib.error
    import urllib.request
    from urllib.parse import urlsplit

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None

    handlers: list[Any] = [NoRedirect()]
    if urlsplit(url).hostname in LOOPBACK:
        handlers.append(urllib.request.ProxyHandler({}))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, data=body, headers=dict(headers), method="POST")
    try:
        with opener.open(request, timeout=min(timeout, TIMEOUT)) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except urllib.error.URLError as exc:
        raise OSError(str(exc.reason)) from None


# ---------------------------------------------------------------- sinks and events


@dataclass(frozen=True)
class ResolvedSink:
    """A manifest's sink with what its deliverer's environment gives it."""

    name: str
    kind: str
    url: str
    secret: bytes | None
    events: tuple[str, ...]

    def wants(self, action: str) -> bool:
        return any(fnmatchcase(action, pattern) for pattern in self.events)

    def __repr__(self) -> str:  # never the secret, nor a secret URL
        return f"ResolvedSink({self.name!r}, {self.kind!r})"


def hmac_key(secret: str) -> bytes:
    """A Standard Webhooks key: ``whsec_`` then base64 (its bytes), else the text's UTF-8."""
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret.removeprefix("whsec_"), validate=True)
        except ValueError:
            raise UsageError("a whsec_ secret must be base64 after its prefix") from None
    return secret.encode()


def resolve_sinks(
    manifest: Manifest, environ: Mapping[str, str], only: str | None = None
) -> list[ResolvedSink]:
    """The manifest's sinks, their URL and key read from ``environ``; a UsageError naming
    the variable when one is unset or empty (nothing is delivered then)."""
    declared = manifest.model.notifications.sinks if manifest.model.notifications else {}
    if only is not None and only not in declared:
        raise UsageError(f"no sink {only!r} in {manifest.path}", f"sinks: {', '.join(declared) or '(none)'}")
    sinks = []
    for name, sink in declared.items():
        if only is not None and name != only:
            continue
        sinks.append(_resolve(name, sink, environ))
    return sinks


def _resolve(name: str, sink: Sink, environ: Mapping[str, str]) -> ResolvedSink:
    def needed(variable: str, what: str) -> str:
        value = environ.get(variable, "").strip()
        if not value:
            raise UsageError(
                f"sink {name}: {variable} is not set ({what})",
                f"export {variable}=… in the environment that runs flagctl notify deliver",
            )
        return value

    url = sink.url if sink.url is not None else needed(sink.url_env or "", "its URL")
    if not url.startswith(("http://", "https://")):
        raise UsageError(f"sink {name}: {sink.url_env} does not hold an http:// or https:// URL")
    secret = hmac_key(needed(sink.secret_env, "its HMAC key")) if sink.secret_env else None
    events = tuple(sink.events) if sink.events is not None else DEFAULT_EVENTS[sink.kind]
    return ResolvedSink(name, sink.kind, url, secret, events)


def event_id(row: AuditRow) -> str:
    """Stable per audit row: a retry carries the same id, so a receiver dedupes by it."""
    return f"{row.system}:{row.seq}"


def cloudevent(row: AuditRow) -> dict[str, Any]:
    """The audit row as a CloudEvents 1.0 event (structured mode)."""
    return {
        "specversion": "1.0",
        "id": event_id(row),
        "source": f"/flagctl/{row.system}",
        "type": TYPE_PREFIX + row.action,
        "time": row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "subject": row.flag or row.target,
        "datacontenttype": "application/json",
        "data": row.to_json(),
    }


def sign(secret: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The Standard Webhooks signature header value: ``v1,`` then base64 of HMAC-SHA256
    over ``id.timestamp.body``."""
    signed = msg_id.encode() + b"." + str(timestamp).encode() + b"." + body
    return "v1," + base64.b64encode(hmac.new(secret, signed, hashlib.sha256).digest()).decode()


def _who(row: AuditRow) -> str:
    return row.actor or row.db_user


def _switch(rows: list[AuditRow]) -> str | None:
    for row in rows:
        if row.target.startswith("kill_switch:"):
            return row.target.removeprefix("kill_switch:")
    return None


def slack_text(rows: list[AuditRow]) -> str:
    """One line for the rows of one change: what happened, on what, by whom, and why."""
    head = rows[0]
    switch = _switch(rows)
    flags = sorted({r.flag for r in rows if r.flag})
    what = ", ".join(flags) or _record_of(head)
    why = f" — {head.reason}" if head.reason else ""
    by = f" by {_who(head)}"
    if head.action == "kill":
        return f":rotating_light: kill {switch or what} engaged on {head.system}{by}{why}"
    if head.action == "release":
        return f":white_check_mark: release {switch or what} on {head.system}{by}{why}"
    if head.action.endswith(".refused"):
        return f":no_entry: {head.action.removesuffix('.refused')} refused on {head.system} ({what}){by}{why}"
    if head.action.startswith("rollback"):
        return f":rewind: {head.action} on {head.system} ({what}){by}{why}"
    if head.action in RUNNER_MARKS:  # the runner's decisions: the reason says what it did and why
        return f"{RUNNER_MARKS[head.action]} {head.action} on {head.system} ({what}){by}{why}"
    return f":information_source: {head.action} on {head.system} ({what}){by}{why}"


def _record_of(row: AuditRow) -> str:
    """What a row of one of flagctl's records is about, in words (a rollout's ladder, a
    schedule's change), else its table."""
    data = row.after if isinstance(row.after, dict) else row.before if isinstance(row.before, dict) else {}
    if row.target == "flagctl.rollout" and data.get("ladder"):
        return f"ladder {data['ladder']}"
    if row.target == "flagctl.schedule" and data.get("summary"):
        return f"schedule {data.get('id')}: {data['summary']}"
    return row.target


# How Slack shows a runner's decision (flagctl run: rollouts and scheduled changes).
RUNNER_MARKS = {
    "rollout.start": ":rocket:",
    "rollout.advance": ":arrow_up:",
    "rollout.rollback": ":rewind:",
    "rollout.pause": ":double_vertical_bar:",
    "rollout.resume": ":arrow_forward:",
    "rollout.abort": ":octagonal_sign:",
    "rollout.done": ":checkered_flag:",
    "schedule.settle": ":calendar:",
}


def slack_message(rows: list[AuditRow]) -> dict[str, Any]:
    text = slack_text(rows)
    head = rows[0]
    context = f"{head.system} · audit #{head.seq}" + (f"–#{rows[-1].seq}" if len(rows) > 1 else "")
    return {
        "text": text,
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": context}]},
        ],
    }


def request_for(sink: ResolvedSink, rows: list[AuditRow], now: datetime) -> tuple[str, bytes, dict[str, str]]:
    """The event id, body and headers of one delivery (a Slack sink tells of one change's
    rows at once; a CloudEvents sink gets one event per row)."""
    head = rows[0]
    msg_id = event_id(head)
    if sink.kind == "slack":
        return msg_id, json.dumps(slack_message(rows)).encode(), {"Content-Type": "application/json"}
    body = json.dumps(cloudevent(head), separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/cloudevents+json", "User-Agent": "flagctl-notify"}
    if sink.secret is not None:
        timestamp = int(now.timestamp())
        headers |= {
            "webhook-id": msg_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(sink.secret, msg_id, timestamp, body),
        }
    return msg_id, body, headers


def backoff(attempt: int) -> timedelta:
    """How long after failed attempt number ``attempt`` the next one is due."""
    doubled: timedelta = BACKOFF_FIRST * 2 ** max(0, attempt - 1)
    return min(BACKOFF_LONGEST, doubled)


# ---------------------------------------------------------------- one pass


@dataclass
class SinkReport:
    """What one pass did for one sink."""

    sink: str
    delivered: int = 0
    passed: int = 0  # rows not the sink's (its events), passed over
    failed: int = 0  # attempts that failed this pass (0 or 1: a failure stops the sink)
    error: str | None = None
    waiting_until: datetime | None = None  # the next attempt at a failing row, not due yet
    busy: bool = False  # another deliverer held the sink
    behind: bool = False  # more rows than one pass reads: another pass goes on at once

    def to_json(self) -> dict[str, Any]:
        return {
            "sink": self.sink,
            "delivered": self.delivered,
            "passed": self.passed,
            "failed": self.failed,
            "error": self.error,
            "waiting_until": self.waiting_until.isoformat() if self.waiting_until else None,
            "busy": self.busy,
        }


@dataclass
class DeliveryReport:
    sinks: list[SinkReport] = field(default_factory=list)

    @property
    def failed(self) -> int:
        return sum(s.failed for s in self.sinks)

    @property
    def delivered(self) -> int:
        return sum(s.delivered for s in self.sinks)

    def next_due(self) -> datetime | None:
        due = [s.waiting_until for s in self.sinks if s.waiting_until is not None]
        return min(due) if due else None

    def to_json(self) -> dict[str, Any]:
        return {
            "delivered": self.delivered,
            "failed": self.failed,
            "sinks": [s.to_json() for s in self.sinks],
        }


def _audit(actor: str) -> Any:
    from flagctl.store.db import AuditContext

    return AuditContext(actor=actor, reason="deliver notifications", action=ACTION, command="notify deliver")


def deliver_once(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    *,
    environ: Mapping[str, str],
    actor: str,
    sender: Sender | None = None,
    clock: Callable[[], datetime] | None = None,
    sink: str | None = None,
    timeout: float = TIMEOUT,
    batch: int = BATCH,
) -> DeliveryReport:
    """One pass over every sink (or ``sink``): deliver what is due, in seal order."""
    from flagctl.store import notify

    sinks = resolve_sinks(manifest, environ, sink)
    report = DeliveryReport()
    if not sinks:
        return report
    now = clock or (lambda: datetime.now(UTC))
    notify.seal(conn)
    for resolved in sinks:
        done = SinkReport(resolved.name)
        report.sinks.append(done)
        if not notify.try_lock(conn, manifest.system, resolved.name):
            done.busy = True
            continue
        try:
            _deliver_sink(
                conn, manifest.system, resolved, done, sender or http_post, now, timeout, batch, actor
            )
        finally:
            notify.unlock(conn, manifest.system, resolved.name)
    return report


def _groups(sink: ResolvedSink, rows: list[tuple[int, AuditRow]]) -> Iterator[list[tuple[int, AuditRow]]]:
    """The rows in deliveries: one each, or for Slack the consecutive rows of one change."""
    group: list[tuple[int, AuditRow]] = []
    for pos, row in rows:
        if group and (
            sink.kind != "slack" or (row.txid, row.action) != (group[0][1].txid, group[0][1].action)
        ):
            yield group
            group = []
        group.append((pos, row))
    if group:
        yield group


def _deliver_sink(
    conn: psycopg.Connection[Any],
    system: str,
    sink: ResolvedSink,
    done: SinkReport,
    sender: Sender,
    now: Callable[[], datetime],
    timeout: float,
    batch: int,
    actor: str,
) -> None:
    from flagctl.store import notify
    from flagctl.store.db import transaction

    audit = _audit(actor)
    with transaction(conn, audit) as tx:
        cursor = notify.start(tx, system, sink.name, notify.start_position(tx, system))
    rows = notify.pending(conn, system, cursor, batch)
    done.behind = len(rows) == batch
    passed_to: int | None = None  # rows not the sink's, up to here, not yet recorded
    for group in _groups(sink, rows):
        head = group[0][1]
        last_pos = group[-1][0]
        if not sink.wants(head.action):
            passed_to = last_pos
            done.passed += len(group)
            continue
        last = notify.last_attempt(conn, system, sink.name, head.seq)
        attempt = 1
        if last is not None and last.outcome == "failed":
            attempt = last.attempt + 1
            if last.next_attempt_at is not None and now() < last.next_attempt_at:
                done.waiting_until = last.next_attempt_at
                break
        at = now()
        msg_id, body, headers = request_for(sink, [row for _pos, row in group], at)
        status: int | None = None
        error: str | None = None
        try:
            status = sender(sink.url, body, headers, min(timeout, TIMEOUT))
            if not 200 <= status < 300:
                error = f"HTTP {status}"
        except (OSError, ValueError) as exc:  # refused, reset, timed out, unreachable
            error = str(exc) or type(exc).__name__
        with transaction(conn, audit) as tx:
            if error is None:
                notify.record(
                    tx, system, sink.name, (cursor, last_pos), head.seq, msg_id, attempt, "delivered", status
                )
                cursor, passed_to = last_pos, None
                done.delivered += 1
                continue
            if passed_to is not None:  # what was passed over stays passed
                notify.record(tx, system, sink.name, (cursor, passed_to))
                cursor, passed_to = passed_to, None
            retry = at + backoff(attempt)
            notify.record(
                tx,
                system,
                sink.name,
                (cursor, last_pos),
                head.seq,
                msg_id,
                attempt,
                "failed",
                status,
                error,
                retry,
            )
        done.failed += 1
        done.error = error
        done.waiting_until = retry
        done.behind = False
        break
    if passed_to is not None:
        with transaction(conn, audit) as tx:
            notify.record(tx, system, sink.name, (cursor, passed_to))


def follow(
    conn: psycopg.Connection[Any],
    manifest: Manifest,
    *,
    environ: Mapping[str, str],
    actor: str,
    wait: Callable[[float], object],
    clock: Callable[[], datetime] | None = None,
    sender: Sender | None = None,
    sink: str | None = None,
    interval: float = 30.0,
    passes: int | None = None,
) -> Iterator[DeliveryReport]:
    """Pass after pass, yielding each report: at once while a sink is behind, else after
    ``wait`` (a change's notification, or ``interval`` seconds, or a retry falling due)."""
    now = clock or (lambda: datetime.now(UTC))
    done = 0
    while passes is None or done < passes:
        report = deliver_once(
            conn, manifest, environ=environ, actor=actor, sender=sender, clock=now, sink=sink
        )
        done += 1
        yield report
        if passes is not None and done >= passes:
            return
        if any(s.behind for s in report.sinks):
            continue
        pause = interval
        due = report.next_due()
        if due is not None:
            pause = max(0.0, min(pause, (due - now()).total_seconds()))
        wait(pause)
