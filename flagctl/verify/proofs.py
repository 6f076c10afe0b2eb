"""Proofs: verification procedures that run against the live database and can fail.

- gating (WS8 §9.1): for a sample of subjects, eligibility is identical in Python and SQL,
  stable across two runs, monotonic in percent, and the eligible share is within a
  binomial tolerance of the percent.
- kill (WS8 §9.2): with the phase killed, the write counters of its tables (the manifest's
  ``proofs.phase_tables`` pattern) do not move over a window.
- isolation (WS8 §9.3): the phase's role (``proofs.phase_role``) holds no write privilege
  outside its tables, and with the phase active the mutation counters of the other tables
  move no more than in a baseline window recorded while it was dark (within a tolerance).

Statistics lag: ``pg_stat_user_tables`` is fed lazily. A backend flushes its counters when
a transaction ends, but no more than once a second, and an idle backend with pending
counters flushes only after PostgreSQL's idle interval (10 s). So after the window the
proofs wait ``stats_lag`` more (default 11 s) before the closing snapshot: a write made in
the window has then always arrived, and a proof never passes because counters were late.
(A write made during the extra wait is counted too: the proofs err towards failing.)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from flagctl.errors import UsageError
from flagctl.model.durations import format_duration
from flagctl.model.flagtypes import RolloutFlag
from flagctl.model.manifest import Manifest
from flagctl.rules.bucketing import bucket, eligible
from flagctl.rules.kills import holding
from flagctl.store import bucketing
from flagctl.store import proofs as store
from flagctl.store.flags import FlagStore
from flagctl.store.switches import list_engaged

if TYPE_CHECKING:
    import psycopg

IDLE_FLUSH = timedelta(seconds=10)  # PostgreSQL's PGSTAT_IDLE_INTERVAL
Sleep = Callable[[float], None]


@dataclass
class ProofResult:
    name: str
    passed: bool | None  # None: not applicable in the current state
    summary: str
    evidence: list[str] = field(default_factory=list)
    seconds: float = 0.0
    skipped: bool = False  # not run at all (the summary says why)

    @property
    def verdict(self) -> str:
        if self.skipped:
            return "skip"
        return "n/a" if self.passed is None else ("pass" if self.passed else "FAIL")

    def to_json(self) -> dict[str, Any]:
        return {
            "proof": self.name,
            "passed": self.passed,
            "verdict": self.verdict,
            "skipped": self.skipped,
            "summary": self.summary,
            "evidence": self.evidence,
            "seconds": round(self.seconds, 3),
        }


def skipped(name: str, why: str) -> ProofResult:
    """A proof ``verify all`` did not run, and why (it neither passes nor fails)."""
    return ProofResult(name, None, f"skipped: {why}", skipped=True)


# ---------------------------------------------------------------- gating


def subjects(
    conn: psycopg.Connection[Any], manifest: Manifest, flag: str, sql_text: str | None, sample: int
) -> tuple[list[str], str]:
    """The subject ids to prove on: a query's first column, the ladder's subjects, or generated."""
    if sql_text is None:
        ladder = next((lad for lad in manifest.ladders_of(flag) if lad.subjects), None)
        sql_text = ladder.subjects if ladder else None
    if sql_text is None:
        return [f"subject-{i}" for i in range(sample)], f"{sample} generated ids"
    import psycopg as pg

    try:
        ids = bucketing.subject_ids(conn, sql_text, sample, "30s")
    except pg.Error as exc:
        message = (exc.diag.message_primary or str(exc)).strip()
        raise UsageError(f"the subjects query failed: {message} (SQLSTATE {exc.sqlstate})") from None
    return ids, f"{len(ids)} subjects from the query"


def prove_gating(
    conn: psycopg.Connection[Any], manifest: Manifest, flag: str, ids: list[str], source: str,
    percents: tuple[int, ...] = (1, 5, 10, 25, 50, 100),
) -> ProofResult:  # fmt: skip
    started = time.perf_counter()
    spec = manifest.flag(flag)
    if not isinstance(spec, RolloutFlag):
        raise UsageError(f"the gating proof needs a rollout flag; {flag} is {spec.type}")
    salt = spec.salt_for(flag)
    evidence = [f"flag {flag}, salt {salt!r}, {source}"]
    failures = []
    if not ids:
        return ProofResult(f"gating {flag}", False, "no subjects to prove on", evidence)

    def sql_buckets() -> list[int]:
        return bucketing.buckets(conn, salt, ids)

    python_first = [bucket(salt, i) for i in ids]
    sql_first = sql_buckets()
    mismatches = [i for i, p, s in zip(ids, python_first, sql_first, strict=True) if p != s]
    evidence.append(f"Python vs SQL buckets: {len(ids) - len(mismatches)}/{len(ids)} identical")
    if mismatches:
        failures.append(f"{len(mismatches)} subjects bucket differently in SQL (e.g. {mismatches[0]!r})")
    stable = [bucket(salt, i) for i in ids] == python_first and sql_buckets() == sql_first
    evidence.append(f"second run: {'identical' if stable else 'DIFFERENT'}")
    if not stable:
        failures.append("buckets changed between two runs")
    previous: set[str] = set()
    n = len(ids)
    for percent in percents:
        chosen = {i for i in ids if eligible(salt, i, True, percent)}
        if not previous <= chosen:
            failures.append(
                f"{len(previous - chosen)} subjects eligible below {percent}% are not at {percent}%"
            )
        share = len(chosen) / n
        p = percent / 100
        tolerance = 4 * math.sqrt(p * (1 - p) / n) + 1 / n  # 4 sigma of a binomial share
        ok = abs(share - p) <= tolerance
        evidence.append(
            f"at {percent}%: {len(chosen)}/{n} eligible = {share:.2%} (±{tolerance:.2%}) {'ok' if ok else 'OUT'}"
        )
        if not ok:
            failures.append(f"share at {percent}% is {share:.2%}, outside {p:.0%} ± {tolerance:.2%}")
        previous = chosen
    evidence.append("monotonic: " + ("yes" if not any("not at" in f for f in failures) else "NO"))
    summary = (
        "; ".join(failures)
        if failures
        else "deterministic, identical in Python and SQL, monotonic, on target"
    )
    return ProofResult(f"gating {flag}", not failures, summary, evidence, time.perf_counter() - started)


# ---------------------------------------------------------------- counters


@dataclass(frozen=True)
class Counters:
    """Mutation counters (inserted + updated + deleted rows) per table, at one moment."""

    values: dict[str, int]
    at: float

    def delta(self, later: Counters) -> dict[str, int]:
        return {
            t: later.values.get(t, 0) - v for t, v in self.values.items() if later.values.get(t, 0) != v
        } | {t: v for t, v in later.values.items() if t not in self.values and v}


def counters(conn: psycopg.Connection[Any]) -> Counters:
    return Counters(store.counters(conn), time.monotonic())


@dataclass(frozen=True)
class Window:
    """Counters over a window, closed only after the statistics lag."""

    start: Counters
    end: Counters
    window: timedelta
    lag: timedelta

    def moved(self, match: Callable[[str], bool]) -> dict[str, int]:
        return {t: d for t, d in self.start.delta(self.end).items() if match(t)}

    def describe(self) -> str:
        text = (
            f"observed {format_duration(self.window)}, then waited {format_duration(self.lag)} for statistics"
        )
        if self.lag < IDLE_FLUSH:
            text += (
                f" (below PostgreSQL's {format_duration(IDLE_FLUSH)} idle flush: late writes may be missed)"
            )
        return text


def observe(
    conn: psycopg.Connection[Any], window: timedelta, lag: timedelta, sleep: Sleep = time.sleep
) -> Window:
    start = counters(conn)
    sleep(window.total_seconds())
    sleep(lag.total_seconds())
    return Window(start, counters(conn), window, lag)


def like(pattern: str) -> Callable[[str], bool]:
    """SQL LIKE on the table name (schema-qualified names match on the table part)."""
    import re

    regex = re.compile("^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$")
    return lambda qualified: bool(regex.match(qualified.split(".", 1)[-1]))


def phase_state(conn: psycopg.Connection[Any], manifest: Manifest) -> tuple[bool, list[str]]:
    """Is the phase killed (every rollout flag off, or held by an engaged kill)? With evidence."""
    rollouts = [name for name, spec in manifest.flags.items() if isinstance(spec, RolloutFlag)]
    values = FlagStore(conn, manifest).values(rollouts)
    engaged = list_engaged(conn, manifest)
    notes = []
    killed = True
    for name in rollouts:
        value = values[name]
        holders = [e.switch for e in holding(engaged, name, "global")]
        notes.append(f"{name}: {value.effective()}" + (f", held by {', '.join(holders)}" if holders else ""))
        killed &= not value.active
    return killed, notes


def prove_kill(
    conn: psycopg.Connection[Any], manifest: Manifest, observed: Window | None, *, required: bool
) -> ProofResult:
    pattern = manifest.model.proofs.phase_tables
    if not pattern:
        raise UsageError('the kill proof needs proofs.phase_tables in the manifest (e.g. "p3_%")')
    killed, notes = phase_state(conn, manifest)
    if not killed:
        summary = "the phase is not killed, so there is nothing to prove: engage a kill switch first"
        return ProofResult("kill", False if required else None, summary, notes)
    assert observed is not None
    # The tables flags are bound to are the control plane: the kill itself writes them.
    control = {spec.table.rsplit(".", 1)[-1] for spec in manifest.flags.values() if spec.table}
    moved = {
        table: delta
        for table, delta in observed.moved(like(pattern)).items()
        if table.rsplit(".", 1)[-1] not in control
    }
    evidence = [*notes, f"phase tables {pattern!r}: {observed.describe()}"]
    evidence += [f"{table}: {delta:+d} rows written" for table, delta in sorted(moved.items())]
    if moved:
        return ProofResult(
            "kill", False, f"phase tables were written while killed: {', '.join(sorted(moved))}", evidence
        )
    open_writers = store.open_writers(conn, pattern)
    if open_writers:
        evidence += [
            f"open transaction pid {pid} (application_name {app}, since {start:%Y-%m-%d %H:%M:%S %Z}) "
            f"holds a write lock on {table}: its writes count only once it commits"
            for pid, app, start, table in open_writers
        ]
        return ProofResult(
            "kill", False,
            f"{len(open_writers)} open transaction(s) wrote phase tables and have not committed yet; "
            "their writes would land after the window", evidence,
        )  # fmt: skip
    return ProofResult("kill", True, "no phase table was written while killed", evidence)


# ---------------------------------------------------------------- isolation


def privilege_leaks(conn: psycopg.Connection[Any], role: str, pattern: str) -> list[str] | None:
    """Tables outside the pattern that the role may write (None: no such role)."""
    if not store.role_exists(conn, role):
        return None
    return store.writable_outside(conn, role, pattern)


def prove_isolation(
    conn: psycopg.Connection[Any], manifest: Manifest, observed: Window | None, *,
    tolerance: float, slack: int, record_baseline: bool = True,
) -> ProofResult:  # fmt: skip
    proofs = manifest.model.proofs
    if not proofs.phase_tables:
        raise UsageError('the isolation proof needs proofs.phase_tables in the manifest (e.g. "p3_%")')
    evidence: list[str] = []
    failures: list[str] = []
    if proofs.phase_role:
        leaks = privilege_leaks(conn, proofs.phase_role, proofs.phase_tables)
        if leaks is None:
            failures.append(f"phase role {proofs.phase_role} does not exist")
        elif leaks:
            failures.append(
                f"role {proofs.phase_role} may write outside {proofs.phase_tables!r}: {', '.join(leaks)}"
            )
        else:
            evidence.append(f"role {proofs.phase_role}: no write privilege outside {proofs.phase_tables!r}")
    else:
        evidence.append("no proofs.phase_role in the manifest: privileges not checked")
    assert observed is not None
    outside = observed.moved(lambda t: not like(proofs.phase_tables or "")(t))
    killed, notes = phase_state(conn, manifest)
    evidence += notes
    seconds = observed.window.total_seconds() or 1.0
    if killed:
        if record_baseline:
            _record_baseline(conn, manifest, outside, seconds)
            evidence.append(f"phase dark: recorded a baseline of {sum(outside.values())} mutations outside the phase "
                            f"over {format_duration(observed.window)} ({observed.describe()})")  # fmt: skip
        verdict: bool | None = None if not failures else False
        summary = (
            "; ".join(failures)
            or "phase dark: baseline recorded (run again with the phase active to compare)"
        )
        return ProofResult("isolation", verdict, summary, evidence)
    baseline = _baseline(conn, manifest)
    if baseline is None:
        failures.append("no baseline: run flagctl verify isolation once while the phase is dark")
    else:
        base_rates, base_seconds, base_at = baseline
        evidence.append(f"baseline from {base_at:%Y-%m-%d %H:%M:%S %Z} over {base_seconds:g}s; "
                        f"allowed: baseline rate × {1 + tolerance:g} + {slack} rows per table")  # fmt: skip
        evidence.append(f"active window: {observed.describe()}")
        for table, delta in sorted(outside.items()):
            allowed = base_rates.get(table, 0.0) * seconds * (1 + tolerance) + slack
            line = f"{table}: {delta:+d} rows (allowed {allowed:.0f})"
            evidence.append(line)
            if delta > allowed:
                failures.append(f"{table} moved {delta} rows, above its baseline allowance of {allowed:.0f}")
    passed = not failures
    summary = "; ".join(failures) or "no Phase-attributable mutations outside the phase's tables"
    return ProofResult("isolation", passed, summary, evidence)


def _record_baseline(
    conn: psycopg.Connection[Any], manifest: Manifest, deltas: dict[str, int], seconds: float
) -> None:
    rates = {t: d / seconds for t, d in deltas.items()}
    store.record_baseline(conn, manifest.system, seconds, rates)


def _baseline(
    conn: psycopg.Connection[Any], manifest: Manifest
) -> tuple[dict[str, float], float, datetime] | None:
    return store.baseline(conn, manifest.system)
