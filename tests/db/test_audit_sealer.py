"""The sealer keeps up with its writers: each transaction's at-commit seal takes at least as
many rows as it wrote (and at most 1,000 more, so a kill never pays for a large backlog).
Until now it took at most 1,000 whatever it wrote: a writer of bigger transactions left a
backlog that grew with every commit until `audit verify`. Counted exactly: the rows sealed
and the rows left waiting."""

from __future__ import annotations

import psycopg

from tests.conftest import Cli
from tests.db.test_audit_scale import history


def waiting(cli: Cli) -> int:
    (rows,) = cli.sql("SELECT rows FROM flagctl.audit_backlog()")[0]
    return int(rows)


def sealed(cli: Cli) -> int:
    (rows,) = cli.sql("SELECT count(*) FROM flagctl.audit_seal")[0]
    return int(rows)


def test_a_transaction_of_5000_rows_seals_them_all_at_its_commit(ws8: Cli) -> None:
    before = sealed(ws8)
    history(ws8, 5_000)  # one transaction
    assert waiting(ws8) == 0  # it was 4,000: the seal stopped at 1,000
    assert sealed(ws8) == before + 5_000
    assert ws8("audit", "verify").exit_code == 0


def test_each_commit_takes_its_own_rows_and_1000_of_the_backlog(ws8: Cli) -> None:
    with psycopg.connect(ws8.dsn) as holder:  # the seal held: the writers' seals skip
        holder.execute("SELECT flagctl.audit_seal(true, 0)")
        history(ws8, 3_000)
        holder.rollback()
    assert waiting(ws8) == 3_000
    before = sealed(ws8)
    history(ws8, 10)
    assert sealed(ws8) == before + 1_010  # the 1,010 oldest: 1,000 of the backlog, then 10
    assert waiting(ws8) == 2_000
    history(ws8, 2_500)  # a bigger writer: its 2,500 and 1,000 more
    assert waiting(ws8) == 1_000
    assert ws8("audit", "verify").exit_code == 0


# A statement-level trigger of the test's own: how many INSERTs of seals and DELETEs of
# waiting rows the sealer ran.
COUNT_STATEMENTS = """
CREATE TABLE public.sealer_statements (tbl text, op text);
CREATE FUNCTION public.count_statement() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO public.sealer_statements VALUES (TG_TABLE_NAME, TG_OP);
    RETURN NULL;
END $$;
CREATE TRIGGER count_seals AFTER INSERT ON flagctl.audit_seal
    FOR EACH STATEMENT EXECUTE FUNCTION public.count_statement();
CREATE TRIGGER count_waiting AFTER DELETE ON flagctl.audit_unsealed
    FOR EACH STATEMENT EXECUTE FUNCTION public.count_statement();
"""


def test_the_sealer_writes_a_backlog_in_chunks_not_a_statement_per_row(ws8: Cli) -> None:
    with psycopg.connect(ws8.dsn) as holder:
        holder.execute("SELECT flagctl.audit_seal(true, 0)")
        history(ws8, 25_000)
        holder.rollback()
    ws8.sql(COUNT_STATEMENTS)
    (count,) = ws8.sql("SELECT flagctl.audit_seal(true)")[0]
    assert count == 25_000
    statements = ws8.sql("SELECT tbl, op, count(*) FROM public.sealer_statements GROUP BY 1, 2 ORDER BY 1")
    # Three chunks of at most 10,000 rows (it was 25,000 of each, one a row).
    assert statements == [("audit_seal", "INSERT", 3), ("audit_unsealed", "DELETE", 3)]
    assert waiting(ws8) == 0
    assert ws8("audit", "verify").exit_code == 0  # the same chain, link for link
