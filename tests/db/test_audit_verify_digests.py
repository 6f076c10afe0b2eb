"""A full `audit verify` recomputes each row's digest once: the rows' pass checks the row's
own hash and its seal's with it. It was computed in both passes (the seals' and the rows'),
twice for every row: most of the 32 s a million rows took. Counted exactly, with
PostgreSQL's own count of the calls of flagctl.audit_digest in one transaction."""

from __future__ import annotations

import json

import psycopg

from flagctl.store.audit import ROWS, SEALS
from tests.conftest import Cli
from tests.db.test_audit_scale import history
from tests.db.test_kill_path import tamper

DIGESTS = "SELECT coalesce(sum(calls), 0) FROM pg_stat_xact_user_functions WHERE funcname = 'audit_digest'"


def test_verify_computes_each_rows_digest_once(ws8: Cli) -> None:
    history(ws8, 500)
    (rows,) = ws8.sql("SELECT count(*) FROM flagctl.audit")[0]
    with psycopg.connect(ws8.dsn) as conn:  # both passes in one transaction: its own counts
        conn.execute("SET LOCAL track_functions = 'all'")
        assert len(conn.execute(SEALS, {"pos": 0}).fetchall()) == rows
        assert len(conn.execute(ROWS, {"seq": 0}).fetchall()) == rows
        row = conn.execute(DIGESTS).fetchone()
    assert row is not None
    assert row[0] == rows, (row[0], rows)  # it was twice as many
    assert ws8("audit", "verify").exit_code == 0


def test_a_sealed_row_rewritten_with_a_hash_to_match_is_caught_by_its_seal(ws8: Cli) -> None:
    history(ws8, 5)
    (seq, pos) = ws8.sql("SELECT seq, pos FROM flagctl.audit_seal ORDER BY pos DESC LIMIT 1")[0]
    rewrite = f"UPDATE flagctl.audit SET reason = 'routine' WHERE seq = {seq};"  # noqa: S608
    rehash = f" UPDATE flagctl.audit a SET hash = flagctl.audit_digest(a) WHERE seq = {seq};"  # noqa: S608
    tamper(ws8, rewrite + rehash)  # the row's own hash agrees with it again: only the seal knows
    result = ws8("audit", "verify", "-o", "json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["problems"] == [
        f"row {seq}: contents changed after it was written (seal {pos} does not match)"
    ]
