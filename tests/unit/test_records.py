"""Typed records where there were dicts and ``Any``: lock blockers, validated records."""

from __future__ import annotations

import dataclasses

import pytest

from flagctl.errors import Blocker, ConflictError
from flagctl.model.shape import Invalid, Name, Percent, Record, validate
from flagctl.store.db import _blockers, lock_conflict


def test_a_lock_conflict_names_its_first_blocker_and_keeps_them_all() -> None:
    rows = [
        (41, "deploy", "migrate.py", "idle in transaction", "UPDATE p3_feature_state SET …", 12, None),
        (42, "ops", "?", "active", "SELECT 1", 0, None),
    ]
    blockers = _blockers(rows)
    assert blockers[0] == Blocker(
        41, "deploy", "migrate.py", "idle in transaction", "UPDATE p3_feature_state SET …", 12
    )
    error = lock_conflict("flag p3", blockers)
    assert isinstance(error, ConflictError) and error.blockers == blockers
    assert error.message == (
        "could not lock flag p3 within lock_timeout: held by pid 41 (application_name migrate.py, "
        "idle in transaction): UPDATE p3_feature_state SET … (+1 more)"
    )
    assert error.hint is not None and error.hint.endswith("; flagctl kill --break-locks ends it")
    with pytest.raises(dataclasses.FrozenInstanceError):
        blockers[0].pid = 1  # type: ignore[misc]


def test_a_lock_conflict_without_a_blocker_says_it_finished() -> None:
    error = lock_conflict("flag p3", [])
    assert error.blockers == [] and "held by another transaction (it has finished since)" in error.message


@dataclasses.dataclass(frozen=True, kw_only=True)
class Point(Record):
    name: Name
    percent: Percent = 0


def test_validate_builds_the_record_type_it_is_given() -> None:
    point = validate(Point, {"name": "p3", "percent": 5})  # typed Point: validate(type[T], …) -> T
    assert type(point) is Point and point == Point(name="p3", percent=5)
    with pytest.raises(Invalid) as refused:
        validate(Point, {"name": "p3", "percent": 101, "colour": "red"})
    assert {e["type"] for e in refused.value.errors} == {"less_than_equal", "extra_forbidden"}
