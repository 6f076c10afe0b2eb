"""eval: eligibility, the bucket and the rule that decided; exemptions; blast radius
(the canary plan: Off → Internal → 5% → 50% → Full, with publisher exemptions)."""

from __future__ import annotations

import json

from flagctl.rules.bucketing import bucket
from tests.conftest import Cli

GO = ("-r", "canary", "-y")


def decide(cli: Cli, subject: str, *extra: str) -> dict[str, object]:
    result = cli("eval", "canary_feature", "--id", subject, *extra, "-o", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def subject_in_bucket(below: int | None = None, at_least: int | None = None) -> str:
    for i in range(10_000):
        b = bucket("canary_feature", str(i))
        if (below is None or b < below) and (at_least is None or b >= at_least):
            return str(i)
    raise AssertionError("no such subject")


def test_off_then_internal_then_percent(canary: Cli) -> None:
    inside, outside = subject_in_bucket(below=5), subject_in_bucket(at_least=5)
    assert decide(canary, inside)["rule"] == "stage off"
    canary("stage", "set", "canary", "internal", *GO)
    assert decide(canary, inside, "--internal")["rule"] == "internal audience"
    external = decide(canary, inside)
    assert external["eligible"] is False and external["rule"].startswith("bucket")  # type: ignore[union-attr]
    canary("stage", "set", "canary", "5pct", *GO)
    yes, no = decide(canary, inside), decide(canary, outside)
    assert yes["eligible"] is True and yes["bucket"] == bucket("canary_feature", inside)
    assert yes["rule"] == f"bucket {yes['bucket']} < 5%"
    assert no["eligible"] is False and no["rule"] == f"bucket {no['bucket']} ≥ 5%"


def test_deny_beats_allow_and_allow_beats_the_bucket(canary: Cli) -> None:
    outside = subject_in_bucket(at_least=50)
    canary("stage", "set", "canary", "internal", *GO)
    canary("stage", "set", "canary", "5pct", *GO)
    assert canary("exempt", "add", "canary_feature", "publisher:42", "--allow", *GO).exit_code == 0
    assert canary("exempt", "add", "canary_feature", "publisher:7", "--deny", *GO).exit_code == 0
    allowed = decide(canary, outside, "--scope", "publisher:42")
    assert (allowed["eligible"], allowed["rule"]) == (True, "allow exemption publisher:42")
    both = decide(canary, outside, "--scope", "publisher:42", "--scope", "publisher:7")
    assert (both["eligible"], both["rule"]) == (False, "deny exemption publisher:7")
    inside = subject_in_bucket(below=5)
    denied = decide(canary, inside, "--scope", "publisher:7", "--internal")
    assert (denied["eligible"], denied["rule"]) == (
        False,
        "deny exemption publisher:7",
    )  # deny beats internal too
    rows = canary.sql(
        "SELECT action, target, after->>'effect' FROM flagctl.audit WHERE action = 'exempt' ORDER BY seq"
    )
    assert rows == [
        ("exempt", "exemption:publisher:42", "allow"),
        ("exempt", "exemption:publisher:7", "deny"),
    ]


def test_allow_never_turns_on_a_flag_whose_stage_is_off(canary: Cli) -> None:
    canary("exempt", "add", "canary_feature", "publisher:42", "--allow", *GO)
    result = decide(canary, "1", "--scope", "publisher:42")
    assert (result["eligible"], result["rule"]) == (False, "stage off")
    assert canary("set", "canary_feature", "0%", *GO).exit_code == 0  # enabled at 0%: dark
    dark = decide(canary, "1", "--scope", "publisher:42")
    assert (dark["eligible"], dark["rule"]) == (False, "stage off (dark: enabled at 0%)")


def test_kill_beats_everything(canary: Cli) -> None:
    canary("stage", "set", "canary", "internal", *GO)
    canary("exempt", "add", "canary_feature", "publisher:42", "--allow", *GO)
    canary("kill", "canary-off", *GO)
    killed = decide(canary, "1", "--scope", "publisher:42", "--internal")
    assert (killed["eligible"], killed["rule"]) == (False, "kill switch canary-off (scope global)")


def test_exemption_errors(canary: Cli) -> None:
    assert canary("exempt", "add", "canary_feature", "publisher:1", *GO).exit_code == 2  # neither
    assert canary("exempt", "add", "canary_feature", "workspace:1", "--allow", *GO).exit_code == 2
    assert canary("exempt", "add", "canary_feature", "global", "--deny", *GO).exit_code == 2
    assert canary.sql("SELECT count(*) FROM flagctl.exemption") == [(0,)]
    canary("exempt", "add", "canary_feature", "publisher:1", "--deny", "--note", "legal hold", *GO)
    listing = json.loads(canary("exempt", "list", "-o", "json").stdout)["exemptions"]
    assert [(e["scope"], e["effect"], e["note"]) for e in listing] == [("publisher:1", "deny", "legal hold")]
    assert canary("exempt", "remove", "canary_feature", "publisher:1", *GO).exit_code == 0
    assert canary.sql("SELECT count(*) FROM flagctl.exemption") == [(0,)]


def test_blast_radius_is_counted_in_the_database(canary: Cli) -> None:
    result = canary(
        "eval", "canary_feature", "--subjects-sql", "select id from users", "--percent", "5", "-o", "json"
    )
    assert result.exit_code == 0, result.stderr
    radius = json.loads(result.stdout)
    expected = sum(1 for i in range(1, 10_001) if bucket("canary_feature", str(i)) < 5)
    assert radius == {
        "flag": "canary_feature", "subjects": 10_000, "eligible_now": 0, "percent_now": 0,
        "eligible_at": expected, "percent_at": 5,
    }  # fmt: skip
    assert 400 < expected < 600


def test_stage_dry_run_shows_the_blast_radius(canary: Cli) -> None:
    canary("stage", "set", "canary", "internal", *GO)
    result = canary("stage", "set", "canary", "5pct", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "blast radius canary_feature: 0 of 10000 subjects eligible now (0%) → " in result.stdout


def test_a_subjects_query_cannot_write_and_errors_are_clear(canary: Cli) -> None:
    canary.sql(
        "CREATE FUNCTION purge() RETURNS SETOF bigint LANGUAGE sql AS 'DELETE FROM users RETURNING id'"
    )
    sneaky = canary("eval", "canary_feature", "--subjects-sql", "select purge()")
    assert sneaky.exit_code == 2 and "read-only transaction" in sneaky.stderr
    assert canary.sql("SELECT count(*) FROM users") == [(10_000,)]
    broken = canary("eval", "canary_feature", "--subjects-sql", "select id from nowhere")
    assert broken.exit_code == 2 and "42P01" in broken.stderr


def test_eval_needs_exactly_one_of_id_and_subjects(canary: Cli) -> None:
    assert canary("eval", "canary_feature").exit_code == 2
    assert canary("eval", "canary_feature", "--id", "1", "--subjects-sql", "select 1").exit_code == 2


def test_shared_salt_gives_two_flags_one_cohort(make_cli) -> None:  # type: ignore[no-untyped-def]
    cli = make_cli(
        "version: 1\nsystem: s\nflags:\n"
        "  a: {type: rollout, salt: cohort-2026, default: {enabled: true, percent: 30}}\n"
        "  b: {type: rollout, salt: cohort-2026, default: {enabled: true, percent: 30}}\n"
    )
    cli("db", "init")
    for subject in map(str, range(40)):
        a = json.loads(cli("eval", "a", "--id", subject, "-o", "json").stdout)
        b = json.loads(cli("eval", "b", "--id", subject, "-o", "json").stdout)
        assert (
            (a["bucket"], a["eligible"])
            == (b["bucket"], b["eligible"])
            == (bucket("cohort-2026", subject), bucket("cohort-2026", subject) < 30)
        )


def test_a_changed_hash_version_is_refused(canary: Cli) -> None:
    canary("stage", "set", "canary", "internal", *GO)
    canary.sql("CREATE OR REPLACE FUNCTION flagctl.hash_version() RETURNS integer LANGUAGE sql AS 'SELECT 2'")
    result = canary("eval", "canary_feature", "--id", "1")
    assert result.exit_code == 2 and "hash_version mismatch" in result.stderr


def test_the_table_says_each_thing_once_and_in_words(canary: Cli) -> None:
    """`eval` printed "bucket 89 ≥ 40%, bucket 89" and "value (global): 40" for a rollout
    (Python's True/False for a bool): the bucket once, the value as status shows it."""
    assert canary("stage", "set", "canary", "internal", *GO).exit_code == 0
    assert canary("stage", "set", "canary", "5pct", *GO).exit_code == 0
    subject = subject_in_bucket(at_least=5)
    lines = canary("eval", "canary_feature", "--id", subject).stdout.splitlines()
    assert lines[0].count(f"bucket {bucket('canary_feature', subject)}") == 1
    assert lines[1] == "value (global): on 5% + internal"
