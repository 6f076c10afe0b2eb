"""Rollouts that run themselves (flagctl rollout, flagctl run) against a real database, on
an injected clock: a four-stage ladder taken from dark to full, a breach that rolls it
back, an inconclusive analysis that pauses it, and the rules a person's move meets
(freezes, kills) holding the runner too."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.conftest import Cli

GO = ("-r", "CHG-311", "-y")
METRICS = "CREATE TABLE metrics (at timestamptz NOT NULL DEFAULT now(), error_rate float8 NOT NULL)"
MANIFEST = """\
version: 1
system: shop
flags:
  checkout_v2: {type: rollout}
ladders:
  checkout:
    flag: checkout_v2
    stages:
      - {name: dark,   enabled: false, percent: 0}
      - {name: canary, enabled: true,  percent: 1}
      - {name: half,   enabled: true,  percent: 50}
      - {name: full,   enabled: true,  percent: 100}
    bake: {canary: 1h, half: 2h}
    analysis: {guardrails: [error_rate], interval: 20m, passes: 3, failures: 2}
guardrails:
  error_rate:
    sql: >-
      select coalesce(max(error_rate), 0), count(*) from metrics where at > now() - interval '10 minutes'
    max: 0.01
    min_samples: 100
"""


def shop(make_cli: Callable[..., Cli]) -> Cli:
    cli = make_cli(MANIFEST, METRICS)
    assert cli("db", "init").exit_code == 0
    return cli


def traffic(cli: Cli, n: int = 500, rate: float = 0.001) -> None:
    cli.sql("DELETE FROM metrics")
    cli.sql("INSERT INTO metrics (error_rate) SELECT %s FROM generate_series(1, %s)", (rate, n))


def stage(cli: Cli) -> str:
    return json.loads(cli("stage", "show", "checkout", "-o", "json").stdout)["stage"]  # type: ignore[no-any-return]


def run_once(cli: Cli) -> list[dict[str, Any]]:
    result = cli("run", "--once", "-o", "json", "-y")
    assert result.exit_code == 0, result.stdout + result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def rollout(cli: Cli) -> dict[str, Any]:
    return json.loads(cli("rollout", "status", "checkout", "-o", "json").stdout)["rollouts"][0]  # type: ignore[no-any-return]


def passes_until_it_moves(cli: Cli, limit: int = 12) -> list[str]:
    """Runner passes, 20 minutes apart on the injected clock, until the ladder moves."""
    did = []
    before = stage(cli)
    for _ in range(limit):
        (decision,) = run_once(cli)
        did.append(decision["did"])
        if stage(cli) != before or decision["did"] in ("paused", "rolled_back", "done"):
            return did
        cli.clock.advance(minutes=20)
    raise AssertionError(f"the ladder did not move in {limit} passes: {did}")


def test_a_runner_takes_four_stages_from_dark_to_full_and_pauses_on_an_inconclusive_analysis(
    make_cli: Callable[..., Cli],
) -> None:
    cli = shop(make_cli)
    traffic(cli)
    started = cli("rollout", "start", "checkout", *GO)
    assert started.exit_code == 0, started.stderr
    assert "dark → full" in started.stdout
    # dark has no bake: three passes, 20 minutes apart, and it moves.
    assert passes_until_it_moves(cli) == ["analysed", "analysed", "advanced"]
    assert stage(cli) == "canary"
    # canary bakes an hour: the third pass comes at 40 minutes, so it waits for the bake.
    did = passes_until_it_moves(cli)
    assert did[:3] == ["analysed", "analysed", "analysed"] and did[-1] == "advanced"
    assert stage(cli) == "half"
    # Too few samples: inconclusive pauses the rollout, and a paused rollout never moves.
    traffic(cli, n=12)
    cli.clock.advance(minutes=20)
    (paused,) = run_once(cli)
    assert paused["did"] == "paused" and paused["verdict"] == "inconclusive"
    assert "12 samples < min_samples 100" in paused["note"]
    traffic(cli)
    for _ in range(3):
        cli.clock.advance(hours=1)
        assert [d["did"] for d in run_once(cli)] == ["paused"]
    assert stage(cli) == "half" and rollout(cli)["state"] == "paused"
    shown = cli("rollout", "status")
    assert "paused" in shown.stdout and "INCONCLUSIVE" in shown.stdout
    assert cli("rollout", "resume", "checkout", *GO).exit_code == 0
    did = passes_until_it_moves(cli)
    assert did[-1] == "advanced" and stage(cli) == "full"
    final = rollout(cli)
    assert final["state"] == "done" and final["current_stage"] == "full"
    # Every decision is in the audit, under the runner's declared actions.
    actions = {
        row[0] for row in cli.sql("SELECT DISTINCT action FROM flagctl.audit WHERE action LIKE 'rollout.%'")
    }
    assert {
        "rollout.start",
        "rollout.analysis",
        "rollout.pause",
        "rollout.advance",
        "rollout.resume",
        "rollout.done",
    } <= actions
    moved = cli.sql(
        "SELECT count(*) FROM flagctl.audit WHERE action = 'rollout.advance' AND flag = 'checkout_v2'"
    )
    assert moved == [(3,)]
    # A second start of a finished ladder has nothing to do.
    again = cli("rollout", "start", "checkout", *GO)
    assert again.exit_code == 0 and "nothing to do" in again.stdout


def test_a_breach_rolls_the_ladder_back_to_where_the_rollout_started(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(MANIFEST + "rollback: {guardrails: [error_rate], recovery: 15m}\n", METRICS)
    assert cli("db", "init").exit_code == 0
    traffic(cli)
    assert cli("rollout", "start", "checkout", *GO).exit_code == 0
    passes_until_it_moves(cli)
    assert stage(cli) == "canary"
    traffic(cli, rate=0.5)  # a breach, on plenty of samples
    cli.clock.advance(minutes=20)
    (first,) = run_once(cli)
    assert first["did"] == "analysed" and first["verdict"] == "fail"
    assert stage(cli) == "canary"  # one failure of the two it allows
    cli.clock.advance(minutes=20)
    (second,) = run_once(cli)
    assert second["did"] == "rolled_back"
    assert "error_rate" in second["note"] and "0.5" in second["note"]
    assert stage(cli) == "dark"
    assert rollout(cli)["state"] == "rolled_back"
    row = cli.sql(
        "SELECT action, reason FROM flagctl.audit WHERE flag = 'checkout_v2' ORDER BY seq DESC LIMIT 1"
    )
    assert row[0][0] == "rollout.rollback" and "2 failed analyses of canary" in row[0][1]
    # Through the system's rollback state machine, as the watchdog's own rollback goes: watch
    # verifies the recovery from here, and the rollback waits for a post-action review.
    machine = json.loads(cli("rollback", "--status", "-o", "json").stdout)
    assert machine["state"] == "ROLLED_BACK"
    pending = cli("review", "pending")
    assert pending.exit_code == 1 and "rollout.rollback" in pending.stdout
    # A rolled-back rollout is over: the runner leaves the ladder alone.
    cli.clock.advance(hours=3)
    assert run_once(cli) == []


def test_a_freeze_or_a_kill_holds_the_runner_as_it_holds_a_person(make_cli: Callable[..., Cli]) -> None:
    manifest = (
        MANIFEST + "kill_switches:\n  checkout-off: {set: {checkout_v2: {enabled: false, percent: 0}}}\n"
    )
    cli = make_cli(manifest, METRICS)
    assert cli("db", "init").exit_code == 0
    traffic(cli)
    assert cli("rollout", "start", "checkout", *GO).exit_code == 0
    assert cli("freeze", "set", "-r", "CAB freeze", "-y").exit_code == 0
    did = [run_once(cli)[0] for _ in range(2)] + [None]
    for _ in range(4):
        cli.clock.advance(minutes=20)
        did[-1] = run_once(cli)[0]
    assert did[-1] is not None and did[-1]["did"] == "waiting" and "frozen" in did[-1]["note"]
    assert stage(cli) == "dark"
    assert cli("freeze", "clear", "-r", "CAB over", "-y").exit_code == 0
    assert passes_until_it_moves(cli)[-1] == "advanced"
    assert stage(cli) == "canary"
    assert cli("kill", "checkout-off", "-r", "INC-9", "-y").exit_code == 0
    for _ in range(5):
        cli.clock.advance(hours=1)
        (decision,) = run_once(cli)
        assert decision["did"] == "waiting" and "checkout-off" in decision["note"]
    assert json.loads(cli("stage", "show", "checkout", "-o", "json").stdout)["killed_by"] == ["checkout-off"]


def test_one_runner_acts_on_a_ladder_and_a_dead_one_is_reported(make_cli: Callable[..., Cli]) -> None:
    import psycopg

    from flagctl.actions.rollout import Runner
    from flagctl.model.manifest import load_manifest
    from flagctl.store.db import AuditContext

    cli = shop(make_cli)
    traffic(cli)
    assert cli("rollout", "start", "checkout", *GO).exit_code == 0
    with psycopg.connect(cli.dsn, autocommit=True) as conn:
        audit = AuditContext.given("rollout.run", reason="the other runner", actor="ops-2", command="test")
        other = Runner(conn, load_manifest(cli.manifest), audit, cli.clock)
        other.beat()
        assert [d.did for d in other.run_once()] == ["analysed"]
        (held,) = run_once(cli)  # the CLI's runner meets the ladder held
        assert held["did"] == "held" and "another runner" in held["note"]
        assert "alive" in cli("rollout", "status").stdout
        # The other runner dies without a word: its heartbeat goes stale.
        cli.sql("UPDATE flagctl.runners SET seen_at = seen_at - interval '1 hour'")
        shown = cli("rollout", "status")
        assert "GONE" in shown.stdout and "no runner is alive" in shown.stdout
    # Its session ended, so the ladder is free again.
    assert run_once(cli)[0]["did"] in ("analysed", "idle")


def test_bad_starts_are_refused_and_change_nothing(make_cli: Callable[..., Cli]) -> None:
    cli = shop(make_cli)
    unknown = cli("rollout", "start", "checkout", "--to", "everywhere", *GO)
    assert unknown.exit_code == 2 and "no stage 'everywhere'" in unknown.stderr
    no_ladder = cli("rollout", "start", "nope", *GO)
    assert no_ladder.exit_code == 2
    assert cli("rollout", "start", "checkout", *GO).exit_code == 0
    twice = cli("rollout", "start", "checkout", *GO)
    assert twice.exit_code == 1 and "already running" in twice.stderr
    assert cli.sql("SELECT count(*) FROM flagctl.rollout") == [(1,)]
    assert cli("rollout", "pause", "checkout", *GO).exit_code == 0
    assert "already paused" in cli("rollout", "pause", "checkout", *GO).stdout
    assert cli("rollout", "abort", "checkout", *GO).exit_code == 0
    assert cli("rollout", "resume", "checkout", *GO).exit_code == 2  # none in flight now
    no_reason = cli("run", "--once", "-y")
    assert no_reason.exit_code == 0  # a runner's reason defaults to "flagctl run"
    without_yes = cli("run", "--once")
    assert without_yes.exit_code == 2 and "--yes" in without_yes.stderr


def test_a_ladder_without_analysis_cannot_be_run(make_cli: Callable[..., Cli]) -> None:
    cli = make_cli(
        MANIFEST.replace(
            "    analysis: {guardrails: [error_rate], interval: 20m, passes: 3, failures: 2}\n", ""
        ),
        METRICS,
    )
    assert cli("db", "init").exit_code == 0
    refused = cli("rollout", "start", "checkout", *GO)
    assert refused.exit_code == 2 and "ladders.checkout.analysis" in refused.stderr


def test_a_move_that_needs_approval_waits_for_it_once_and_goes_on_after(make_cli: Callable[..., Cli]) -> None:
    from tests.db.test_governance import user

    cli = make_cli(MANIFEST + "approvals: {at_or_above: 50}\n", METRICS)
    assert cli("db", "init").exit_code == 0
    traffic(cli)
    assert cli("rollout", "start", "checkout", "--to", "half", *GO).exit_code == 0
    passes_until_it_moves(cli)
    assert stage(cli) == "canary"
    cli.clock.advance(hours=1)
    for _ in range(3):  # three passes past the bake: the move to 50% asks for a second person
        cli.clock.advance(minutes=20)
        decision = run_once(cli)[0]
    assert decision["did"] == "waiting" and "needs approval: request" in decision["note"]
    pending = json.loads(cli("requests", "-o", "json").stdout)["requests"]
    assert [(r["status"], r["action"]) for r in pending] == [("pending", "rollout.advance")]
    for _ in range(3):  # it waits for that request, and asks no second time
        cli.clock.advance(minutes=20)
        assert run_once(cli)[0]["did"] == "waiting"
    assert len(json.loads(cli("requests", "-o", "json").stdout)["requests"]) == 1
    assert stage(cli) == "canary"
    with user(cli, "release") as bob:
        bob.clock = cli.clock
        approved = bob("approve", str(pending[0]["id"]), "-r", "dashboards look clean", "-y")
        assert approved.exit_code == 0, approved.stderr
    assert stage(cli) == "half"
    (done,) = run_once(cli)
    assert done["did"] == "done" and rollout(cli)["state"] == "done"
