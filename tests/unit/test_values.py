from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flagctl.errors import UsageError
from flagctl.model.durations import format_duration, parse_duration, parse_since, parse_until
from flagctl.model.manifest import load_manifest
from flagctl.model.values import DARK, Rollout, parse_rollout
from tests.conftest import WS8_MANIFEST


@pytest.mark.parametrize(
    ("text", "value"),
    [("5%", Rollout(True, 5)), ("100", Rollout(True, 100)), ("0%", Rollout(True, 0)), ("off", DARK)],
)
def test_parse_rollout(text: str, value: Rollout) -> None:
    assert parse_rollout(text) == value


@pytest.mark.parametrize("text", ["101%", "-1%", "five", "5.5%", ""])
def test_parse_rollout_rejects(text: str) -> None:
    with pytest.raises(UsageError, match="not a rollout value"):
        parse_rollout(text)


def test_effective_state_rules_of_the_seeds() -> None:
    assert Rollout(False, 50).effective() == "off"  # enabled=false ⇒ off
    assert Rollout(True, 0).effective() == "dark"  # enabled, 0% ⇒ off (dark)
    assert Rollout(True, 0).exposure == 0
    assert Rollout(True, 5).effective() == "on 5%"


def test_ladder_position_treats_enabled_at_zero_percent_as_dark() -> None:
    ladder = load_manifest(WS8_MANIFEST).ladder("p3")
    at = lambda enabled, percent: ladder.position({"p3_advisory": Rollout(enabled, percent)})  # noqa: E731
    assert at(True, 0).name == "dark"  # type: ignore[union-attr]
    assert at(False, 40).name == "dark"  # type: ignore[union-attr]
    assert at(True, 7).name == "limited"  # type: ignore[union-attr]
    assert at(True, 3) is None  # between canary and limited: off the ladder
    assert at(True, 100).name == "full"  # type: ignore[union-attr]


@pytest.mark.parametrize(("text", "seconds"), [("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("45s", 45)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)
    assert parse_duration(format_duration(timedelta(seconds=seconds))) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "soon", "5", "1h 3x"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_since_accepts_durations_and_iso_times() -> None:
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    assert parse_since("2h", now) == now - timedelta(hours=2)
    assert parse_since("2h ago", now) == now - timedelta(hours=2)
    assert parse_since("2026-11-21T09:00", now) == datetime(2026, 11, 21, 9, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="not a time"):
        parse_since("yesterday-ish", now)


def test_parse_until_takes_a_time_or_a_duration_from_now() -> None:
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert parse_until("4h", now) == datetime(2026, 12, 1, 16, 0, tzinfo=UTC)
    assert parse_until("2026-12-01T18:00Z", now) == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
    assert parse_until("2026-12-01T18:00", now) == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)  # UTC if no zone
    with pytest.raises(ValueError, match="neither a time nor a duration"):
        parse_until("tomorrow", now)
