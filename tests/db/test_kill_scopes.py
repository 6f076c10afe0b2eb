"""A broader kill beats every narrower "on", and its release restores each scope exactly."""

from __future__ import annotations

import json
from itertools import permutations

import pytest

from tests.conftest import Cli

GO = ("-r", "INC-1", "-y")


ROWS = "SELECT flag, scope, value::text FROM flagctl.flag_state ORDER BY flag, scope"


def state(groups: Cli) -> dict[str, object]:
    """Every flag's stored value at every scope (a global never set: its default)."""
    flags = json.loads(groups("status", "-o", "json").stdout)["flags"]
    return {f["name"]: (f["value"], f["overrides"]) for f in flags}


def decision(groups: Cli, flag: str, *scopes: str) -> dict:  # type: ignore[type-arg]
    args = [a for s in scopes for a in ("--scope", s)]
    result = groups("eval", flag, "--id", "7", *args, "-o", "json")
    assert result.exit_code in (0, 1), result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def readme_sql(groups: Cli, flag: str, scope: str) -> object:
    """What an application reading flagctl's table the README's way sees."""
    rows = groups.sql(
        "SELECT value FROM flagctl.flag_state WHERE system = 'groups' AND flag = %s"
        " AND scope IN (%s, 'global') ORDER BY scope = 'global' LIMIT 1",
        (flag, scope),
    )
    return rows[0][0] if rows else None


def test_a_global_kill_beats_an_override_that_was_on_before_it(groups: Cli) -> None:
    """Before schema version 9 KS5 wrote only the global rows: F3 stayed on at workspace:42."""
    assert groups("set", "F3", "true", "--scope", "workspace:42", *GO).exit_code == 0
    before, rows = state(groups), groups.sql(ROWS)
    killed = groups("kill", "KS5", *GO)
    assert killed.exit_code == 0, killed.stderr
    assert "1 scoped override covered" in killed.stdout
    assert decision(groups, "F3", "workspace:42")["eligible"] is False
    assert readme_sql(groups, "F3", "workspace:42") is False
    assert groups("release", "KS5", *GO).exit_code == 0
    assert state(groups) == before  # every scope back
    assert groups.sql(ROWS) == rows  # row for row: no global row left behind for a default
    assert decision(groups, "F3", "workspace:42")["eligible"] is True


@pytest.mark.parametrize("order", list(permutations(["KS4@workspace:42", "KS5", "KS1@workspace:42"])))
def test_overlapping_global_and_scoped_kills_release_in_any_order(
    groups: Cli, order: tuple[str, ...]
) -> None:
    assert groups("stage", "set", "groups", "stage1-pilot", "--force", *GO).exit_code == 0
    assert groups("set", "F1", "50%", "--scope", "workspace:42", "--force", *GO).exit_code == 0
    before, rows = state(groups), groups.sql(ROWS)
    kills = {"KS4": ["F1"], "KS5": ["F1", "F3"], "KS1": ["F3"]}
    for item in ("KS4@workspace:42", "KS5", "KS1@workspace:42"):
        switch, _, scope = item.partition("@")
        result = groups("kill", switch, "--scope", scope or "global", *GO)
        assert result.exit_code == 0, result.stderr
        for flag in kills[switch]:
            assert decision(groups, flag, "workspace:42")["eligible"] is False, (item, flag)
    for item in order:
        switch, _, scope = item.partition("@")
        result = groups("release", switch, "--scope", scope or "global", *GO)
        assert result.exit_code == 0, (item, result.stderr)
        if "KS5" not in order[: order.index(item) + 1]:  # KS5 still engaged: both stay off there
            for flag in ("F1", "F3"):
                assert decision(groups, flag, "workspace:42")["eligible"] is False, (item, flag)
    assert state(groups) == before
    assert groups.sql(ROWS) == rows


def test_a_rekill_takes_in_an_override_created_under_the_kill(groups: Cli) -> None:
    assert groups("kill", "KS5", *GO).exit_code == 0
    groups.sql(
        "INSERT INTO flagctl.flag_state (system, flag, scope, value) VALUES ('groups', 'F3', 'cohort:beta', 'true')"
    )
    again = groups("kill", "KS5", *GO)
    assert again.exit_code == 0, again.stderr
    assert "re-assert" in again.stdout
    assert readme_sql(groups, "F3", "cohort:beta") is False
    released = groups("release", "KS5", *GO)
    assert released.exit_code == 0, released.stderr
    assert readme_sql(groups, "F3", "cohort:beta") is True  # what it was when the kill took it in


def test_a_scoped_kill_beats_an_override_of_another_kind_in_eval(groups: Cli) -> None:
    """A subject in workspace:42 and user:7: KS1 at the workspace holds F3 although the user
    override (the more specific kind) says on."""
    assert groups("set", "F3", "true", "--scope", "user:7", *GO).exit_code == 0
    assert groups("kill", "KS1", "--scope", "workspace:42", *GO).exit_code == 0
    held = decision(groups, "F3", "workspace:42", "user:7")
    assert held["eligible"] is False and "KS1" in held["rule"]
    assert decision(groups, "F3", "user:7")["eligible"] is True


def test_a_release_refuses_when_a_covered_override_changed(groups: Cli) -> None:
    assert groups("set", "F3", "true", "--scope", "workspace:42", *GO).exit_code == 0
    assert groups("kill", "KS5", *GO).exit_code == 0
    groups.sql("UPDATE flagctl.flag_state SET value = 'true' WHERE flag = 'F3' AND scope = 'workspace:42'")
    refused = groups("release", "KS5", *GO)
    assert refused.exit_code == 4 and "F3 at workspace:42" in refused.stderr, refused.stderr


def test_each_covered_scope_is_computed_from_its_own_entry_alone(groups: Cli) -> None:
    """A global kill records every override it covers in its engagement's `below`. The kill's
    and the release's helpers get, at each scope, the engagement cut down to that scope's one
    entry (flagctl.kill_scopes): handed all N entries at each of N scopes, a release of a
    flag with 10,000 overrides took 9 s, quadratic in them."""
    count = 300
    groups.sql(
        "INSERT INTO flagctl.flag_state (system, flag, scope, value)"
        " SELECT 'groups', 'F3', 'workspace:' || i, 'true' FROM generate_series(1, %s) AS i",
        (count,),
    )
    assert groups("kill", "KS5", *GO).exit_code == 0
    sizes = groups.sql(
        "SELECT k.scope, (SELECT array_agg((SELECT count(*) FROM jsonb_object_keys(coalesce(h.below->'F3', '{}'))))"
        "                   FROM unnest(k.holders) AS h)"
        "  FROM flagctl.kill_slim('groups', ARRAY['F3']) AS s,"
        "       flagctl.kill_scopes('F3', s.engaged, ARRAY['global', 'workspace:999']"
        "                           || ARRAY(SELECT 'workspace:' || i FROM generate_series(1, %s) AS i)) AS k",
        (count,),
    )
    assert len(sizes) == count + 2
    assert sizes[0] == ("global", [0])  # KS5 holds the global value itself
    assert sizes[1] == ("workspace:999", None)  # no override there: nothing covers it
    assert all(entries == [1] for _, entries in sizes[2:])  # one entry each, not 300
    assert groups("release", "KS5", *GO).exit_code == 0
    assert groups.sql("SELECT count(*) FROM flagctl.flag_state WHERE flag = 'F3' AND value = 'true'") == [
        (count,)
    ]
