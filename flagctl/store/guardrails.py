"""A guardrail's query (the manifest's own SQL), run as one statement in a read-only
(sub)transaction with the guardrail's timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flagctl.store.db import read_only

if TYPE_CHECKING:
    import psycopg


def first_row(conn: psycopg.Connection[Any], sql_text: str, timeout: str) -> tuple[Any, ...] | None:
    """The first row of a guardrail's query; a failing query raises its ``psycopg.Error``."""
    with read_only(conn, timeout):
        # prepare=True: the extended protocol, one statement only — a guardrail cannot
        # end its read-only transaction ("select 0; rollback; insert …") and write.
        return conn.execute(sql_text.encode(), prepare=True).fetchone()
