"""Guardrails: a value with a bound, and an honest verdict.

A guardrail reads its value from one source: read-only SQL (here) or a PromQL instant
query (``verify.prometheus``, which judges its answer by the same rules, ``judge_value``).
Each SQL one runs in its own read-only (sub)transaction with a ``statement_timeout``, so a
guardrail can neither write nor hang the operator. Its first row is ``value`` or
``value, samples``; the result is one of five verdicts, never a bare boolean:

- **pass** / **fail**: the value is inside / outside the bound;
- **inconclusive**: fewer samples than the guardrail's ``min_samples`` — too little data
  to judge either way;
- **no_data**: no row, a NULL value, or zero samples — an empty metrics window is not a
  healthy one;
- **error**: the query failed (with its SQLSTATE) or its value is not a number.

How a verdict *counts* (``counts_as``: pass, fail or inconclusive) is the guardrail's to
say for ``no_data`` (``on_no_data``) and ``error`` (``on_error``); both count as a failure
unless it says otherwise. A forward move needs every required guardrail to count as a
pass; the watchdog treats an inconclusive one as neither breach nor green.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from flagctl.model.durations import parse_duration
from flagctl.model.manifest import Guardrail
from flagctl.store.guardrails import first_row

if TYPE_CHECKING:
    import psycopg


class Verdict(StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"
    NO_DATA = "no_data"
    ERROR = "error"


# What each verdict looks like in a table: the ones that stop something stand out.
SHOWN = {
    Verdict.PASS: "pass",
    Verdict.FAIL: "FAIL",
    Verdict.INCONCLUSIVE: "INCONCLUSIVE",
    Verdict.NO_DATA: "NO DATA",
    Verdict.ERROR: "ERROR",
}


@dataclass(frozen=True)
class GuardrailResult:
    name: str
    severity: str
    value: float | None
    bound: str
    verdict: Verdict
    seconds: float
    error: str | None = None  # why there is no value (an error, or what no_data means here)
    sqlstate: str | None = None  # of the error, if the query failed
    samples: int | None = None  # the query's second column, if it returns one
    min_samples: int | None = None
    counts_as: Verdict = Verdict.FAIL  # PASS, FAIL or INCONCLUSIVE: what the verdict means for a decision
    source: str = "sql"  # where the value came from: "sql" or "prometheus"

    @property
    def passed(self) -> bool:
        return self.counts_as is Verdict.PASS

    @property
    def failed(self) -> bool:
        return self.counts_as is Verdict.FAIL

    @property
    def inconclusive(self) -> bool:
        return self.counts_as is Verdict.INCONCLUSIVE

    def shown(self) -> str:
        """The verdict as a table shows it, with how it counts when that differs."""
        text = SHOWN[self.verdict]
        if self.verdict in (Verdict.NO_DATA, Verdict.ERROR) and self.counts_as is not Verdict.FAIL:
            text += f" (counts as {self.counts_as.value})"
        return text

    def value_text(self) -> str:
        return "error" if self.verdict is Verdict.ERROR else format_value(self.value)

    def samples_text(self) -> str:
        return "" if self.samples is None else f"{self.samples:,}"

    def describe(self) -> str:
        if self.verdict in (Verdict.ERROR, Verdict.NO_DATA):
            return f"guardrail {self.name}: {self.shown()}: {self.error}"
        text = f"guardrail {self.name}: {self.value_text()} ({self.bound}) {self.shown()}"
        if self.verdict is Verdict.INCONCLUSIVE:
            return text + f": {self.samples:,} samples < min_samples {self.min_samples:,}"
        return text + ("" if self.samples is None else f" on {self.samples:,} samples")

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "severity": self.severity,
            "verdict": self.verdict.value,
            "counts_as": self.counts_as.value,
            "value": self.value,
            "samples": self.samples,
            "min_samples": self.min_samples,
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


def evaluate(
    conn: psycopg.Connection[Any], name: str, guard: Guardrail, environ: Mapping[str, str] | None = None
) -> GuardrailResult:
    """Run one guardrail: its SQL inside the caller's transaction, as a read-only savepoint,
    or its Prometheus query (``verify.prometheus``; its URL, if the manifest gives none, from
    ``environ``'s ``FLAGCTL_PROMETHEUS_URL`` — the process's environment by default)."""
    import psycopg

    if guard.prometheus is not None:
        return _from_prometheus(name, guard, os.environ if environ is None else environ)
    assert guard.sql is not None  # the manifest gives exactly one source
    timeout_ms = int(parse_duration(guard.timeout).total_seconds() * 1000)
    started = time.perf_counter()
    try:
        row = first_row(conn, guard.sql, f"{timeout_ms}ms")  # read-only, one statement only
    except psycopg.Error as exc:
        if conn.broken:  # the connection is gone: that is not a failed guardrail
            raise
        message = (exc.diag.message_primary or str(exc)).strip()
        seconds = time.perf_counter() - started
        return _result(name, guard, Verdict.ERROR, seconds, error=f"{message} (SQLSTATE {exc.sqlstate})",
                       sqlstate=exc.sqlstate)  # fmt: skip
    return judge(name, guard, row, time.perf_counter() - started)


def judge(name: str, guard: Guardrail, row: tuple[Any, ...] | None, seconds: float = 0.0) -> GuardrailResult:
    """The verdict on a guardrail's first row (None: the query returned none)."""
    if row is None:
        return _result(name, guard, Verdict.NO_DATA, seconds, error="the query returned no rows")
    samples: int | None = None
    if len(row) > 1:
        try:
            samples = 0 if row[1] is None else _count(row[1])
        except (TypeError, ValueError):
            return _result(
                name, guard, Verdict.ERROR, seconds, error="the second column (samples) is not a count"
            )
    elif guard.min_samples is not None:
        return _result(
            name, guard, Verdict.ERROR, seconds,
            error=f"min_samples {guard.min_samples} needs the sample count as the query's second column",
        )  # fmt: skip
    if row[0] is None:
        return _result(
            name, guard, Verdict.NO_DATA, seconds, error="the query returned NULL", samples=samples
        )
    try:
        value = float(row[0])
    except (TypeError, ValueError):
        return _result(name, guard, Verdict.ERROR, seconds, error="the first column is not a number")
    return judge_value(name, guard, value, samples, seconds)


def judge_value(
    name: str, guard: Guardrail, value: float, samples: int | None, seconds: float = 0.0
) -> GuardrailResult:
    """The verdict on a value and its sample count, whatever source read them: the rules a
    SQL row and a Prometheus answer share (NaN, no samples, too few, the bound)."""
    if samples is None and guard.min_samples is not None:
        return _result(
            name, guard, Verdict.ERROR, seconds,
            error=f"min_samples {guard.min_samples} needs a sample count beside the value",
        )  # fmt: skip
    if math.isnan(value):
        return _result(name, guard, Verdict.ERROR, seconds, error="the value is NaN", samples=samples)
    if samples == 0:
        return _result(name, guard, Verdict.NO_DATA, seconds, value=value, samples=0,
                       error=f"0 samples behind the value {format_value(value)}")  # fmt: skip
    if guard.min_samples is not None and samples is not None and samples < guard.min_samples:
        return _result(name, guard, Verdict.INCONCLUSIVE, seconds, value=value, samples=samples)
    verdict = Verdict.PASS if within(value, guard) else Verdict.FAIL
    return _result(name, guard, verdict, seconds, value=value, samples=samples)


def _from_prometheus(name: str, guard: Guardrail, environ: Mapping[str, str]) -> GuardrailResult:
    from flagctl.verify import prometheus

    assert guard.prometheus is not None
    started = time.perf_counter()
    try:
        reading = prometheus.read(guard.prometheus, parse_duration(guard.timeout).total_seconds(), environ)
    except prometheus.QueryFailed as exc:
        return _result(name, guard, Verdict.ERROR, time.perf_counter() - started, error=str(exc))
    seconds = time.perf_counter() - started
    if reading.value is None:
        return _result(name, guard, Verdict.NO_DATA, seconds,
                       error="the query returned an empty vector (no series matched)")  # fmt: skip
    return judge_value(name, guard, reading.value, reading.samples, seconds)


def counts_as(verdict: Verdict, guard: Guardrail) -> Verdict:
    """What a verdict means for a decision: PASS, FAIL or INCONCLUSIVE."""
    if verdict is Verdict.NO_DATA:
        return Verdict(guard.on_no_data)
    if verdict is Verdict.ERROR:
        return Verdict(guard.on_error)
    return verdict


def within(value: float, guard: Guardrail) -> bool:
    if guard.max is not None and value > guard.max:
        return False
    return not (guard.min is not None and value < guard.min)


def _count(value: Any) -> int:
    number = float(value)
    if not number.is_integer() or number < 0:
        raise ValueError("not a count")
    return int(number)


def _result(
    name: str,
    guard: Guardrail,
    verdict: Verdict,
    seconds: float,
    *,
    value: float | None = None,
    samples: int | None = None,
    error: str | None = None,
    sqlstate: str | None = None,
) -> GuardrailResult:
    return GuardrailResult(
        name, guard.severity, value, bound_text(guard), verdict, seconds, error, sqlstate,
        samples, guard.min_samples, counts_as(verdict, guard), guard.source,
    )  # fmt: skip
