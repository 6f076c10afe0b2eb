"""Notifications (docs/notifications.md): every audited change reaches a real receiver on the
loopback, signed, in order, at least once; a dead receiver is retried and never slows a kill;
the delivery state is written only through flagctl's functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
import pytest

from flagctl.actions import notify
from flagctl.model.manifest import load_manifest
from tests.conftest import Cli
from tests.db.test_role_matrix import as_role
from tests.wire import traced

GO = ("-r", "INC-42", "-y")
SECRET = "whsec_" + base64.b64encode(b"a test key of thirty-two bytes!!").decode()

MANIFEST = """\
version: 1
system: shop
flags:
  checkout: {type: rollout, default: {enabled: false, percent: 0}}
ladders:
  co:
    flag: checkout
    stages:
      - {name: dark, enabled: false, percent: 0}
      - {name: canary, enabled: true, percent: 1}
      - {name: full, enabled: true, percent: 100}
kill_switches:
  co-off: {level: 5, set: {checkout: {enabled: false, percent: 0}}}
"""
SINKS = """\
notifications:
  sinks:
    hook: {kind: cloudevents, url_env: HOOK_URL, secret_env: HOOK_SECRET}
    chat: {kind: slack, url_env: CHAT_URL}
"""


@dataclass
class Receiver:
    """A webhook receiver on 127.0.0.1: answers each POST with the next of ``statuses``
    (then 200), keeps every request, and verifies signatures exactly as a receiver would."""

    statuses: list[int] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""

    def verified(self, key: bytes) -> list[dict[str, Any]]:
        """Each request's event, after checking its Standard Webhooks signature."""
        events = []
        for headers, body in self.requests:
            if headers["content-type"] != "application/cloudevents+json":
                continue  # a Slack message, to the same receiver
            msg_id, timestamp = headers["webhook-id"], headers["webhook-timestamp"]
            signed = f"{msg_id}.{timestamp}.".encode() + body
            expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            given = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
            assert any(hmac.compare_digest(expected, sig) for sig in given), "bad signature"
            event = json.loads(body)
            assert event["id"] == msg_id
            assert headers["content-type"] == "application/cloudevents+json"
            events.append(event)
        return events

    def deduped(self, key: bytes) -> list[dict[str, Any]]:
        seen: dict[str, dict[str, Any]] = {}
        for event in self.verified(key):
            seen.setdefault(event["id"], event)
        return list(seen.values())


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(got.statuses.pop(0) if got.statuses else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()
    server.server_close()


def dead_url() -> str:
    """A closed port on the loopback: connection refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


@pytest.fixture
def shop(make_cli: Callable[..., Cli]) -> Cli:
    cli = make_cli(MANIFEST + SINKS)
    assert cli("db", "init").exit_code == 0
    return cli


def env_for(hook: str, chat: str) -> dict[str, str]:
    return {"HOOK_URL": hook, "HOOK_SECRET": SECRET, "CHAT_URL": chat}


def deliver(cli: Cli, env: dict[str, str], *args: str) -> Any:
    return cli("notify", "deliver", *args, **env)


def test_every_change_of_a_flow_reaches_the_receiver_signed_and_in_order(
    shop: Cli, receiver: Receiver
) -> None:
    chat = Receiver()  # the Slack sink is dead here; the webhook goes on regardless
    env = env_for(receiver.url, dead_url())
    assert shop("stage", "set", "co", "canary", *GO).exit_code == 0
    assert shop("kill", "co-off", *GO).exit_code == 0
    assert shop("stage", "next", "co", *GO).exit_code == 1  # refused under the kill: audited
    assert shop("release", "co-off", *GO).exit_code == 0
    result = deliver(shop, env)
    assert result.exit_code == 1, result.stdout  # the Slack sink failed
    assert "hook: " in result.stdout and "chat: 0 delivered, failed" in result.stdout

    events = receiver.verified(notify.hmac_key(SECRET))
    trail = shop.sql("SELECT seq, action FROM flagctl.audit WHERE system = 'shop' ORDER BY seq")
    assert [e["id"] for e in events] == [f"shop:{seq}" for seq, _ in trail]  # every row, in order
    actions = [e["data"]["action"] for e in events]
    assert actions[0] == "manifest.publish"
    for wanted in ("stage.set", "kill", "stage.set.refused", "release"):
        assert wanted in actions, actions
    kill = next(e for e in events if e["type"] == "dev.flagctl.kill")
    assert kill["specversion"] == "1.0" and kill["source"] == "/flagctl/shop"
    assert kill["data"]["reason"] == "INC-42" and kill["data"]["db_user"]
    assert kill["datacontenttype"] == "application/json" and kill["time"].endswith("Z")
    assert chat.requests == []

    again = deliver(shop, env)  # nothing new for the webhook; Slack's retry not due yet
    assert "hook: 0 delivered" in again.stdout and "waiting to retry" in again.stdout
    assert len(receiver.requests) == len(events)


def test_slack_gets_one_message_per_kill_refusal_and_release(shop: Cli, receiver: Receiver) -> None:
    hook = Receiver()
    env = env_for(dead_url(), receiver.url)
    assert shop("stage", "set", "co", "canary", *GO).exit_code == 0
    assert shop("kill", "co-off", *GO).exit_code == 0
    assert shop("stage", "next", "co", *GO).exit_code == 1
    assert shop("release", "co-off", *GO).exit_code == 0
    deliver(shop, env)
    texts = [json.loads(body)["text"] for _h, body in receiver.requests]
    assert texts[0].startswith(":rotating_light: kill co-off engaged on shop by ")
    assert texts[0].endswith(" — INC-42")
    assert texts[1].startswith(":no_entry: stage.set refused on shop (ladder:co)")
    assert texts[2].startswith(":white_check_mark: release co-off on shop")
    assert len(texts) == 3  # the stage move is not a Slack sink's by default
    assert hook.requests == []


def test_a_failed_attempt_is_sent_again_with_the_same_id(shop: Cli, receiver: Receiver) -> None:
    env = env_for(receiver.url, receiver.url)
    receiver.statuses = [500]
    assert shop("kill", "co-off", *GO).exit_code == 0
    first = deliver(shop, env, "--sink", "hook")
    assert first.exit_code == 1 and "HTTP 500" in first.stdout
    failed = json.loads(shop("notify", "log", "--failed", "-o", "json").stdout)["deliveries"]
    assert [(d["attempt"], d["http_status"], d["outcome"]) for d in failed] == [(1, 500, "failed")]
    assert failed[0]["next_attempt_at"] is not None
    shop.clock.advance(seconds=1)  # the backoff: 1 s, on the injected clock
    second = deliver(shop, env, "--sink", "hook")
    assert second.exit_code == 0, second.stdout
    ids = [json.loads(body)["id"] for _h, body in receiver.requests]
    assert ids[0] == ids[1]  # the same event again
    key = notify.hmac_key(SECRET)
    deduped = receiver.deduped(key)
    assert len(deduped) == len(receiver.requests) - 1
    assert len({e["id"] for e in deduped}) == len(deduped)


def test_at_least_once_a_lost_answer_is_a_harmless_duplicate(shop: Cli, receiver: Receiver) -> None:
    """The receiver took it but the answer was lost: sent again, and a receiver that dedupes
    by id holds each event once."""
    loaded = load_manifest(shop.manifest)
    assert shop("kill", "co-off", *GO).exit_code == 0
    lost = [True]

    def sender(url: str, body: bytes, headers: Any, timeout: float) -> int:
        status = notify.http_post(url, body, headers, timeout)
        if lost and lost.pop():
            raise TimeoutError("timed out")
        return status

    env = env_for(receiver.url, receiver.url)
    with psycopg.connect(shop.dsn, autocommit=True) as conn:
        first = notify.deliver_once(
            conn, loaded, environ=env, actor="t", sender=sender, clock=shop.clock, sink="hook"
        )
        assert first.failed == 1
        shop.clock.advance(seconds=5)
        notify.deliver_once(
            conn, loaded, environ=env, actor="t", sender=sender, clock=shop.clock, sink="hook"
        )
    ids = [json.loads(body)["id"] for _h, body in receiver.requests]
    assert len(ids) == len(set(ids)) + 1
    trail = shop.sql("SELECT count(*) FROM flagctl.audit WHERE system = 'shop'")[0][0]
    assert len(receiver.deduped(notify.hmac_key(SECRET))) == trail


def test_a_dead_receiver_fails_in_the_log_and_is_delivered_when_it_comes_back(
    shop: Cli, receiver: Receiver
) -> None:
    dead = env_for(dead_url(), dead_url())
    assert shop("kill", "co-off", *GO).exit_code == 0
    result = deliver(shop, dead)
    assert result.exit_code == 1
    log = shop("notify", "log", "--failed")
    assert log.exit_code == 0 and "hook" in log.stdout and "chat" in log.stdout and "failed" in log.stdout
    for _ in range(3):  # still dead: each retry is logged, later and later
        shop.clock.advance(minutes=10)
        deliver(shop, dead)
    failed = json.loads(shop("notify", "log", "--failed", "--sink", "hook", "-o", "json").stdout)[
        "deliveries"
    ]
    assert [d["attempt"] for d in failed] == [4, 3, 2, 1]
    assert all("refused" in (d["error"] or "").lower() for d in failed), failed
    shop.clock.advance(minutes=10)
    back = deliver(shop, env_for(receiver.url, receiver.url))
    assert back.exit_code == 0, back.stdout
    trail = shop.sql("SELECT count(*) FROM flagctl.audit WHERE system = 'shop'")[0][0]
    assert len(receiver.deduped(notify.hmac_key(SECRET))) == trail
    document = json.loads(shop("notify", "log", "-o", "json").stdout)
    assert document["deliveries"][0]["outcome"] == "delivered"
    assert {s["sink"]: s["behind"] for s in document["sinks"]} == {"chat": 0, "hook": 0}


def test_a_row_committed_out_of_seq_order_is_still_delivered(shop: Cli, receiver: Receiver) -> None:
    """Row N is written first and committed last: a cursor over seq would pass it by."""
    env = env_for(receiver.url, receiver.url)
    with psycopg.connect(shop.dsn) as slow:
        slow.execute("SELECT flagctl.audit_event('note', 'shop', NULL, 'test', '{}')")
        (early,) = slow.execute("SELECT max(seq) FROM flagctl.audit").fetchone() or (0,)
        assert shop("stage", "set", "co", "canary", *GO).exit_code == 0
        assert deliver(shop, env, "--sink", "hook").exit_code == 0
        ids = [json.loads(body)["id"] for _h, body in receiver.requests]
        assert f"shop:{early}" not in ids and ids  # not committed yet: not delivered
        slow.commit()
    assert deliver(shop, env, "--sink", "hook").exit_code == 0
    ids = [json.loads(body)["id"] for _h, body in receiver.requests]
    assert ids[-1] == f"shop:{early}"
    later = shop.sql("SELECT max(seq) FROM flagctl.audit WHERE action = 'stage.set'")[0][0]
    assert later > early and f"shop:{later}" in ids


def test_a_kill_with_a_dead_sink_sends_what_it_sent_without_one(
    make_cli: Callable[..., Cli], monkeypatch: pytest.MonkeyPatch
) -> None:
    counts = []
    for system, sinks in (("plain", ""), ("notified", SINKS)):
        cli = make_cli(MANIFEST.replace("system: shop", f"system: {system}") + sinks)
        assert cli("db", "init").exit_code == 0
        with traced(monkeypatch) as wire:
            result = cli("kill", "co-off", *GO, **env_for(dead_url(), dead_url()))
        assert result.exit_code == 0, result.stderr
        counts.append((len(wire.until_commit), len(wire.statements), wire.round_trips))
    assert counts[0] == counts[1]


def test_a_second_deliverer_passes_a_held_sink_by(shop: Cli, receiver: Receiver) -> None:
    loaded = load_manifest(shop.manifest)
    env = env_for(receiver.url, receiver.url)
    with (
        psycopg.connect(shop.dsn, autocommit=True) as other,
        psycopg.connect(shop.dsn, autocommit=True) as conn,
    ):
        assert other.execute(notify_lock_sql(), ("shop", "hook")).fetchone() == (True,)
        report = notify.deliver_once(conn, loaded, environ=env, actor="t", clock=shop.clock)
        assert [(s.sink, s.busy) for s in report.sinks] == [("hook", True), ("chat", False)]
    assert all("webhook-id" not in h for h, _ in receiver.requests)  # only Slack's


def notify_lock_sql() -> str:
    from flagctl.store.notify import TRY_LOCK

    return TRY_LOCK


def test_follow_delivers_each_change_and_waits_on_the_injected_sleeper(shop: Cli, receiver: Receiver) -> None:
    env = env_for(receiver.url, receiver.url)
    done = [False]

    def change_then(seconds: float) -> None:
        if not done[0]:
            done[0] = True
            assert shop("kill", "co-off", *GO).exit_code == 0

    shop.sleeper.hooks.append(change_then)
    result = deliver(shop, env, "--follow", "--count", "2", "--interval", "5", "-o", "json")
    assert result.exit_code == 0, result.stdout + result.stderr
    passes = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(passes) == 2 and passes[1]["delivered"] >= 2
    assert shop.sleeper.slept == [5.0]


def test_no_flagctl_role_writes_the_delivery_state_by_hand(shop: Cli) -> None:
    for role in ("viewer", "release", "security", "ops", "admin"):
        with as_role(shop, role) as (_name, dsn, _cli):
            for statement in (
                "INSERT INTO flagctl.notify_cursor (system, sink, pos) VALUES ('shop', 'hook', 999)",
                "UPDATE flagctl.notify_cursor SET pos = 999",
                "INSERT INTO flagctl.notify_delivery (system, sink, audit_seq, pos, event_id, attempt, outcome)"
                " VALUES ('shop', 'hook', 1, 1, 'x', 1, 'delivered')",
                "DELETE FROM flagctl.notify_delivery",
            ):
                with psycopg.connect(dsn, autocommit=True) as conn, conn.transaction(force_rollback=True):
                    if role != "viewer":  # declared, as a deliverer's change is
                        conn.execute("SELECT flagctl.begin_change('notify.deliver', 'me', 'x', NULL, NULL)")
                    with pytest.raises(psycopg.errors.InsufficientPrivilege):
                        conn.execute(statement.encode())
            # and the function only inside a declared notify.* change
            with psycopg.connect(dsn) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute("SELECT flagctl.notify_start('shop', 'hook', 0)")


def test_a_writing_role_delivers_and_a_viewer_may_not(shop: Cli, receiver: Receiver) -> None:
    env = env_for(receiver.url, receiver.url)
    with as_role(shop, "viewer") as (_n, _dsn, viewer):
        refused = deliver(viewer, env)
        assert refused.exit_code == 5, refused.stdout + refused.stderr
        assert "Traceback" not in refused.stderr
        assert viewer("notify", "log").exit_code == 0
    with as_role(shop, "security") as (_n, _dsn, security):
        assert deliver(security, env).exit_code == 0
    assert receiver.requests


def test_a_bad_sink_or_a_missing_secret_is_exit_2_and_nothing_is_sent(
    make_cli: Callable[..., Cli], shop: Cli, receiver: Receiver
) -> None:
    bad = make_cli(MANIFEST + SINKS.replace("secret_env: HOOK_SECRET", "events: []"))
    result = bad("manifest", "validate")
    assert result.exit_code == 2
    assert "notifications.sinks.hook.secret_env" in result.stderr
    assert "notifications.sinks.hook.events" in result.stderr
    missing = deliver(shop, {"HOOK_URL": receiver.url, "CHAT_URL": receiver.url})
    assert missing.exit_code == 2 and "HOOK_SECRET is not set" in missing.stderr
    assert "Traceback" not in missing.stderr
    assert receiver.requests == []
    assert shop.sql("SELECT count(*) FROM flagctl.notify_cursor") == [(0,)]


def test_the_runner_delivers_too_and_a_missing_secret_stops_it_before_it_starts(
    shop: Cli, receiver: Receiver
) -> None:
    env = env_for(receiver.url, receiver.url)
    assert shop("kill", "co-off", *GO).exit_code == 0
    ran = shop("run", "--once", "-o", "json", "-y", **env)
    assert ran.exit_code == 0, ran.stderr
    (decision,) = [json.loads(line) for line in ran.stdout.splitlines()]
    assert decision["kind"] == "notify" and decision["did"] == "delivered"
    assert any(e["data"]["action"] == "kill" for e in receiver.verified(notify.hmac_key(SECRET)))
    missing = shop("run", "--once", "-y", **{**env, "HOOK_SECRET": ""})
    assert missing.exit_code == 2 and "HOOK_SECRET" in missing.stderr


def test_slack_hears_the_runners_decisions_not_each_analysis(
    make_cli: Callable[..., Cli], receiver: Receiver
) -> None:
    ladder = "    analysis: {guardrails: [ok], interval: 1m, passes: 1, failures: 1}\n"
    guard = "guardrails:\n  ok: {sql: 'select 0, 100', max: 1}\n"
    cli = make_cli(MANIFEST.replace("kill_switches:", ladder + "kill_switches:") + guard + SINKS)
    assert cli("db", "init").exit_code == 0
    env = env_for(dead_url(), receiver.url)
    assert cli("rollout", "start", "co", "--to", "canary", *GO).exit_code == 0
    ran = cli("run", "--once", "-o", "json", "-y", **env)
    assert ran.exit_code == 0, ran.stderr
    trail = [
        r[0] for r in cli.sql("SELECT action FROM flagctl.audit WHERE action LIKE 'rollout.%' ORDER BY seq")
    ]
    assert {"rollout.analysis", "rollout.advance", "rollout.done"} <= set(trail)
    cli("run", "--once", "-y", **env)  # delivers what the first pass wrote after its delivery
    texts = [json.loads(body)["text"] for _h, body in receiver.requests]
    assert any(t.startswith(":rocket: rollout.start on shop (ladder co)") for t in texts), texts
    assert any(t.startswith(":arrow_up: rollout.advance on shop (checkout)") for t in texts), texts
    assert any(t.startswith(":checkered_flag: rollout.done on shop (ladder co)") for t in texts), texts
    assert not any("rollout.analysis" in t for t in texts), texts
