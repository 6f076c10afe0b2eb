"""A guardrail's source in the manifest: exactly one of ``sql:`` or ``prometheus:``, and a
Prometheus source that can be asked — each mistake named by its key path, exit 2."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from flagctl.errors import UsageError
from flagctl.model.manifest import ManifestError, parse_manifest
from flagctl.verify.prometheus import prometheus_url, shown_url
from tests.unit.test_manifest_validate import flagctl

HEAD = "version: 1\nsystem: s\nflags:\n  f: {type: bool}\nguardrails:\n  g: "


def problems(guard: str) -> list[str]:
    with pytest.raises(ManifestError) as caught:
        parse_manifest(HEAD + guard)
    return list(caught.value.problems)


@pytest.mark.parametrize(
    ("guard", "problem"),
    [
        ("{max: 1}", "guardrails.g: give exactly one of sql: or prometheus: (got neither)"),
        ("{sql: 'select 1', prometheus: {query: up}, max: 1}",
         "guardrails.g: give exactly one of sql: or prometheus: (got both)"),
        ("{prometheus: {query: '  '}, max: 1}", "guardrails.g.prometheus.query: empty; give a PromQL expression"),
        ("{prometheus: {query: up, samples: ''}, max: 1}",
         "guardrails.g.prometheus.samples: empty; give a PromQL expression"),
        ("{prometheus: {query: up, url: 'ftp://prometheus'}, max: 1}",
         "guardrails.g.prometheus.url: expected an http:// or https:// URL (e.g. http://prometheus:9090), "
         "got 'ftp://prometheus'"),
        ("{prometheus: {query: up, url: 'prometheus:9090'}, max: 1}", "guardrails.g.prometheus.url: expected"),
        ("{prometheus: {query: up, url: 'http://p:port'}, max: 1}", "guardrails.g.prometheus.url: expected"),
        ("{prometheus: {url: 'http://p:9090'}, max: 1}", "guardrails.g.prometheus.query: required key is missing"),
        ("{prometheus: {query: up, step: 1m}, max: 1}", "guardrails.g.prometheus.step: unknown key"),
        ("{prometheus: {query: up}, max: 1, min_samples: 10}",
         "guardrails.g.min_samples: a prometheus guardrail needs prometheus.samples: too"),
        ("{sql: '', max: 1}", "guardrails.g.sql: empty; give a read-only query"),
    ],
)  # fmt: skip
def test_a_wrong_source_is_named_by_its_key_path(guard: str, problem: str) -> None:
    assert any(p.startswith(problem) for p in problems(guard)), problems(guard)


def test_a_prometheus_guardrail_keeps_the_other_keys() -> None:
    model = parse_manifest(
        HEAD
        + "{prometheus: {query: 'sum(rate(x[5m]))', url: 'https://p.example:9090/prom', samples: 'sum(y)'},"
        " min: 1, severity: P2, timeout: 2s, min_samples: 5, on_no_data: inconclusive, on_error: inconclusive}"
    ).model
    guard = model.guardrails["g"]
    assert guard.source == "prometheus" and guard.sql is None
    assert guard.prometheus is not None and guard.prometheus.url == "https://p.example:9090/prom"
    assert (guard.min, guard.severity, guard.timeout, guard.min_samples) == (1, "P2", "2s", 5)
    assert parse_manifest(HEAD + "{sql: 'select 1', max: 1}").model.guardrails["g"].source == "sql"


def test_manifest_validate_exits_2_with_the_key_path(tmp_path: Path) -> None:
    path = tmp_path / "flagctl.yaml"
    path.write_text(
        HEAD + "{sql: 'select 1', prometheus: {query: up}, max: 1}\n"
        "  h: {prometheus: {query: up, url: 'file:///etc/passwd'}, max: 1}\n"
    )
    result: subprocess.CompletedProcess[str] = flagctl("manifest", "validate", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert "guardrails.g: give exactly one of sql: or prometheus: (got both)" in result.stderr
    assert "guardrails.h.prometheus.url: expected an http:// or https:// URL" in result.stderr
    problems = json.loads(flagctl("manifest", "validate", str(path), "-o", "json").stdout)["error"][
        "problems"
    ]
    assert len(problems) == 2


def test_the_url_precedence_manifest_then_environment() -> None:
    assert prometheus_url("http://a:9090", {"FLAGCTL_PROMETHEUS_URL": "http://b:9090"}) == "http://a:9090"
    assert prometheus_url(None, {"FLAGCTL_PROMETHEUS_URL": " http://b:9090 "}) == "http://b:9090"
    with pytest.raises(UsageError, match="needs the server's URL"):
        prometheus_url(None, {})
    with pytest.raises(UsageError, match="FLAGCTL_PROMETHEUS_URL: expected an http"):
        prometheus_url(None, {"FLAGCTL_PROMETHEUS_URL": "prometheus:9090"})


def test_a_password_in_the_url_is_never_shown() -> None:
    assert shown_url("https://ops:s3cret@prom.example:9443/prom/") == "https://prom.example:9443/prom"


def test_a_prometheus_value_is_judged_by_the_rules_a_sql_row_is() -> None:
    from flagctl.model.manifest import Guardrail, PrometheusQuery
    from flagctl.verify.guardrails import Verdict, judge, judge_value

    sql = Guardrail(sql="select 1", max=0.01, min_samples=100)
    prom = Guardrail(prometheus=PrometheusQuery(query="up", samples="n"), max=0.01, min_samples=100)
    for value, samples in [(0.004, 1200), (0.02, 1200), (0.02, 12), (0.001, 0)]:
        from_sql = judge("g", sql, (value, samples))
        from_prometheus = judge_value("g", prom, value, samples)
        assert (from_prometheus.verdict, from_prometheus.counts_as) == (from_sql.verdict, from_sql.counts_as)
        assert (from_sql.to_json()["source"], from_prometheus.to_json()["source"]) == ("sql", "prometheus")
    assert judge_value("g", prom, float("nan"), 500).verdict is Verdict.ERROR
    assert judge_value("g", prom, 0.001, None).verdict is Verdict.ERROR  # min_samples needs a count


def test_a_server_that_does_not_speak_http_is_a_query_failure_not_a_traceback() -> None:
    import socket
    import threading

    from flagctl.model.manifest import PrometheusQuery
    from flagctl.verify.prometheus import QueryFailed, read

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]

        def answer_garbage() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.recv(4096)
                conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        thread = threading.Thread(target=answer_garbage, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        with pytest.raises(QueryFailed, match=rf"^prometheus at {url}: not an HTTP answer"):
            read(PrometheusQuery(query="up", url=url), 5.0, {})
        thread.join(5)
