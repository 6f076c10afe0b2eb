"""flagctl serve: OFREP read by the stock OpenFeature OFREP provider with the gate's
semantics, the bulk ETag, push, acknowledgements through the relay (kill --wait-ack names a
stalled client behind it), tokens, one database connection per system, and its health."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
from typing import Any

import httpx
import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from flagctl.gate import Gate
from flagctl.gate.resolve import reason_of
from flagctl.serve.relay import Relay
from tests.conftest import CANARY_MANIFEST, RECSYS_MANIFEST, Cli
from tests.serving import Serving, create_token, serving

GO = ("-r", "INC-1: serve test", "-y")


def provider_client(served: Serving, name: str, domain: str) -> Any:
    from openfeature.contrib.provider.ofrep import OFREPProvider

    provider = OFREPProvider(
        served.url, headers_factory=lambda: served.headers(name), timeout=60
    )  # a loaded CI
    api.set_provider(provider, domain=domain)
    return api.get_client(domain)


def test_the_stock_ofrep_provider_reads_the_gates_decisions(canary: Cli) -> None:
    canary("stage", "set", "canary", "internal", *GO)
    canary("stage", "set", "canary", "50pct", *GO)
    canary("exempt", "add", "canary_feature", "publisher:42", "--allow", *GO)
    canary("exempt", "add", "canary_feature", "publisher:7", "--deny", *GO)
    with serving(canary) as served, Gate(canary.dsn, manifest=CANARY_MANIFEST, register=False) as gate:
        assert gate.wait_ready()
        client = provider_client(served, "pod-1", "ofrep-decisions")
        contexts = [
            (f"user-{i}", {"publisher": str(i % 50)} | ({"internal": True} if i % 9 == 0 else {}))
            for i in range(60)
        ]
        rules = set()
        for subject, attributes in contexts:
            details = client.get_boolean_details(
                "canary_feature", True, EvaluationContext(subject, attributes)
            )
            scopes = [f"publisher:{attributes['publisher']}"]
            decision = gate.decide(
                "canary_feature", subject, scopes, internal=attributes.get("internal") is True
            )
            assert decision is not None and details.value is decision.eligible, subject
            assert details.reason == reason_of(decision.rule) and details.variant == (
                "on" if decision.eligible else "off"
            )
            assert (details.flag_metadata["rule"], details.flag_metadata.get("bucket")) == (
                decision.rule,
                decision.bucket,
            )
            rules.add(details.reason)
        assert rules == {Reason.SPLIT, Reason.TARGETING_MATCH}  # buckets, exemptions, the internal audience

        missing = client.get_boolean_details("no_such_flag", True, EvaluationContext("u"))
        assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
        no_key = client.get_boolean_details("canary_feature", False, EvaluationContext())
        assert no_key.error_code == ErrorCode.TARGETING_KEY_MISSING
        wrong = client.get_string_details("canary_feature", "x", EvaluationContext("u"))
        assert wrong.error_code == ErrorCode.TYPE_MISMATCH

        seq = served.relay.seq or 0
        canary("kill", "canary-off", *GO)
        assert served.relay.wait_for_seq(seq + 1)
        killed = client.get_boolean_details(
            "canary_feature", True, EvaluationContext("u", {"publisher": "42"})
        )
        assert (killed.value, killed.reason) == (False, Reason.DISABLED)  # the kill over the allow exemption


def test_typed_values_keep_their_types_through_ofrep(recsys: Cli) -> None:
    assert recsys("set", "disable_cf", "true", "--scope", "region:eu", *GO).exit_code == 0
    assert recsys("set", "policy_mode", "content_only", "--scope", "region:eu", *GO).exit_code == 0
    with serving(recsys, RECSYS_MANIFEST) as served:
        client = provider_client(served, "pod-1", "ofrep-values")
        assert client.get_float_value("alpha_override", 0.9, EvaluationContext("u")) == 0.5
        assert client.get_string_value("policy_mode", "x", EvaluationContext("u")) == "hybrid_default"
        eu = client.get_string_details("policy_mode", "x", EvaluationContext("u", {"region": "eu"}))
        assert (eu.value, eu.reason, eu.variant) == ("content_only", Reason.STATIC, "content_only")
        assert (
            client.get_boolean_details("policy_mode", True, EvaluationContext("u")).error_code
            == ErrorCode.TYPE_MISMATCH
        )


def test_bulk_evaluation_answers_304_until_a_change(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    with serving(ws8) as served, served.http() as http:
        body = {"context": {"targetingKey": "resume-1"}}
        first = http.post("/ofrep/v1/evaluate/flags", json=body, headers=served.headers("pod-1"))
        assert first.status_code == 200, first.text
        tag = first.headers["etag"]
        assert [f["key"] for f in first.json()["flags"]] == ["p3_advisory"]
        again = http.post(
            "/ofrep/v1/evaluate/flags", json=body, headers={**served.headers(), "If-None-Match": tag}
        )
        assert (again.status_code, again.content) == (304, b"")
        other = http.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "resume-2"}},
                          headers={**served.headers(), "If-None-Match": tag})  # fmt: skip
        assert other.status_code == 200  # another context: not the cached answer
        seq = served.relay.seq or 0
        ws8("kill", "p3-off", *GO)
        assert served.relay.wait_for_seq(seq + 1)
        after = http.post(
            "/ofrep/v1/evaluate/flags", json=body, headers={**served.headers(), "If-None-Match": tag}
        )
        assert after.status_code == 200 and after.headers["etag"] != tag
        assert after.json()["flags"][0]["value"] is False and after.json()["flags"][0]["reason"] == "DISABLED"
        assert after.headers["etag"].startswith(f'"{served.relay.version()}.')


def test_bad_requests_get_the_protocols_errors(ws8: Cli) -> None:
    with serving(ws8) as served, served.http() as http:
        url = "/ofrep/v1/evaluate/flags/p3_advisory"
        parse = http.post(url, content=b"{nope", headers=served.headers())
        assert (parse.status_code, parse.json()["errorCode"]) == (400, "PARSE_ERROR")
        context = http.post(url, json={"context": ["a"]}, headers=served.headers())
        assert (context.status_code, context.json()["errorCode"]) == (400, "INVALID_CONTEXT")
        key = http.post(url, json={"context": {}}, headers=served.headers())
        assert (key.status_code, key.json()["errorCode"]) == (400, "TARGETING_KEY_MISSING")
        missing = http.post("/ofrep/v1/evaluate/flags/nope", json={}, headers=served.headers())
        assert (missing.status_code, missing.json()["errorCode"]) == (404, "FLAG_NOT_FOUND")


class Events:
    """A push stream's events, read line by line as they arrive (comments skipped)."""

    def __init__(self, response: httpx.Response) -> None:
        self.lines = response.iter_lines()

    def next(self, count: int = 1) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        kind = None
        for line in self.lines:
            if line.startswith("event: "):
                kind = line.removeprefix("event: ")
            elif line.startswith("data: "):
                found.append({"event": kind, **json.loads(line.removeprefix("data: "))})
                if len(found) == count:
                    return found
        raise AssertionError(f"the stream ended after {found}")


def test_push_announces_a_kill_and_the_refetch_sees_it_off(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "full", *GO)
    with (
        serving(ws8) as served,
        served.http() as http,
        http.stream("GET", "/flagctl/v1/events", headers=served.headers("pod-1")) as stream,
    ):
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = Events(stream)
        (hello,) = events.next()
        assert hello["event"] == "hello" and hello["seq"] == served.relay.seq and hello["client"] == "pod-1"
        assert (hello["keepalive"], hello["ready"]) == (1.0, True)  # how long a silence means dead; current
        ws8("kill", "p3-off", *GO)
        (change,) = events.next()
        assert change["event"] == "change" and change["seq"] > hello["seq"]
        assert change["version"] == served.relay.version()
        evaluated = http.post(
            "/ofrep/v1/evaluate/flags/p3_advisory", json={"context": {"targetingKey": "r"}},
            headers=served.headers("pod-1"),
        ).json()  # fmt: skip
        assert (evaluated["value"], evaluated["reason"]) == (False, "DISABLED")


def subscriber(
    served: Serving, name: str, refetch: bool, ready: threading.Event, stop: threading.Event
) -> None:
    """A client on the push stream; ``refetch``: it fetches at each change (a stalled one does not)."""
    with contextlib.suppress(httpx.HTTPError, AssertionError):  # the relay shutting down ends it
        _subscribe(served, name, refetch, ready, stop)


def _subscribe(
    served: Serving, name: str, refetch: bool, ready: threading.Event, stop: threading.Event
) -> None:
    with (
        served.http() as http,
        http.stream("GET", "/flagctl/v1/events", headers=served.headers(name)) as stream,
    ):
        http.post(
            "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "r"}}, headers=served.headers(name)
        )
        events = Events(stream)
        events.next()
        ready.set()
        for event in iter(lambda: events.next()[0], None):
            if stop.is_set():
                return
            if refetch and event["event"] == "change":
                http.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "r"}},
                          headers=served.headers(name))  # fmt: skip


def test_wait_ack_waits_for_clients_behind_the_relay_and_names_a_stalled_one(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    with serving(ws8) as served:
        stop = threading.Event()
        ready = {name: threading.Event() for name in ("pod-a", "pod-b")}
        threads = [
            threading.Thread(
                target=subscriber, args=(served, name, name == "pod-a", ready[name], stop), daemon=True
            )
            for name in ready
        ]
        for thread in threads:
            thread.start()
        for event in ready.values():
            assert event.wait(10)
        relay_id = served.relay._client
        assert served.relay.wait_written(lambda r: len(_behind(ws8)) == 2)  # registered by the relay's thread
        listed = json.loads(ws8("clients", "-o", "json").stdout)["clients"]
        assert [(c["application"], c["relay"]) for c in listed] == [
            ("flagctl serve", None), ("checkout-web", relay_id), ("checkout-web", relay_id),
        ]  # fmt: skip
        assert sorted(c["host"] for c in listed[1:]) == ["pod-a", "pod-b"]
        table = ws8("clients").stdout.splitlines()[2:]  # under the header: the relay, then its clients
        assert "flagctl serve" in table[0] and all(
            "└" in row and f"via {relay_id}" in row for row in table[1:]
        )

        result = ws8("kill", "p3-off", "--wait-ack", "--timeout", "3s", *GO)
        assert result.exit_code == 1, result.stderr
        assert f"pod-b (checkout-web, behind relay {relay_id})" in result.stderr
        assert "pod-a" not in result.stderr and "did not apply the kill" in result.stderr
        assert ws8.sql("SELECT enabled FROM p3_feature_state") == [(False,)]  # the kill stays engaged
        stop.set()
    # the relay closed: it and the clients behind it are gone
    assert json.loads(ws8("clients", "-o", "json").stdout)["clients"] == []


def _behind(cli: Cli) -> list[tuple[Any, ...]]:
    return cli.sql("SELECT id FROM flagctl.clients WHERE relay IS NOT NULL")


def test_wait_ack_confirms_when_every_client_behind_the_relay_refetched(ws8: Cli) -> None:
    ws8("stage", "set", "p3", "canary", *GO)
    with serving(ws8) as served:
        stop, ready = threading.Event(), threading.Event()
        threading.Thread(target=subscriber, args=(served, "pod-a", True, ready, stop), daemon=True).start()
        assert ready.wait(10)
        assert served.relay.wait_written(lambda r: len(_behind(ws8)) == 1)
        result = ws8("kill", "p3-off", "--wait-ack", "--timeout", "10s", *GO)
        assert result.exit_code == 0, result.stderr
        assert "confirmed: all 2 live gate clients applied the kill" in result.stderr
        stop.set()


def test_tokens_are_stored_hashed_refused_without_and_after_revoke(ws8: Cli) -> None:
    with serving(ws8) as served, served.http() as http:
        url, body = "/ofrep/v1/evaluate/flags/p3_advisory", {"context": {"targetingKey": "r"}}
        assert http.post(url, json=body, headers=served.headers()).status_code == 200
        none = http.post(url, json=body)
        assert none.status_code == 401 and none.headers["www-authenticate"].startswith("Bearer")
        assert http.post(url, json=body, headers=served.headers(token="fct_guess")).status_code == 401
        # only the hash is kept: not in the table, not in the audit trail
        assert ws8.sql("SELECT hash FROM flagctl.token") == [
            (hashlib.sha256(served.token.encode()).hexdigest(),)
        ]
        assert ws8.sql(
            "SELECT count(*) FROM flagctl.audit WHERE strpos(after::text, %s) > 0", (served.token,)
        ) == [(0,)]
        assert ws8.sql("SELECT action, target FROM flagctl.audit WHERE target LIKE 'token:%'") == [
            ("tokens.create", "token:checkout-web")
        ]
        listed = ws8("tokens", "list", "-o", "json")
        assert [t["name"] for t in json.loads(listed.stdout)["tokens"]] == ["checkout-web"]
        assert served.token not in listed.stdout
        again = ws8("tokens", "create", "checkout-web", *GO)
        assert again.exit_code == 2 and "already has a live token" in again.stderr

        seq = served.relay.seq or 0
        assert ws8("tokens", "revoke", "checkout-web", *GO).exit_code == 0
        assert served.relay.wait_for_seq(seq + 1)
        assert http.post(url, json=body, headers=served.headers()).status_code == 401
        assert ws8("tokens", "list").stdout.startswith("no token is live")


def test_a_dry_run_shows_no_token(ws8: Cli) -> None:
    result = ws8("tokens", "create", "checkout-web", "--dry-run", "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert "token" not in json.loads(result.stdout) and ws8.sql("SELECT count(*) FROM flagctl.token") == [
        (0,)
    ]
    assert ws8("tokens", "create", "Bad Name", *GO).exit_code == 2


def test_the_relay_holds_one_database_connection_for_any_number_of_clients(ws8: Cli) -> None:
    dbname = ws8.sql("SELECT current_database()")[0][0]

    def backends() -> int:
        query = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'flagctl-gate'"
        )
        return int(ws8.sql(query, (dbname,))[0][0])

    with serving(ws8) as served, served.http() as http:
        streams = [
            http.stream("GET", "/flagctl/v1/events", headers=served.headers(f"pod-{i}")) for i in range(20)
        ]
        opened = [s.__enter__() for s in streams]
        for response in opened:
            Events(response).next()
        for i in range(100):
            http.post("/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": f"r{i}"}},
                      headers=served.headers(f"pod-{i % 20}"))  # fmt: skip
        assert served.relay.wait_written(lambda r: len(_behind(ws8)) == 20)
        assert backends() == 1
        for stream in streams:
            stream.__exit__(None, None, None)


def test_health_readiness_and_metrics(ws8: Cli) -> None:
    with serving(ws8, start=False) as served, served.http() as http:
        assert http.get("/healthz").status_code == 200
        waiting = http.get("/readyz")
        assert waiting.status_code == 503 and waiting.json()["systems"]["phase3"]["ready"] is False
        early = http.post("/ofrep/v1/evaluate/flags/p3_advisory", json={"context": {"targetingKey": "r"}},
                          headers=served.headers())  # fmt: skip
        assert early.status_code == 503 and early.headers["retry-after"] == "1"
        served.relay.start()
        assert served.relay.wait_ready(15)
        assert http.get("/readyz").json() == {
            "ready": True, "systems": {"phase3": {"ready": True, "seq": served.relay.seq, "age_seconds": pytest.approx(0, abs=30)}},
        }  # fmt: skip
        for i in range(3):
            http.post(
                "/ofrep/v1/evaluate/flags",
                json={"context": {"targetingKey": f"r{i}"}},
                headers=served.headers(),
            )
        http.post("/ofrep/v1/evaluate/flags", json={})  # no token
        metrics = http.get("/metrics").text
        assert f'flagctl_serve_sequence{{system="phase3"}} {float(served.relay.seq or 0)}' in metrics
        assert 'flagctl_serve_evaluations_total{system="phase3"} 3.0' in metrics
        assert 'flagctl_serve_ready{system="phase3"} 1.0' in metrics
        assert "flagctl_serve_unauthorized_total 1.0" in metrics
        served.relay.close()


def test_a_relay_on_the_published_catalogue(ws8: Cli) -> None:
    assert ws8("manifest", "publish", *GO).exit_code == 0
    with serving(ws8, system="phase3") as served, served.http() as http:
        found = http.post(
            "/ofrep/v1/evaluate/flags", json={"context": {"targetingKey": "r"}}, headers=served.headers()
        )
        assert [f["key"] for f in found.json()["flags"]] == ["p3_advisory"]
    with pytest.raises(ValueError):
        Relay(ws8.dsn)


def test_serve_without_its_extra_says_what_to_install(ws8: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    result = ws8("serve")
    assert result.exit_code == 2 and "pip install 'flagctl[serve]'" in result.stderr
    assert create_token  # the helper the other serve tests use


def test_another_session_cannot_acknowledge_or_remove_the_clients_behind_a_relay(ws8: Cli) -> None:
    """As an attacker with the relay's own database user in psql: the rows of the clients
    behind a relay belong to the relay's backend; acknowledging them (so a kill looks
    confirmed), registering under the relay, or removing them does nothing."""
    ws8("stage", "set", "p3", "canary", *GO)
    with serving(ws8) as served, served.http() as http:
        http.post(
            "/ofrep/v1/evaluate/flags",
            json={"context": {"targetingKey": "r"}},
            headers=served.headers("pod-x"),
        )
        assert served.relay.wait_written(lambda r: len(_behind(ws8)) == 1)
        ((row, seq),) = ws8.sql("SELECT id, applied_seq FROM flagctl.clients WHERE relay IS NOT NULL")
        relay_id = served.relay._client
        assert ws8.sql(
            "SELECT count(*) FROM flagctl.client_ack_many(ARRAY[%s]::bigint[], ARRAY[999999]::bigint[])",
            (row,),
        ) == [(0,)]
        assert ws8.sql("SELECT flagctl.client_register_behind(%s, 'forged', 'x')", (relay_id,)) == [(None,)]
        assert ws8.sql("SELECT flagctl.client_unregister(%s)", (row,)) == [(False,)]
        assert ws8.sql("SELECT id, applied_seq FROM flagctl.clients WHERE relay IS NOT NULL") == [(row, seq)]


def test_serve_on_a_database_without_flagctls_schema_says_to_install_it(db: str) -> None:
    from tests.conftest import WS8_MANIFEST

    result = Cli(db, WS8_MANIFEST)("serve", "--port", "0")
    assert result.exit_code == 2 and "flagctl's schema is not installed" in result.stderr
    assert "flagctl db init" in result.stderr
