"""Property: any sequence of global and scoped kills and releases, over flags with scoped
overrides, keeps every held flag off where it is held — for flagctl's evaluation and for an
application reading the rows — and releasing everything, in any order, leaves flagctl's
table row for row as it was."""

from __future__ import annotations

import json
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import Cli

GO = ("-r", "INC-P", "-y")
ROWS = "SELECT flag, scope, value::text FROM flagctl.flag_state ORDER BY flag, scope"
ENGAGEMENTS = [
    "KS1@workspace:42",
    "KS4@workspace:42",
    "KS3@workspace:7",
    "KS5@global",
    "KS1@global",
    "KS4@global",
]
SETTINGS = {"KS1": {"F3": False}, "KS3": {"groups_send": False}, "KS4": {"F1": "off"}, "KS5": {
    "F3": False, "groups_send": False, "groups_create": False, "F1": "off", "F5": True, "F2": False}}  # fmt: skip
EXAMPLES = int(os.environ.get("FLAGCTL_FUZZ_EXAMPLES", "25")) // 3 or 1  # make test: 8; CI slow run: more


def held_everywhere(groups: Cli, engaged: list[str]) -> None:
    """Every flag an engaged switch sets is at its kill value where the switch holds it."""
    for item in engaged:
        switch, scope = item.split("@")
        for flag, off in SETTINGS[switch].items():
            if flag in ("F1",):
                args = ["--scope", scope] if scope != "global" else []
                decision = json.loads(groups("eval", flag, "--id", "u-1", *args, "-o", "json").stdout)
                assert decision["eligible"] is False, (item, flag, decision)
                continue
            where = [scope] if scope != "global" else ["global", "workspace:42", "workspace:7"]
            for at in where:
                rows = groups.sql(
                    "SELECT value FROM flagctl.flag_state WHERE flag = %s AND scope IN (%s, 'global')"
                    " ORDER BY scope = 'global' LIMIT 1",
                    (flag, at),
                )
                if rows:  # no row at all: the manifest default, which a kill writes when it holds it
                    assert rows[0][0] == off, (item, flag, at, rows)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(
    overrides=st.lists(
        st.sampled_from(["F3@workspace:42", "F3@workspace:7", "groups_send@workspace:7"]), unique=True
    ),
    engage=st.lists(st.sampled_from(ENGAGEMENTS), unique=True, min_size=1, max_size=4),
    order=st.randoms(use_true_random=False),
)
def check(groups: Cli, overrides: list[str], engage: list[str], order) -> None:  # type: ignore[no-untyped-def]
    groups.sql("TRUNCATE flagctl.engaged_switch; DELETE FROM flagctl.flag_state")
    for item in overrides:
        flag, scope = item.split("@")
        assert groups("set", flag, "on", "--scope", scope, *GO).exit_code == 0
    before = groups.sql(ROWS)
    engaged: list[str] = []
    for item in engage:
        switch, scope = item.split("@")
        result = groups("kill", switch, "--scope", scope, *GO)
        assert result.exit_code == 0, (item, result.stderr)
        engaged.append(item)
        held_everywhere(groups, engaged)
    releasing = list(engaged)
    order.shuffle(releasing)
    for item in releasing:
        switch, scope = item.split("@")
        result = groups("release", switch, "--scope", scope, *GO)
        assert result.exit_code == 0, (item, engage, releasing, result.stderr)
        engaged.remove(item)
        held_everywhere(groups, engaged)
    assert groups.sql(ROWS) == before, (overrides, engage, releasing)


def test_kills_over_scopes_hold_and_release_exactly(groups: Cli) -> None:
    check(groups)
