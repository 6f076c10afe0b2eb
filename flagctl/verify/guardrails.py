"""Guardrails: read-only SQL with a bound on the first column of the first row.

Each runs in its own read-only (sub)transaction with a ``statement_timeout``, so a
guardrail can neither write nor hang the operator. A query error is a failed guardrail
carrying its SQLSTATE, never a crash; a query that returns no value fails too (closed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from flagctl.model.durations import parse_duration
from flagctl.model.manifest import Guardrail
from flagctl.store.guardrails import first_row

if TYPE_CHECKING:
    import psycopg


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    severity: str
    value: float | None
    bound: str
    passed: bool
    seconds: float
    error: str | None = None
    sqlstate: str | None = None  # of the error, if the query failed

    def describe(self) -> str:
        if self.error:
            return f"guardrail {self.name}: error: {self.error}"
        verdict = "pass" if self.passed else "FAIL"
        return f"guardrail {self.name}: {format_value(self.value)} ({self.bound}) {verdict}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "severity": self.severity,
            "value": self.value,
            "bound": self.bound,
            "passed": self.passed,
            "seconds": round(self.seconds, 4),
            "error": self.error,
        }


def format_value(value: float | None) -> str:
    if value is None:
        return "no value"
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def bound_text(guard: Guardrail) -> str:
    parts = []
    if guard.min is not None:
        parts.append(f"min {format_value(guard.min)}")
    if guard.max is not None:
        parts.append(f"max {format_value(guard.max)}")
    return ", ".join(parts)


def evaluate(conn: psycopg.Connection[Any], name: str, guard: Guardrail) -> GuardrailResult:
    """Run one guardrail (inside the caller's transaction, as a read-only savepoint)."""
    import psycopg

    timeout_ms = int(parse_duration(guard.timeout).total_seconds() * 1000)
    started = time.perf_counter()
    value: float | None = None
    error: str | None = None
    sqlstate: str | None = None
    try:
        row = first_row(conn, guard.sql, f"{timeout_ms}ms")  # read-only, one statement only
        if row is None or row[0] is None:
            error = "the query returned no value (fails closed)"
        else:
            value = float(row[0])
    except psycopg.Error as exc:
        if conn.broken:  # the connection is gone: that is not a failed guardrail
            raise
        message = (exc.diag.message_primary or str(exc)).strip()
        error = f"{message} (SQLSTATE {exc.sqlstate})"
        sqlstate = exc.sqlstate
    except (TypeError, ValueError):
        error = "the first column is not a number"
    seconds = time.perf_counter() - started
    passed = error is None and _within(value, guard)
    return GuardrailResult(name, guard.severity, value, bound_text(guard), passed, seconds, error, sqlstate)


def _within(value: float | None, guard: Guardrail) -> bool:
    if value is None:
        return False
    if guard.max is not None and value > guard.max:
        return False
    return not (guard.min is not None and value < guard.min)
