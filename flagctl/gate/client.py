"""The gate's class, ``flagctl.gate.Gate``: the snapshot it decides from, the thread that
keeps it current, and its registration as a client. What it guarantees, and how, is the
package's docstring (``flagctl.gate``)."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from flagctl.gate.compiled import ALWAYS, NEVER, Compiled, bucket_of, compile_flags
from flagctl.model.cache import ManifestCache
from flagctl.model.manifest import Manifest, load_manifest
from flagctl.model.values import Rollout
from flagctl.rules.kills import Engaged
from flagctl.store import clients
from flagctl.store import gate as store
from flagctl.store.exemptions import all_exemptions
from flagctl.store.flags import FlagStore, Snapshot
from flagctl.store.gate import CHANNEL as CHANNEL
from flagctl.store.gate import Check, check_for
from flagctl.store.switches import engaged_from_row, engaged_rows
from flagctl.views.evaluate import Decision, decide_from

log = logging.getLogger("flagctl.gate")


@dataclass(frozen=True)
class State:
    """Everything a decision needs, read in one transaction, with its change sequence, and
    each flag's decision compiled from it (``flagctl.gate.compiled``)."""

    manifest: Manifest  # the definitions the snapshot was read by
    snapshot: Snapshot
    engaged: list[Engaged]
    exemptions: dict[str, dict[str, str]]
    seq: int  # the newest audit row of the system when it was read
    digest: str  # of the rows it was built from (flagctl.store.gate), read with them
    check: Check | None  # the statement that reads both again, for this manifest (None: read from a relay)
    read_at: float  # the gate's clock: the last reload, or the last check that found no change
    compiled: dict[str, Compiled] = field(default_factory=dict)  # flag → its decision
    keep: frozenset[str] = frozenset()  # the flags that keep their last value when stale
    pending: tuple[int, ...] = ()  # transactions in progress when it was read: their rows come later
    engaged_rows: tuple[tuple[Any, ...], ...] = ()  # the engaged switches as stored (a relay ships them)


@dataclass(frozen=True)
class Evaluation:
    """One evaluation, as a hook sees it (``Gate.add_hook``; ``flagctl.gate.telemetry``)."""

    flag: str
    system: str
    subject: str | None  # the subject id (None: a value, asked for scopes only)
    value: Any  # a rollout's or bool's decision, or the flag's value
    variant: str | None  # "on"/"off", or the value as text
    reason: str  # static, split, targeting_match, disabled, stale or error
    seq: int | None  # the audit sequence of the state it was decided from
    error_type: str | None = None  # e.g. flag_not_found
    error_message: str | None = None


def reason_of(rule: str) -> str:
    """The evaluation reason (OpenFeature's, lower case as OpenTelemetry writes it) of the
    rule that decided: a kill, a priority flag, a stage off or a plain flag that is off is
    disabled; a bucket split; an exemption or the internal audience targeting_match."""
    if rule == "off" or rule.startswith(("kill switch", "priority flag", "stage off")):
        return "disabled"
    if "exemption" in rule or rule.startswith("internal audience"):
        return "targeting_match"
    if "bucket" in rule:
        return "split"
    return "static"


@dataclass
class Stats:
    reloads: int = 0
    notifications: int = 0
    missed: int = 0  # reloads because the change sequence moved without a notification
    drift: int = 0  # reloads because the rows changed with no audit row (the digest moved)
    checks: int = 0  # checks that found nothing new (no reload)
    incremental: int = 0  # reloads that read only what the audit rows since said changed
    reconnects: int = 0
    errors: list[str] = field(default_factory=list)


class Gate:
    """Flag decisions for an application, kept current by PostgreSQL (see ``flagctl.gate``)."""

    # How long the listening thread waits for a notification before it looks at the clock
    # (the check and resync intervals) and at close(). A notification ends the wait at once.
    wake: float = 0.25

    def __init__(
        self,
        dsn: str,
        *,
        manifest: str | Path | Manifest | None = None,
        system: str | None = None,
        staleness: timedelta = timedelta(seconds=30),
        check: timedelta = timedelta(seconds=5),
        resync: timedelta | None = timedelta(minutes=5),
        backoff: timedelta = timedelta(seconds=30),
        clock: Callable[[], float] = time.monotonic,
        connect: Callable[..., Any] | None = None,
        application: str | None = None,
        register: bool = True,
        start: bool = True,
    ) -> None:
        # Without a manifest file the gate reads the system's published catalogue (flagctl
        # manifest publish), and reloads it whenever a new version is published.
        if manifest is None:
            if system is None:
                raise ValueError("give system= (the published catalogue) or manifest=")
            self._fixed: Manifest | None = None
        else:
            # A file through the manifest cache, as the CLI reads it: validating thousands of
            # flags anew in every application process costs seconds and the validator's memory.
            self._fixed = (
                manifest
                if isinstance(manifest, Manifest)
                else load_manifest(Path(manifest), ManifestCache.from_environ(os.environ))
            )
            if system is not None and system != self._fixed.system:
                raise ValueError(f"the manifest is for system {self._fixed.system!r}, not {system!r}")
        self.system = system if system is not None else self._fixed.system  # type: ignore[union-attr]
        self.dsn = dsn
        self.staleness = staleness.total_seconds()
        self.check = check.total_seconds()
        self.resync = resync.total_seconds() if resync is not None else None
        self.backoff = backoff.total_seconds()  # the longest wait between reconnects
        self.clock = clock
        self.stats = Stats()
        self._connect = connect
        self.application = application or Path(sys.argv[0] or "python").name
        self.register = register  # in flagctl.clients, for `flagctl kill --wait-ack` and `flagctl clients`
        self._client: int | None = None
        self._version: int | None = None  # the published catalogue version in use
        self._listeners: list[Callable[[int], None]] = []
        self._hooks: list[Callable[[Evaluation], None]] = []
        self._state: State | None = None
        self._reloaded_at = 0.0  # the gate's clock at the last full read (for the resync)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._reloaded = threading.Condition()
        self._thread: threading.Thread | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ decisions

    @property
    def manifest(self) -> Manifest:
        """The definitions decisions are made by: the manifest given, or the published one
        the current snapshot was read with."""
        if self._fixed is not None:
            return self._fixed
        state = self._state
        if state is None:
            raise RuntimeError(f"the gate has not read the published catalogue of {self.system} yet")
        return state.manifest

    def enabled(self, flag: str, subject_id: str | int, scopes: list[str] | tuple[str, ...] = (), *,
                internal: bool = False) -> bool:  # fmt: skip
        """Is the flag on for this subject (in these scopes)? When stale: off, unless the
        flag keeps its last value (``when_stale``).

        The hot path: the flag's compiled decision (a dict lookup and at most one hash);
        a subject in a scope where the flag has an override, a kill or an exemption is
        decided by ``decide_from`` — the same answer either way."""
        state = self._state
        if state is None or (self.clock() - state.read_at > self.staleness and flag not in state.keep):
            return False
        compiled = state.compiled.get(flag)
        if compiled is None or (scopes and compiled.relevant and not compiled.relevant.isdisjoint(scopes)):
            return self._decide(state, flag, subject_id, scopes, internal).eligible
        threshold = compiled.internal if internal else compiled.public
        if threshold >= ALWAYS:
            return True
        if threshold <= NEVER:
            return False
        subject = subject_id if type(subject_id) is str else str(subject_id)
        return bucket_of(compiled.prefix + subject) < threshold

    def decide(self, flag: str, subject_id: str | int, scopes: list[str] | tuple[str, ...] = (), *,
               internal: bool = False) -> Decision | None:  # fmt: skip
        """The full decision with the rule that made it (None: stale, so off — unless the
        flag keeps its last value when stale: then the decision of the last state read)."""
        state = self._state
        if state is None or (self._stale(state) and flag not in state.keep):
            return None
        return self._decide(state, flag, subject_id, scopes, internal)

    @staticmethod
    def _decide(state: State, flag: str, subject_id: str | int, scopes: list[str] | tuple[str, ...],
                internal: bool) -> Decision:  # fmt: skip
        return decide_from(
            state.manifest, state.snapshot, state.engaged, state.exemptions, flag, str(subject_id), list(scopes),
            internal,
        )  # fmt: skip

    def value(self, flag: str, scopes: list[str] | tuple[str, ...] = ()) -> Any:
        """The flag's value in these scopes (a kill holding them applied). When stale: the
        last value read for a flag that keeps it (``when_stale: last``, the default of
        config values: int, float, enum, list), else the flag's off value — a rollout
        disabled, a bool False, otherwise its default."""
        from flagctl.rules.kills import holding, overlay
        from flagctl.views.evaluate import subject_value

        state = self._state
        known = self._fixed or (state.manifest if state is not None else None)
        if known is None:
            return False  # nothing read yet, not even the definitions: off
        spec = known.flag(flag)
        if state is None or (self._stale(state) and flag not in state.keep):
            default = spec.default_value()
            if isinstance(default, Rollout):
                return Rollout(False, 0)
            return False if isinstance(default, bool) else default
        value, _ = subject_value(state.manifest, state.snapshot, flag, list(scopes))
        return overlay(value, holding(state.engaged, flag, *scopes), flag)

    # ------------------------------------------------------------------ hooks

    def add_hook(self, hook: Callable[[Evaluation], None]) -> None:
        """Call ``hook(evaluation)`` after every ``enabled`` and ``value`` of this gate (e.g.
        ``flagctl.gate.telemetry.EvaluationEvents``: OpenTelemetry events). Without a hook
        those are the plain methods, with no work for hooks at all; the first hook puts the
        observed ones in their place, on this gate only."""
        self._hooks.append(hook)
        self.__dict__["enabled"] = self._observed_enabled
        self.__dict__["value"] = self._observed_value

    def _observed_enabled(self, flag: str, subject_id: str | int, scopes: list[str] | tuple[str, ...] = (), *,
                          internal: bool = False) -> bool:  # fmt: skip
        seq, fresh = self.seq, self.fresh()
        try:
            decision = self.decide(flag, subject_id, scopes, internal=internal)
        except Exception as exc:
            self._observed(Evaluation(flag, self.system, str(subject_id), None, None, "error",
                                      seq, _error_type(exc), str(exc)))  # fmt: skip
            raise
        eligible = decision is not None and decision.eligible
        reason = "stale" if not fresh else reason_of(decision.rule) if decision is not None else "error"
        variant = "on" if eligible else "off"
        self._observed(Evaluation(flag, self.system, str(subject_id), eligible, variant, reason, seq))
        return eligible

    def _observed_value(self, flag: str, scopes: list[str] | tuple[str, ...] = ()) -> Any:
        seq, fresh = self.seq, self.fresh()
        try:
            value = Gate.value(self, flag, scopes)
        except Exception as exc:
            self._observed(Evaluation(flag, self.system, None, None, None, "error", seq,
                                      _error_type(exc), str(exc)))  # fmt: skip
            raise
        variant = str(value.to_json() if isinstance(value, Rollout) else value)
        self._observed(Evaluation(flag, self.system, None, value, variant, "static" if fresh else "stale",
                                  seq))  # fmt: skip
        return value

    def _observed(self, evaluation: Evaluation) -> None:
        for hook in self._hooks:
            try:
                hook(evaluation)
            except Exception:  # a hook's bug must not change a decision
                log.exception("flagctl gate: an evaluation hook failed")

    def on_change(self, callback: Callable[[int], None]) -> None:
        """Call ``callback(seq)`` (on the gate's thread) whenever a reload brings changes."""
        self._listeners.append(callback)

    @property
    def seq(self) -> int | None:
        """The change sequence of the snapshot in use (None: none yet)."""
        state = self._state
        return None if state is None else state.seq

    def fresh(self) -> bool:
        state = self._state
        return state is not None and not self._stale(state)

    def _stale(self, state: State) -> bool:
        return self.clock() - state.read_at > self.staleness

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="flagctl-gate", daemon=True)
            self._thread.start()

    def wait_ready(self, timeout: float = 10.0) -> bool:
        """Wait for the first snapshot (True once there is one)."""
        return self._ready.wait(timeout)

    def wait_fresh(self, timeout: float = 10.0) -> bool:
        """Wait until the gate is current (a read within the staleness bound)."""
        return self.wait_until(lambda gate: gate.fresh(), timeout)

    def wait_for_seq(self, seq: int, timeout: float = 10.0) -> bool:
        """Wait until the gate has applied every change up to audit row ``seq`` (True), or
        the timeout passed (False) — how a caller knows a kill reached this process."""
        return self.wait_until(lambda gate: (gate.seq or 0) >= seq, timeout)

    def wait_until(self, condition: Callable[[Gate], bool], timeout: float = 10.0) -> bool:
        """Wait until ``condition(gate)`` holds, looking again after every reload (True), or
        the timeout passed (False)."""
        with self._reloaded:
            return self._reloaded.wait_for(lambda: condition(self), timeout)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the listener

    def _open(self) -> Any:
        import psycopg

        connect = self._connect or psycopg.connect
        return connect(self.dsn, autocommit=True, application_name="flagctl-gate")

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                with self._open() as conn:
                    store.listen(conn)
                    self.reload(conn)  # after LISTEN: nothing committed since can be missed
                    delay = 0.5
                    self._listen(conn)
                    if self._client is not None:  # stopping: no longer a live client
                        clients.unregister(conn, self._client)
            except Exception as exc:  # the database is gone: back off, then reconnect
                self.stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                log.warning("flagctl gate lost the database (%s); retrying in %.1fs", exc, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.backoff)
                self.stats.reconnects += 1

    def _listen(self, conn: Any) -> None:
        while not self._stop.is_set():
            self.step(conn)

    def step(self, conn: Any) -> None:
        """One turn of the listener on its connection (LISTENing, after a reload): wait up
        to ``wake`` for a notification and reload on one; else, by the gate's clock, resync
        or check. A test drives a gate made with ``start=False`` through it, on its own
        connection and clock, without the thread."""
        notified = False
        for note in conn.notifies(timeout=min(self.check, self.wake) or 0.05, stop_after=100):
            if self._mine(note.payload):
                self.stats.notifications += 1
                notified = True
                break  # reload now, not when the wait ends (the rest are read next time)
        now = self.clock()
        state = self._state
        resync = self.resync is not None and now - self._reloaded_at >= self.resync
        if resync or state is None:
            self.reload(conn)
        elif notified:
            self.reload(conn, changes_only=True)
        elif now - state.read_at >= self.check:
            self.check_now(conn)

    def check_now(self, conn: Any) -> None:
        """Read the change sequence and the digest (one statement); reload if either moved,
        else confirm the snapshot current and heartbeat (one more)."""
        state = self._state
        if state is None:
            self.reload(conn)
            return
        assert state.check is not None, "a gate reading the database has its check"
        seq, digest = state.check.run(conn)
        if seq != state.seq:
            self.stats.missed += 1
            self.reload(conn, changes_only=True)
        elif digest != state.digest:  # changed with no audit row: a trigger was disabled
            self.stats.drift += 1
            log.warning("flagctl gate: the state of %s changed without an audit row; reloading", self.system)
            self.reload(conn)
        else:  # nothing new: the snapshot is confirmed current
            self.stats.checks += 1
            self._state = replace(state, read_at=self.clock())
            self._ack(conn, state.seq)

    def _mine(self, payload: str) -> bool:
        try:
            return bool(json.loads(payload).get("system") == self.system)
        except ValueError:
            return False

    # At most this many audit rows since the last read are read to learn what changed; more,
    # and reading the whole state is the cheaper way.
    incremental_limit = 1000

    def reload(self, conn: Any, *, changes_only: bool = False) -> None:
        """Read the state of the system in one repeatable-read transaction, and apply it.

        ``changes_only`` (on a notification, or a check that found the change sequence
        moved): read the audit rows the gate has not applied — after its change sequence,
        and those of the transactions in progress when it last read — and re-read only the
        flags, exemptions and engaged switches they name. The whole state is read instead
        on a reconnect, a resync, a digest mismatch, a new catalogue, or audit rows it
        cannot attribute."""
        with store.snapshot(conn):
            manifest = self._fixed or self._published(conn)
            state = self._state
            check = state.check if state is not None and state.manifest is manifest else None
            check = check or check_for(conn, manifest, catalogue=self._fixed is None)
            seq, digest = check.run(conn)  # in the snapshot the rows below are read in
            pending = store.in_progress(conn)
            read = None
            if changes_only and state is not None and state.manifest is manifest:
                read = self._changed(conn, state, seq, digest)
            if read is None:
                rows = tuple(engaged_rows(conn, manifest.system))
                engaged = [engaged_from_row(manifest, row) for row in rows]
                read = (FlagStore(conn, manifest).snapshot(), engaged, all_exemptions(conn, manifest), rows)
            else:
                self.stats.incremental += 1
        snapshot, engaged, exemptions, rows = read
        self.apply(
            manifest, snapshot, engaged, exemptions, seq, digest, check,
            pending=pending, ack=lambda: self._ack(conn, seq), engaged_rows=rows,
        )  # fmt: skip

    def _changed(
        self, conn: Any, state: State, seq: int, digest: str
    ) -> tuple[Snapshot, list[Engaged], dict[str, dict[str, str]], tuple[tuple[Any, ...], ...]] | None:
        """The state with what changed since ``state`` read again (None: read it all)."""
        manifest = state.manifest
        rows = store.changes(conn, manifest.system, state.seq, state.pending, self.incremental_limit)
        changed = _attributed(manifest, rows)
        if changed is None or len(rows) > self.incremental_limit:
            return None  # unattributed, or too many: all of it
        flags, switches, exempted = changed
        if not (flags or switches or exempted) and digest != state.digest:
            return None  # the rows moved with no audit row saying so: all of it
        snapshot = state.snapshot
        if flags:
            fresh = FlagStore(conn, manifest).snapshot(flags)
            snapshot = Snapshot(dict(snapshot.globals), dict(snapshot.overrides), set(snapshot.stored))
            for flag in flags:
                snapshot.globals[flag] = fresh.globals[flag]
                _put(snapshot.overrides, flag, fresh.overrides.get(flag))
                (snapshot.stored.add if flag in fresh.stored else snapshot.stored.discard)(flag)
        stored, engaged = state.engaged_rows, state.engaged
        if switches:
            stored = tuple(engaged_rows(conn, manifest.system))
            engaged = [engaged_from_row(manifest, row) for row in stored]
        exemptions = state.exemptions
        if exempted:
            found = all_exemptions(conn, manifest, sorted(exempted))
            exemptions = dict(exemptions)
            for flag in exempted:
                _put(exemptions, flag, found.get(flag))
        return snapshot, engaged, exemptions, stored

    def apply(
        self,
        manifest: Manifest,
        snapshot: Snapshot,
        engaged: list[Engaged],
        exemptions: dict[str, dict[str, str]],
        seq: int,
        digest: str,
        check: Check | None,
        *,
        pending: tuple[int, ...] = (),
        ack: Callable[[], None] | None = None,
        engaged_rows: tuple[tuple[Any, ...], ...] = (),
    ) -> None:
        """Make this state the one decisions are made from — whatever source read it: it
        compiles each flag's decision, replaces the snapshot whole, wakes the waiters,
        acknowledges it (``ack``: to the source), and tells the change listeners.
        ``pending``: the transactions in progress when it was read (``reload``);
        ``engaged_rows``: the engaged switches as stored (a relay ships them to its gates)."""
        compiled = compile_flags(manifest, snapshot, engaged, exemptions)
        keep = frozenset(name for name, spec in manifest.flags.items() if spec.keeps_last_when_stale)
        with self._reloaded:
            before = self._state
            self._reloaded_at = self.clock()
            self._state = State(
                manifest,
                snapshot,
                engaged,
                exemptions,
                seq,
                digest,
                check,
                self._reloaded_at,
                compiled,
                keep,
                pending,
                engaged_rows,
            )
            self.stats.reloads += 1
            self._reloaded.notify_all()
        if ack is not None:
            ack()
        self._ready.set()
        if before is not None and (before.seq, before.digest) != (seq, digest):
            for callback in list(self._listeners):
                try:
                    callback(seq)
                except Exception:  # a listener's bug must not stop the gate
                    log.exception("flagctl gate: a change listener failed")

    def _published(self, conn: Any) -> Manifest:
        """The published manifest of the system: the one in use while its version stands,
        else read and validated anew (through the manifest cache)."""
        from flagctl.model.cache import ManifestCache
        from flagctl.model.manifest import parse_manifest

        version = store.published_version(conn, self.system)
        if version is None:
            raise LookupError(f"no manifest of system {self.system} is published (flagctl manifest publish)")
        state = self._state
        if state is not None and self._version == version:
            return state.manifest
        source = store.published_source(conn, self.system, version)
        cache = ManifestCache.from_environ(os.environ)
        where = f"published manifest {self.system} v{version}"
        manifest = (cache.get(source, where) if cache is not None else None) or parse_manifest(source, where)
        self._version = int(version)
        return manifest

    def _ack(self, conn: Any, seq: int) -> None:
        """Say that this process applies the state up to audit row ``seq`` (and is alive).
        A database user that may not register (no INSERT on flagctl.clients) still gets a
        working gate: it only goes unseen by `kill --wait-ack`."""
        if not self.register:
            return
        import psycopg

        try:
            self._register_and_ack(conn, seq)
        except psycopg.errors.InsufficientPrivilege as exc:
            self.register = False
            log.warning(
                "flagctl gate cannot register in flagctl.clients (%s); kill --wait-ack will not see it", exc
            )

    def _register_and_ack(self, conn: Any, seq: int) -> None:
        if self._client is not None and clients.ack(conn, self._client, seq):
            return  # acknowledged; else it is a new backend (a reconnect) and registers again
        self._client = clients.register(
            conn, self.system, socket.gethostname(), os.getpid(), self.application
        )
        clients.ack(conn, self._client, seq)


def _error_type(exc: Exception) -> str:
    """OpenTelemetry's ``error.type`` for what an evaluation raised."""
    from flagctl.errors import UsageError

    return "flag_not_found" if isinstance(exc, UsageError) and "unknown flag" in str(exc) else "general"


def _attributed(
    manifest: Manifest, rows: list[tuple[str, str | None, str | None]]
) -> tuple[list[str], bool, set[str]] | None:
    """What these audit rows (target, flag, scope) changed of a gate's state: the flags
    whose values to read again, whether the engaged switches changed, the flags whose
    exemptions did. None: a row it cannot attribute (a truncate of flagctl.flag_state, a
    table it does not know), so the whole state is read again."""
    flags: set[str] = set()
    switches = False
    exempted: set[str] = set()
    for target, flag, scope in rows:
        if scope is None:  # an event (a refusal, a review, a publish): it changed no row
            continue
        if target.startswith("kill_switch:"):
            switches = True
        elif target.startswith("exemption:"):
            if flag in manifest.flags:
                exempted.add(flag)
        elif flag is None:
            if target.startswith("flagctl.") and target != "flagctl.flag_state":
                continue  # flagctl's own records (rollouts, freezes, schedules…): not a gate's state
            return None
        elif flag in manifest.flags:
            flags.add(flag)  # flagctl.flag_state, or the flag's bound table
        elif not target.startswith("flagctl."):
            return None
    return sorted(flags), switches, exempted


def _put(table: dict[str, Any], key: str, value: Any) -> None:
    """Set ``table[key]``, or remove it when ``value`` is None or empty."""
    if value:
        table[key] = value
    else:
        table.pop(key, None)
