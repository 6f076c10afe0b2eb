"""Prometheus guardrails against a real Prometheus (``tests/prometheus_server.py``): an
instant query judged with the same verdicts as a SQL guardrail, through the CLI — verify,
stage moves and watch — and every way the server can fail is an error naming it, never a
traceback."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.conftest import Cli
from tests.prometheus_server import Prometheus, free_port, running_prometheus

# One Prometheus per worker that runs these: keep them on one worker (make test: --dist loadgroup).
pytestmark = pytest.mark.xdist_group("prometheus")

GO = ("-r", "rollout", "-y")
Make = Callable[..., Cli]


@pytest.fixture(scope="session")
def prometheus() -> Iterator[Prometheus]:
    with running_prometheus() as server:
        yield server


def metric(what: str) -> str:
    """A series name of this test's own: the server is shared by the session."""
    return f"flagctl_test_{what}_{uuid.uuid4().hex[:8]}"


def guard(query: str, url: str | None, *, max: float = 0.01, **extra: Any) -> dict[str, Any]:
    source = {"query": query, **({"url": url} if url else {})}
    if "samples" in extra:
        source["samples"] = extra.pop("samples")
    return {"prometheus": source, "max": max, **extra}


def manifest(**guardrails: dict[str, Any]) -> str:
    """A ladder whose forward moves require every guardrail given (JSON is YAML)."""
    return (
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "ladders:\n  l:\n    flag: f\n"
        "    stages: [{name: off, enabled: false, percent: 0}, {name: canary, enabled: true, percent: 1}]\n"
        f"    require: {json.dumps(list(guardrails))}\n"
        f"guardrails: {json.dumps(guardrails)}\n"
    )


def verify(cli: Cli, **env: str) -> tuple[int, dict[str, Any]]:
    result = cli("verify", "guardrails", "-o", "json", **env)
    assert "Traceback" not in result.stdout + result.stderr
    (only,) = json.loads(result.stdout)["guardrails"]
    return result.exit_code, only


def percent(cli: Cli) -> int:
    return json.loads(cli("stage", "show", "l", "-o", "json").stdout)["values"]["f"]["percent"]  # type: ignore[no-any-return]


def test_a_value_within_the_bound_passes_and_a_scraped_breach_fails(
    make_cli: Make, prometheus: Prometheus
) -> None:
    series = metric("error_ratio")
    prometheus.scraped(series, 0.002)
    cli = make_cli(manifest(errors=guard(series, prometheus.url)))
    code, result = verify(cli)
    assert code == 0, result
    assert (result["source"], result["verdict"], result["value"], result["passed"]) == (
        "prometheus", "pass", 0.002, True,
    )  # fmt: skip
    prometheus.scraped(series, 0.5)  # the exporter's value changes, and is scraped
    code, result = verify(cli)
    assert code == 1
    assert (result["verdict"], result["counts_as"], result["value"]) == ("fail", "fail", 0.5)
    table = cli("verify", "guardrails")
    assert table.exit_code == 1 and "FAIL" in table.stdout and "max 0.01" in table.stdout


def test_a_query_matching_no_series_is_no_data(make_cli: Make, prometheus: Prometheus) -> None:
    cli = make_cli(manifest(errors=guard(metric("never_exported"), prometheus.url)))
    code, result = verify(cli)
    assert code == 1  # no data counts as a failure unless the guardrail says otherwise
    assert result["verdict"] == "no_data" and result["value"] is None
    assert "empty vector" in result["error"]
    # A series that was there and went away (marked stale on the next scrape) is no data too.
    series = metric("gone")
    prometheus.scraped(series, 0.001)
    lenient = make_cli(manifest(errors=guard(series, prometheus.url, on_no_data="inconclusive")))
    assert verify(lenient)[1]["verdict"] == "pass"
    prometheus.gone(series)
    code, result = verify(lenient)
    assert (result["verdict"], result["counts_as"]) == ("no_data", "inconclusive")


def test_more_than_one_series_is_an_error_until_aggregated(make_cli: Make, prometheus: Prometheus) -> None:
    series = metric("by_shard")
    prometheus.exporter.set(f'{series}{{shard="a"}}', 1)
    prometheus.exporter.set(f'{series}{{shard="b"}}', 2)
    prometheus.wait(series, lambda found: len(found) == 2, "two shards scraped")
    cli = make_cli(manifest(errors=guard(series, prometheus.url, max=10)))
    code, result = verify(cli)
    assert code == 1 and result["verdict"] == "error"
    assert result["error"] == (
        f"prometheus at {prometheus.url}: the query returned 2 series; aggregate it to one, "
        "e.g. with sum() or max()"
    )
    summed = make_cli(manifest(errors=guard(f"sum({series})", prometheus.url, max=10)))
    code, result = verify(summed)
    assert code == 0 and (result["verdict"], result["value"]) == ("pass", 3.0)


def test_an_unreachable_server_is_an_error_naming_it(make_cli: Make) -> None:
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    cli = make_cli(manifest(errors=guard("up", closed)))
    code, result = verify(cli)
    assert code == 1 and result["verdict"] == "error" and result["source"] == "prometheus"
    assert result["error"] == f"prometheus at {closed}: connection refused"
    lenient = make_cli(manifest(errors=guard("up", closed, on_error="inconclusive")))
    assert verify(lenient)[1]["counts_as"] == "inconclusive"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("sum(", "the query failed: bad_data"),  # Prometheus refuses it (HTTP 400)
        ("0/0", "the query returned NaN"),
        ("1/0", "the query returned +Inf"),
        ("flagctl_test_up[1m]", "a range vector"),
    ],
)
def test_what_prometheus_cannot_answer_as_one_number_is_an_error(
    make_cli: Make, prometheus: Prometheus, query: str, says: str
) -> None:
    cli = make_cli(manifest(errors=guard(query, prometheus.url)))
    code, result = verify(cli)
    assert code == 1 and result["verdict"] == "error", result
    assert result["error"].startswith(f"prometheus at {prometheus.url}: ") and says in result["error"]


def test_a_scalar_is_a_value(make_cli: Make, prometheus: Prometheus) -> None:
    cli = make_cli(manifest(errors=guard("scalar(flagctl_test_up) / 200", prometheus.url)))
    code, result = verify(cli)
    assert code == 0 and result["value"] == 0.005


def test_a_server_that_is_not_prometheus_is_an_http_error(make_cli: Make, prometheus: Prometheus) -> None:
    cli = make_cli(manifest(errors=guard("up", prometheus.exporter.url)))  # serves /metrics only
    code, result = verify(cli)
    assert code == 1 and result["error"].startswith(f"prometheus at {prometheus.exporter.url}: HTTP 404")


def test_min_samples_reads_the_samples_query(make_cli: Make, prometheus: Prometheus) -> None:
    ratio, count = metric("ratio"), metric("requests")
    prometheus.scraped(ratio, 0.5)  # a breach, but on 12 requests: too few to call it
    prometheus.scraped(count, 12)
    cli = make_cli(manifest(errors=guard(ratio, prometheus.url, samples=count, min_samples=100)))
    code, result = verify(cli)
    assert code == 1
    assert (result["verdict"], result["samples"], result["min_samples"]) == ("inconclusive", 12, 100)
    prometheus.scraped(count, 500)
    code, result = verify(cli)
    assert (result["verdict"], result["samples"]) == ("fail", 500)
    no_samples = make_cli(
        manifest(errors=guard(ratio, prometheus.url, samples=metric("absent"), min_samples=100))
    )
    code, result = verify(no_samples)
    assert (result["verdict"], result["samples"]) == ("no_data", 0)


def test_the_url_comes_from_the_environment_when_the_manifest_has_none(
    make_cli: Make, prometheus: Prometheus
) -> None:
    cli = make_cli(manifest(errors=guard("scalar(flagctl_test_up) / 1000", None)))
    code, result = verify(cli, FLAGCTL_PROMETHEUS_URL=prometheus.url)
    assert code == 0 and result["verdict"] == "pass"
    missing = cli("verify", "guardrails", FLAGCTL_PROMETHEUS_URL="")
    assert missing.exit_code == 2
    assert "FLAGCTL_PROMETHEUS_URL" in missing.stderr and "Traceback" not in missing.stderr
    wrong = cli("verify", "guardrails", FLAGCTL_PROMETHEUS_URL="ftp://prometheus")
    assert wrong.exit_code == 2 and "expected an http:// or https:// URL" in wrong.stderr
    # Whatever runs the guardrail says so the same way, before deciding anything.
    assert cli("db", "init").exit_code == 0
    for command in (("stage", "set", "l", "canary", *GO), ("watch", "--once")):
        result = cli(*command, FLAGCTL_PROMETHEUS_URL="")
        assert result.exit_code == 2, (command, result.stdout, result.stderr)
        assert "FLAGCTL_PROMETHEUS_URL" in result.stderr and "Traceback" not in result.stderr
    assert percent(cli) == 0


def test_a_stage_move_is_refused_on_a_breach_and_allowed_once_healthy(
    make_cli: Make, prometheus: Prometheus
) -> None:
    series = metric("checkout_errors")
    prometheus.scraped(series, 0.2)
    cli = make_cli(manifest(errors=guard(series, prometheus.url)))
    assert cli("db", "init").exit_code == 0
    refused = cli("stage", "set", "l", "canary", *GO)
    assert refused.exit_code == 1, refused.stdout
    assert "required guardrail failed: guardrail errors: 0.2 (max 0.01) FAIL" in refused.stderr
    assert percent(cli) == 0
    detail = cli.sql("SELECT after FROM flagctl.audit WHERE action = 'stage.set.refused'")[0][0]
    assert detail["guardrails"][0]["source"] == "prometheus"
    prometheus.scraped(series, 0.001)
    moved = cli("stage", "set", "l", "canary", *GO)
    assert moved.exit_code == 0, moved.stderr
    assert percent(cli) == 1
    (event,) = cli.sql("SELECT after FROM flagctl.audit WHERE target = 'ladder:l' AND action = 'stage.set'")
    (verdict,) = event[0]["guardrails"]
    assert (verdict["source"], verdict["verdict"], verdict["value"]) == ("prometheus", "pass", 0.001)


def test_watch_reads_a_prometheus_guardrail(make_cli: Make, prometheus: Prometheus) -> None:
    series = metric("latency")
    prometheus.scraped(series, 0.5)
    cli = make_cli(manifest(errors=guard(series, prometheus.url)))
    assert cli("db", "init").exit_code == 0
    result = cli("watch", "--once", "-o", "json")
    (line,) = result.stdout.strip().splitlines()
    tick = json.loads(line)
    assert result.exit_code == 1 and tick["state"] == "ROLLBACK_PENDING", tick
    (only,) = tick["guardrails"]
    assert (only["source"], only["verdict"]) == ("prometheus", "fail")
