"""Four eyes between two real database users: approvals of chosen changes (ORCA's manual
approval at 50%, any --force) and the post-action review of emergency actions."""

from __future__ import annotations

import json
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import Cli
from tests.db.test_governance import name_of, user

GO = ("-y",)


@pytest.fixture
def pair(orca: Cli) -> Iterator[tuple[Cli, Cli]]:
    """Two release managers, alice and bob, as separate database users."""
    with user(orca, "release", "security") as alice, user(orca, "release", "security") as bob:
        alice.clock = bob.clock = orca.clock
        yield alice, bob


def percent(orca: Cli) -> int:
    return orca.sql("SELECT rollout_percentage FROM feature_flags WHERE flag_name = 'new_trust_algorithm'")[
        0
    ][0]  # type: ignore[no-any-return]


def to_25(cli: Cli) -> None:
    assert cli("stage", "next", "trust", "-r", "canary", *GO).exit_code == 0
    cli.clock.advance(minutes=31)
    assert cli("stage", "next", "trust", "-r", "25%", *GO).exit_code == 0
    cli.clock.advance(minutes=61)


def test_a_move_to_50_percent_waits_for_a_second_person(orca: Cli, pair: tuple[Cli, Cli]) -> None:
    alice, bob = pair
    to_25(alice)
    asked = alice("stage", "next", "trust", "-r", "CHG-9: 50% after a clean day", *GO)
    assert asked.exit_code == 1 and "waits as request" in asked.stderr, asked.stderr
    assert percent(orca) == 25
    pending = json.loads(alice("requests", "-o", "json").stdout)["requests"]
    assert [(r["status"], r["action"]) for r in pending] == [("pending", "stage.set")]
    request_id = str(pending[0]["id"])

    own = alice("approve", request_id, "-r", "I approve my own", *GO)
    assert own.exit_code == 5 and "four eyes" in own.stderr, own.stderr
    assert percent(orca) == 25
    with (  # and in psql
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        psycopg.connect(alice.dsn, autocommit=True) as conn,
    ):
        conn.execute("UPDATE flagctl.requests SET status = 'approved' WHERE id = %s", (int(request_id),))

    approved = bob("approve", request_id, "-r", "looked at the dashboards", *GO)
    assert approved.exit_code == 0, approved.stderr
    assert percent(orca) == 50
    record = json.loads(bob("requests", "--all", "-o", "json").stdout)["requests"][0]
    assert (record["status"], record["approved_by"]) == ("approved", name_of(bob))
    again = bob("approve", request_id, "-r", "twice", *GO)
    assert again.exit_code == 1 and percent(orca) == 50
    rows = json.loads(orca("audit", "log", "--action", "stage.set", "-o", "json").stdout)["rows"]
    assert rows[0]["db_user"] == name_of(bob) and f"approve request {request_id}" in rows[0]["reason"]


def test_an_approval_is_checked_again_when_applied(orca: Cli, pair: tuple[Cli, Cli]) -> None:
    alice, bob = pair
    to_25(alice)
    asked = alice("stage", "next", "trust", "-r", "50%", *GO)
    request_id = str(json.loads(alice("requests", "-o", "json").stdout)["requests"][0]["id"])
    assert asked.exit_code == 1
    assert orca("freeze", "set", "-r", "INC-3", *GO).exit_code == 0
    frozen = bob("approve", request_id, "-r", "ok", *GO)
    assert frozen.exit_code == 1 and "frozen" in frozen.stderr
    assert percent(orca) == 25
    assert json.loads(bob("requests", "-o", "json").stdout)["requests"][0]["status"] == "pending"


def test_a_request_expires(orca: Cli, pair: tuple[Cli, Cli]) -> None:
    alice, bob = pair
    assert alice("set", "new_trust_algorithm", "60%", "--force", "-r", "hotfix", *GO).exit_code == 1
    request_id = json.loads(alice("requests", "-o", "json").stdout)["requests"][0]["id"]
    orca.sql("ALTER TABLE flagctl.requests DISABLE TRIGGER flagctl_guard;"
             " UPDATE flagctl.requests SET expires_at = now() - interval '1 second';"
             " ALTER TABLE flagctl.requests ENABLE TRIGGER flagctl_guard")  # fmt: skip
    late = bob("approve", str(request_id), "-r", "too late", *GO)
    assert late.exit_code == 5 and "expired" in late.stderr, late.stderr
    assert percent(orca) == 0


def test_emergency_actions_need_a_review_by_someone_else(orca: Cli, pair: tuple[Cli, Cli]) -> None:
    alice, bob = pair
    assert orca("review", "pending").exit_code == 0
    assert alice("kill", "trust-algorithm-off", "-r", "INC-8", *GO).exit_code == 0
    pending = bob("review", "pending", "-o", "json")
    assert pending.exit_code == 1
    seq = json.loads(pending.stdout)["pending"][0]["audit_seq"]
    own = alice("review", "ack", str(seq), "--note", "fine by me")
    assert own.exit_code == 5 and "cannot review it too" in own.stderr, own.stderr
    done = bob("review", "ack", str(seq), "--note", "kill was right; postmortem PM-8")
    assert done.exit_code == 0, done.stderr
    assert orca("review", "pending").exit_code == 0
    assert "nothing to do" in bob("review", "ack", str(seq), "--note", "again").stdout
