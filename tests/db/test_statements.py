"""What a command sends to PostgreSQL does not grow with the number of flags it touches.

Counted on the wire (libpq's own trace, tests/wire.py): *statements* are the SQL the
command sends (BEGIN, COMMIT and savepoints are counted as round trips, not statements).
The bound is 6 statements for a kill (up to its COMMIT; one more read after it reports
drift), a release and a profile apply, on WS8 (a bound application table), on the
recommender (constraints, twelve flags in flagctl's table) and on the Groups rebuild (KS5
includes four lower switches: six flags).
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Cli
from tests.wire import Wire, traced

GO = ("-r", "INC-1", "-y")
BOUND = 6


def sent(monkeypatch: pytest.MonkeyPatch, cli: Cli, *args: str) -> Wire:
    with traced(monkeypatch) as wire:
        result = cli(*args, *GO)
    assert result.exit_code == 0, result.stderr
    assert "nothing to do" not in result.stdout, "the command must really change something"
    return wire


@pytest.mark.parametrize(
    ("example", "switch", "prepare"),
    [
        ("ws8", "p3-off", lambda cli: cli("stage", "set", "p3", "canary", *GO)),
        ("recsys", "cf-off", lambda cli: None),
        ("groups", "KS5", lambda cli: None),
    ],
)
def test_kill_and_release_send_at_most_six_statements(
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    example: str,
    switch: str,
    prepare: Callable[[Cli], object],
) -> None:
    cli: Cli = request.getfixturevalue(example)
    prepare(cli)
    kill = sent(monkeypatch, cli, "kill", switch)
    assert len(kill.until_commit) <= BOUND, kill.until_commit
    assert len(kill.statements) <= BOUND + 1, kill.statements  # after the commit: the drift report
    release = sent(monkeypatch, cli, "release", switch)
    assert len(release.statements) <= BOUND, release.statements


def test_profile_apply_sends_at_most_six_statements(recsys: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    wire = sent(monkeypatch, recsys, "profile", "apply", "emergency")
    assert len(wire.statements) <= BOUND, wire.statements


def flags_manifest(count: int) -> str:
    flags = "".join(
        f"  f{i}: {{type: rollout, default: {{enabled: true, percent: 50}}}}\n" for i in range(count)
    )
    sets = ", ".join(f"f{i}: {{enabled: false}}" for i in range(count))
    return f"version: 1\nsystem: wide{count}\nflags:\n{flags}kill_switches:\n  off: {{level: 5, set: {{{sets}}}}}\n"


def test_a_kill_of_forty_flags_sends_what_a_kill_of_two_sends(make_cli, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    counts = []
    for count in (2, 40):
        cli = make_cli(flags_manifest(count))
        assert cli("db", "init").exit_code == 0
        kill = sent(monkeypatch, cli, "kill", "off")
        release = sent(monkeypatch, cli, "release", "off")
        counts.append((len(kill.statements), kill.round_trips, len(release.statements), release.round_trips))
    assert counts[0] == counts[1]


def test_the_counter_sees_every_statement(ws8: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    """The trace is not blind: one statement per flag would show (WS8's seed UPDATE by hand)."""
    import psycopg

    with traced(monkeypatch) as wire, psycopg.connect(ws8.dsn, autocommit=True) as conn:
        for _ in range(3):
            conn.execute(
                "UPDATE p3_feature_state SET rollout_percent = 0 WHERE feature_name = %s", ("p3_advisory",)
            )
    assert len(wire.statements) == 3 and wire.round_trips == 3
