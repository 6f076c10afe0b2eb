"""`audit verify --since-checkpoint`: what came after a checkpoint an earlier verify covered,
and only that — its cost follows the rows written since, not the trail — while a rewrite
after it, or of the checkpoint's own seal, is still caught."""

from __future__ import annotations

import json

from tests.conftest import Cli
from tests.db.test_audit_scale import audit_rows_read, history
from tests.db.test_kill_path import tamper

GO = ("-r", "INC-7", "-y")


def test_only_the_rows_since_the_checkpoint_are_checked_and_a_rewrite_among_them_is_caught(ws8: Cli) -> None:
    history(ws8, 5_000)
    assert ws8("audit", "verify").exit_code == 0  # the full verify, once
    token = ws8("audit", "checkpoint").stdout.strip()
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    assert ws8("kill", "p3-off", *GO).exit_code == 0
    new = ws8.sql("SELECT count(*) FROM flagctl.audit WHERE seq > (SELECT seq FROM flagctl.audit_seal WHERE pos = %s)",
                  (int(token.split(":")[0]),))[0][0]  # fmt: skip
    result = ws8("audit", "verify", "--since-checkpoint", token, "-o", "json")
    assert result.exit_code == 0, result.stdout
    assert json.loads(result.stdout)["rows"] == new  # the rows since, not the 5,000 before
    text = ws8("audit", "verify", "--since-checkpoint", token)
    assert f"audit chain intact since seal {token.split(':')[0]}: {new} rows" in text.stdout
    # A row written since, rewritten by a superuser around the append-only guard: caught.
    (kill_seq,) = ws8.sql("SELECT min(seq) FROM flagctl.audit WHERE action = 'kill'")[0]
    tamper(ws8, f" UPDATE flagctl.audit SET reason = 'routine' WHERE seq = {kill_seq};")  # noqa: S608
    caught = ws8("audit", "verify", "--since-checkpoint", token)
    assert caught.exit_code == 1 and f"row {kill_seq}: contents changed" in caught.stderr


def test_a_rewritten_checkpoint_seal_is_caught_and_nothing_else_is_trusted(ws8: Cli) -> None:
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    token = ws8("audit", "checkpoint").stdout.strip()
    pos = int(token.split(":")[0])
    tamper(ws8, f" UPDATE flagctl.audit_seal SET hash = repeat('0', 64) WHERE pos = {pos};")  # noqa: S608
    caught = ws8("audit", "verify", "--since-checkpoint", token)
    assert caught.exit_code == 1 and f"seal {pos} differs from the checkpoint" in caught.stderr
    bad = ws8("audit", "verify", "--since-checkpoint", "12:nothex")
    assert bad.exit_code == 2 and "--since-checkpoint: not a checkpoint" in bad.stderr


def test_the_incremental_read_touches_the_rows_since_not_the_trail(ws8: Cli) -> None:
    from flagctl.store.audit import FIRST_AFTER, ROWS

    history(ws8, 20_000)
    token = ws8("audit", "checkpoint").stdout.strip()
    assert ws8("stage", "set", "p3", "canary", *GO).exit_code == 0
    ws8("audit", "checkpoint")  # seal the move
    (after,) = ws8.sql(FIRST_AFTER.replace("%s", token.split(":")[0]))[0][:1]
    assert audit_rows_read(ws8, ROWS, {"seq": after}) <= 10
