"""The runbook's SQL fallback, `SELECT * FROM flagctl.kill(system, switch, reason)` and
`flagctl.release(…)`, does what `flagctl kill` and `flagctl release` do.

The property: the same random sequence of kills, releases (forced or not) and out-of-band
sets, run once through the CLI and once through the SQL functions on the same starting
state, passes and fails at the same steps and leaves the same rows after every step — the
flag values where they live (flagctl's table, bound application tables) and every
engagement's level, settings, bases, applied values and covered overrides. Then the rest
of what the CLI promises, tried from psql: the role check, the read-back that refuses a
write a trigger or rule kept, the audit, and clear errors for bad input."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.conftest import Cli
from tests.db.test_trust import member
from tests.db.test_write_takes import INSTEAD_NOTHING, KEEP_OLD, SKIP_ROW

GO = ("-r", "INC-SQL", "-y")
EXAMPLES = int(os.environ.get("FLAGCTL_FUZZ_EXAMPLES", "25")) // 3 or 1  # make test: 8; CI slow run: more

# A system that exercises every way switches combine: a rollout capped, narrowed and turned
# off by three levels of switch (strictest wins), a safety bool a switch turns on, an enum a
# higher level overrides, overrides at two scopes, and a switch that includes others.
COMBINED = """\
version: 1
system: combined
flags:
  reach: {type: rollout, scopes: [tenant]}
  safe_mode: {type: bool, scopes: [tenant]}
  tier: {type: enum, values: [full, lite, none], default: full, scopes: [tenant]}
kill_switches:
  cap5: {level: 1, description: cap the rollout at 5%, set: {reach: {percent: 5}}}
  no-internal: {level: 2, description: no internal audience, set: {reach: {internal: false}}}
  lite: {level: 2, description: degrade, set: {tier: lite}}
  reach-off: {level: 3, description: rollout off, set: {reach: {enabled: false}}}
  safe: {level: 4, description: safe mode on, set: {safe_mode: true, tier: none}}
  all-off: {level: 5, description: everything, includes: [cap5, lite, safe], set: {reach: {enabled: false}}}
"""
COMBINED_OPS = [
    *(f"kill {s}@{at}" for s in ("cap5", "no-internal", "lite", "reach-off", "safe", "all-off")
      for at in ("global", "tenant:a", "tenant:b")),
    *(f"release {s}@{at}" for s in ("cap5", "reach-off", "safe", "all-off") for at in ("global", "tenant:a")),
    "release! cap5@global", "release! all-off@global", "release! safe@tenant:a",
    "set reach on@global", "set reach 40%@global", "set reach 60%+internal@tenant:a", "set reach 10%@tenant:b",
    "set safe_mode off@tenant:a", "set tier full@tenant:b", "set tier lite@global",
    'psql reach {"enabled":true,"percent":30}@tenant:c', 'psql tier "full"@tenant:a',
]  # fmt: skip

GROUPS_OPS = [
    *(f"kill KS{n}@{at}" for n in range(1, 6) for at in ("global", "workspace:42", "workspace:7")),
    *(f"release KS{n}@{at}" for n in (1, 3, 4, 5) for at in ("global", "workspace:42")),
    "release! KS5@global", "release! KS1@workspace:42",
    "set F3 on@workspace:42", "set F3 on@workspace:7", "set groups_send on@workspace:7", "set F3 on@global",
    "set F1 on@global", "set F1 25%@workspace:42", "psql F3 true@workspace:9", "psql groups_send true@workspace:42",
]  # fmt: skip

ORCA_OPS = [
    *(f"kill {s}@global" for s in ("self-healing-off", "discovery-off", "external-apis-off", "trust-algorithm-off")),
    *(f"release {s}@global" for s in ("self-healing-off", "external-apis-off", "trust-algorithm-off")),
    "release! trust-algorithm-off@global",
    "set enable_self_healing on@global", "set new_trust_algorithm 10%@global",
]  # fmt: skip


def run_cli(cli: Cli, op: str) -> str:
    verb, rest = op.split(" ", 1)
    if verb == "psql":  # an override written around flagctl, by the schema's owner
        flag, value, scope = rest.replace("@", " ").split(" ")
        cli.sql(
            "INSERT INTO flagctl.flag_state (system, flag, scope, value) SELECT system, %s, %s, %s::jsonb"
            " FROM flagctl.catalogue LIMIT 1 ON CONFLICT (system, flag, scope) DO UPDATE SET value = excluded.value",
            (flag, scope, value),
        )
        return "ok"
    if verb == "set":
        value, scope = rest.rsplit("@", 1)
        flag, value = value.split(" ", 1)
        result = cli("set", flag, value, "--scope", scope, *GO)
        return "ok" if result.exit_code == 0 else "refused"
    name, scope = rest.split("@")
    args = [verb.rstrip("!"), name, "--scope", scope, *GO]
    if verb == "release!":
        args.append("--force")
    result = cli(*args)
    assert result.exit_code in (0, 1, 2, 4), (op, result.stdout, result.stderr)
    return "ok" if result.exit_code == 0 else "refused"


def run_sql(cli: Cli, system: str, op: str) -> str:
    verb, rest = op.split(" ", 1)
    if verb in ("set", "psql"):
        return run_cli(cli, op)  # the same path both times: only kills and releases differ
    name, scope = rest.split("@")
    try:
        if verb == "kill":
            cli.sql("SELECT * FROM flagctl.kill(%s, %s, 'INC-SQL', %s)", (system, name, scope))
        else:
            cli.sql(
                "SELECT * FROM flagctl.release(%s, %s, 'INC-SQL', %s, %s)",
                (system, name, scope, verb == "release!"),
            )
    except psycopg.Error:
        return "refused"
    return "ok"


def rows(cli: Cli, bound: str | None) -> tuple[Any, ...]:
    """Every stored flag value and every engagement, as comparable rows."""
    own = cli.sql("SELECT flag, scope, value FROM flagctl.flag_state ORDER BY flag, scope")
    engaged = cli.sql(
        "SELECT switch, scope, level, settings, prior, applied, below FROM flagctl.engaged_switch ORDER BY switch, scope"
    )
    table = cli.sql(bound) if bound else []
    return own, engaged, table


Restore = list[tuple[str, tuple[Any, ...]]]  # statements that put a bound table back


def reset(cli: Cli, start: tuple[Any, ...], bound: str | None, restore: Restore) -> None:
    cli.sql("TRUNCATE flagctl.engaged_switch; DELETE FROM flagctl.flag_state")
    for statement, args in restore:
        cli.sql(statement, args)
    assert rows(cli, bound) == start


def same_steps(
    cli: Cli, system: str, ops: list[str], bound: str | None = None, restore: str | None = None
) -> None:
    start = rows(cli, bound)
    through_cli = []
    for op in ops:
        through_cli.append((op, run_cli(cli, op), rows(cli, bound)))
    reset(cli, start, bound, restore or [])
    for op, outcome, after in through_cli:
        got = run_sql(cli, system, op)
        assert (op, got) == (op, outcome), (ops, through_cli)
        assert rows(cli, bound) == after, (op, ops)
    reset(cli, start, bound, restore or [])


@pytest.fixture
def combined(make_cli: Any) -> Iterator[Cli]:
    cli = make_cli(COMBINED)
    assert cli("db", "init").exit_code == 0
    yield cli


def sequences(ops: list[str]) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(ops), min_size=1, max_size=9)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(ops=sequences(COMBINED_OPS))
def check_combined(combined: Cli, ops: list[str]) -> None:
    same_steps(combined, "combined", ops)


def test_sql_kill_combines_switches_as_flagctl_does(combined: Cli) -> None:
    check_combined(combined)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(ops=sequences(GROUPS_OPS))
# A global kill over a scoped kill's own override, released before it; an override written
# in psql under an engaged global kill, which the next kill takes in.
@example(ops=["kill KS1@workspace:42", "kill KS5@global", "release KS5@global", "release KS1@workspace:42"])
@example(ops=["kill KS5@global", "psql F3 true@workspace:9", "kill KS5@global", "release KS5@global"])
def check_groups(groups: Cli, ops: list[str]) -> None:
    same_steps(groups, "groups", ops)


def test_sql_kill_covers_scopes_as_flagctl_does(groups: Cli) -> None:
    check_groups(groups)


def test_sql_kill_writes_bound_tables_as_flagctl_does(orca: Cli, ws8: Cli) -> None:
    table = "SELECT flag_name, enabled, rollout_percentage FROM feature_flags ORDER BY 1"
    back = [
        ("UPDATE feature_flags SET enabled = %s, rollout_percentage = %s WHERE flag_name = %s", (e, p, n))
        for n, e, p in orca.sql(table)
    ]
    for ops in (ORCA_OPS, ORCA_OPS[::-1], [ORCA_OPS[3], ORCA_OPS[0], ORCA_OPS[8], ORCA_OPS[4], ORCA_OPS[6]]):
        same_steps(orca, "orca", ops, bound=table, restore=back)
    ws8_ops = ["set p3_advisory 25%@global", "kill p3-off@global", "kill p3-off@global",
               "set p3_advisory 50%@global", "kill p3-off@global", "release p3-off@global",
               "kill p3-off@global", "set p3_advisory on@global", "release p3-off@global",
               "release! p3-off@global"]  # fmt: skip
    table = "SELECT feature_name, enabled, rollout_percent FROM p3_feature_state"
    p3 = ws8.sql(table)[0]
    same_steps(
        ws8, "phase3", ws8_ops, bound=table,
        restore=[("UPDATE p3_feature_state SET enabled = %s, rollout_percent = %s", (p3[1], p3[2]))],
    )  # fmt: skip


# ---------------------------------------------------------------- the rest, tried from psql

P3 = "SELECT enabled, rollout_percent FROM p3_feature_state"


def sql_as(dsn: str, statement: str, *args: Any) -> list[Any]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(statement.encode(), args or None).fetchall()


def test_sql_kill_is_for_the_security_role_and_audited_as_a_kill(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "full", "--force", *GO).exit_code == 0
    for roles in (("viewer",), ("release",)):
        with member(ws8, *roles) as (_, dsn), pytest.raises(psycopg.errors.InsufficientPrivilege):
            sql_as(dsn, "SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42')")
    assert ws8.sql(P3) == [(True, 100)]
    with member(ws8, "security") as (name, dsn):
        changed = sql_as(
            dsn, "SELECT flag, scope, before, after FROM flagctl.kill('phase3', 'p3-off', 'INC-42')"
        )
        assert changed == [
            ("p3_advisory", "global", {"enabled": True, "percent": 100}, {"enabled": False, "percent": 0})
        ]
        assert ws8.sql(P3) == [(False, 0)]
        audit = ws8.sql(
            "SELECT action, db_user, actor, reason FROM flagctl.audit WHERE action = 'kill' ORDER BY seq DESC LIMIT 1"
        )
        assert audit == [("kill", name, name, "INC-42")]
        status = json.loads(ws8("status", "-o", "json").stdout)
        assert "p3-off" in json.dumps(status), status
        # a second kill re-asserts and changes nothing; a release by SQL restores exactly
        assert sql_as(dsn, "SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42')") == []
        released = sql_as(dsn, "SELECT flag, after FROM flagctl.release('phase3', 'p3-off', 'INC-42 over')")
        assert released == [("p3_advisory", {"enabled": True, "percent": 100})]
        assert ws8.sql(P3) == [(True, 100)]
    assert ws8("audit", "verify").exit_code == 0


@pytest.mark.parametrize(
    ("blocker", "named"),
    [(KEEP_OLD, "keep_flags"), (INSTEAD_NOTHING, "ignore_updates"), (SKIP_ROW, "skip_row")],
    ids=["trigger-keeps-old", "rule-instead-nothing", "trigger-skips-row"],
)
def test_sql_kill_that_does_not_take_fails_and_changes_nothing(ws8: Cli, blocker: str, named: str) -> None:
    assert ws8("stage", "set", "p3", "full", "--force", *GO).exit_code == 0
    ws8.sql(blocker)
    audited = ws8.sql("SELECT max(seq) FROM flagctl.audit")
    with member(ws8, "security") as (_, dsn), pytest.raises(psycopg.Error) as refused:
        sql_as(dsn, "SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42')")
    assert refused.value.sqlstate == "FL001", refused.value
    assert named in str(refused.value)
    assert ws8.sql(P3) == [(True, 100)]
    assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
    assert ws8.sql("SELECT max(seq) FROM flagctl.audit") == audited


@pytest.mark.parametrize(
    ("call", "sqlstate", "says"),
    [
        ("SELECT * FROM flagctl.kill('phase3', 'p3-off', '')", "22023", "needs a reason"),
        ("SELECT * FROM flagctl.kill('phase3', 'p3-of', 'INC-42')", "22023", "kill switches: p3-off"),
        ("SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42', 'tenant')", "22023", "invalid scope"),
        (
            "SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42', 'tenant:a')",
            "22023",
            "has no tenant scope",
        ),
        ("SELECT * FROM flagctl.kill('phase4', 'p3-off', 'INC-42')", "22023", "no published manifest"),
        ("SELECT * FROM flagctl.release('phase3', 'p3-off', NULL)", "22023", "needs a reason"),
    ],
)
def test_sql_kill_refuses_bad_input_clearly(ws8: Cli, call: str, sqlstate: str, says: str) -> None:
    before = rows(ws8, P3), ws8.sql("SELECT max(seq) FROM flagctl.audit")
    with member(ws8, "security") as (_, dsn), pytest.raises(psycopg.Error) as refused:
        sql_as(dsn, call)
    assert refused.value.sqlstate == sqlstate, refused.value
    diag = refused.value.diag
    assert says in f"{diag.message_primary} {diag.message_hint}", (diag.message_primary, diag.message_hint)
    assert (rows(ws8, P3), ws8.sql("SELECT max(seq) FROM flagctl.audit")) == before


def test_sql_release_refuses_a_changed_flag_unless_forced(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "full", "--force", *GO).exit_code == 0
    with member(ws8, "security") as (_, dsn):
        sql_as(dsn, "SELECT * FROM flagctl.kill('phase3', 'p3-off', 'INC-42')")
        ws8.sql("UPDATE p3_feature_state SET rollout_percent = 7")  # the owner, around flagctl
        with pytest.raises(psycopg.Error) as refused:
            sql_as(dsn, "SELECT * FROM flagctl.release('phase3', 'p3-off', 'INC-42 over')")
        assert refused.value.sqlstate == "FL002", refused.value
        assert ws8.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(1,)]
        sql_as(dsn, "SELECT * FROM flagctl.release('phase3', 'p3-off', 'INC-42 over', p_force => true)")
    assert ws8.sql(P3) == [(True, 100)]
    assert ws8.sql("SELECT forced FROM flagctl.audit WHERE action = 'release' ORDER BY seq DESC LIMIT 1") == [
        (True,)
    ]


def test_sql_kill_keeps_the_published_constraints_as_flagctl_does(recsys: Cli) -> None:
    """The recommender's constraints: at most one of disable_cf and disable_content, and
    content_only needs disable_content off. With content disabled, cf-off (disable_cf,
    content_only) would break both: `flagctl kill` refuses it (exit 2), and so does
    flagctl.kill in psql, changing nothing; without it, both kill."""
    assert recsys("set", "disable_content", "on", *GO).exit_code == 0
    before = recsys.sql("SELECT flag, scope, value FROM flagctl.flag_state ORDER BY 1, 2")
    refused = recsys("kill", "cf-off", *GO)
    assert refused.exit_code == 2 and "constraint" in refused.stderr, refused.stderr
    with (
        pytest.raises(
            psycopg.errors.CheckViolation, match="constraint cf_or_content would be violated at global"
        ) as error,
        psycopg.connect(recsys.dsn) as conn,
    ):
        conn.execute("SELECT * FROM flagctl.kill('recsys', 'cf-off', 'INC-SQL')")
    assert "content_only_disables_cf" in (error.value.diag.message_detail or "")
    assert recsys.sql("SELECT flag, scope, value FROM flagctl.flag_state ORDER BY 1, 2") == before
    assert recsys.sql("SELECT count(*) FROM flagctl.engaged_switch") == [(0,)]
    assert recsys("set", "disable_content", "off", *GO).exit_code == 0
    recsys.sql("SELECT count(*) FROM flagctl.kill('recsys', 'cf-off', 'INC-SQL')")
    assert recsys.sql("SELECT switch FROM flagctl.engaged_switch") == [("cf-off",)]
