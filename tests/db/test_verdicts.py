"""Honest guardrail verdicts against a real database: an empty metrics window is no data
(not a pass), too few samples is inconclusive, and each verdict is shown, refused on, and
recorded in the audit with its sample count."""

from __future__ import annotations

import json
from collections.abc import Callable

from tests.conftest import Cli

GO = ("-r", "rollout", "-y")
METRICS = "CREATE TABLE metrics (at timestamptz NOT NULL DEFAULT now(), error_rate float8 NOT NULL)"
# The guardrail as people write it: an empty window reads 0 through coalesce. Its second
# column, the sample count, is what tells an empty window from a healthy one.
ERROR_RATE = (
    "select coalesce(max(error_rate), 0), count(*) from metrics where at > now() - interval '5 minutes'"
)


def manifest(extra: str = "") -> str:
    return (
        "version: 1\nsystem: s\nflags:\n  f: {type: rollout}\n"
        "ladders:\n  l:\n    flag: f\n"
        "    stages: [{name: off, enabled: false, percent: 0}, {name: canary, enabled: true, percent: 1},"
        " {name: half, enabled: true, percent: 50}]\n"
        "    require: [error_rate]\n"
        f'guardrails:\n  error_rate: {{sql: "{ERROR_RATE}", max: 0.01{extra}}}\n'
    )


def samples(cli: Cli, n: int, rate: float = 0.001) -> None:
    cli.sql("INSERT INTO metrics (error_rate) SELECT %s FROM generate_series(1, %s)", (rate, n))


def percent(cli: Cli) -> int:
    return json.loads(cli("stage", "show", "l", "-o", "json").stdout)["values"]["f"]["percent"]  # type: ignore[no-any-return]


def test_an_empty_metrics_window_is_no_data_and_refuses_the_move(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(manifest(), METRICS)
    assert cli("db", "init").exit_code == 0
    refused = cli("stage", "set", "l", "canary", *GO)
    assert refused.exit_code == 1, refused.stdout
    assert "guardrail error_rate: NO DATA: 0 samples behind the value 0" in refused.stderr
    assert percent(cli) == 0
    detail = cli.sql("SELECT after FROM flagctl.audit WHERE action = 'stage.set.refused'")[0][0]
    assert detail["guardrails"][0]["verdict"] == "no_data" and detail["guardrails"][0]["samples"] == 0
    # With data in the window the same guardrail passes, and the move records what it passed on.
    samples(cli, 500)
    moved = cli("stage", "set", "l", "canary", *GO)
    assert moved.exit_code == 0, moved.stderr
    assert percent(cli) == 1
    # The verdicts are part of the move's own audited transaction, as its event.
    (recorded,) = cli.sql(
        "SELECT action, after FROM flagctl.audit WHERE target = 'ladder:l' AND action NOT LIKE '%.refused'"
    )
    assert recorded[0] == "stage.set"
    (verdict,) = recorded[1]["guardrails"]
    assert (verdict["name"], verdict["verdict"], verdict["samples"]) == ("error_rate", "pass", 500)
    assert "guardrails: error_rate pass" in cli("audit", "log").stdout


def test_too_few_samples_is_inconclusive_refused_and_shown(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(manifest(", min_samples: 100"), METRICS)
    assert cli("db", "init").exit_code == 0
    samples(cli, 12, rate=0.5)  # a breach, but on 12 samples: too few to call it either way
    refused = cli("stage", "set", "l", "canary", *GO)
    assert refused.exit_code == 1
    assert "required guardrail inconclusive" in refused.stderr
    assert "12 samples < min_samples 100" in refused.stderr
    assert percent(cli) == 0
    shown = cli("verify", "guardrails")
    assert shown.exit_code == 1
    assert "INCONCLUSIVE" in shown.stdout and "12 samples < min_samples 100" in shown.stdout
    document = json.loads(cli("verify", "guardrails", "-o", "json").stdout)
    (guard,) = document["guardrails"]
    assert (guard["verdict"], guard["counts_as"], guard["samples"], guard["min_samples"]) == (
        "inconclusive", "inconclusive", 12, 100,
    )  # fmt: skip
    assert document["passed"] is False
    samples(cli, 200)  # enough samples now, and the breach in them is a failure
    failed = cli("stage", "set", "l", "canary", *GO)
    assert failed.exit_code == 1 and "required guardrail failed" in failed.stderr


def test_a_guardrail_may_count_no_data_as_a_pass(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(manifest(", on_no_data: pass"), METRICS)
    assert cli("db", "init").exit_code == 0
    moved = cli("stage", "set", "l", "canary", *GO)
    assert moved.exit_code == 0, moved.stderr
    assert "NO DATA (counts as pass)" in cli("verify", "guardrails").stdout


def test_a_broken_metrics_query_is_an_error_unless_told_otherwise(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(manifest(", on_error: inconclusive").replace("from metrics", "from no_metrics"))
    assert cli("db", "init").exit_code == 0
    refused = cli("stage", "set", "l", "canary", *GO)
    assert refused.exit_code == 1
    assert "required guardrail inconclusive" in refused.stderr and "SQLSTATE 42P01" in refused.stderr
    guard = json.loads(cli("verify", "guardrails", "-o", "json").stdout)["guardrails"][0]
    assert (guard["verdict"], guard["counts_as"]) == ("error", "inconclusive")
