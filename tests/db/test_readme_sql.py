"""The README's "How an application reads a flag" queries give what flagctl itself says."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.conftest import Cli

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()
SECTION = README.split("### How an application reads a flag", 1)[1].split("\n### ", 1)[0]
SCOPED, ROLLOUT = (q.strip() for q in re.search(r"```sql\n(.*?)```", SECTION, re.S)[1].split("\n\n"))  # type: ignore[index]
GO = ("-r", "r", "-y")


def test_the_scoped_read_returns_the_override_then_the_global_value(groups: Cli) -> None:
    assert groups.sql(SCOPED) == []  # nothing stored yet: the manifest's default applies
    groups("set", "F3", "on", "--scope", "workspace:42", *GO)
    assert groups.sql(SCOPED) == [(True,)]
    groups("set", "F3", "off", "--scope", "workspace:42", *GO)
    groups("set", "F3", "on", *GO)
    assert groups.sql(SCOPED) == [(False,)]  # the override beats the global row


def test_the_rollout_read_agrees_with_eval(canary: Cli) -> None:
    seen = set()
    for stage in ("internal", "5pct", "50pct", "full"):
        canary.clock.advance(days=30)
        assert canary("stage", "set", "canary", stage, *GO).exit_code == 0, stage
        decision = json.loads(canary("eval", "canary_feature", "--id", "1234", "-o", "json").stdout)
        assert canary.sql(ROLLOUT) == [(decision["eligible"],)], stage
        seen.add(decision["eligible"])
    assert seen == {True, False}  # the subject crossed from out to in: both answers were checked
