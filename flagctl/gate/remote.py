"""The gate, reading through ``flagctl serve`` instead of PostgreSQL: the same class, the
same decisions from the same in-memory state, kept current by the relay's push stream —
so a fleet of application processes costs the database one connection per relay, not one
per process.

    from flagctl.gate import RemoteGate

    gate = RemoteGate("http://flagctl-serve:8080", token, system="phase3")
    if gate.enabled("p3_advisory", user.id):
        ...

- **State**: the relay's whole state (``GET /flagctl/v1/state``, ``flagctl.gate.wire``),
  fetched again on every change event of the push stream (``GET /flagctl/v1/events``),
  with ``If-None-Match`` so an unchanged state costs a 304.
- **Acknowledged**: the process is a named client behind the relay (``name``; its host
  and pid by default); each fetch is its acknowledgement, so ``kill --wait-ack`` waits for
  it and names it when it stalls.
- **Fail closed**, as a gate reading the database: the snapshot is current while the
  relay's stream says the relay is current (its ``keepalive`` events carry its readiness);
  past ``staleness`` without that, decisions answer as a stale gate's.

Needs the optional extra: ``pip install 'flagctl[relay]'`` (httpx).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

from flagctl.gate.client import Gate
from flagctl.gate.wire import decode
from flagctl.model.manifest import Manifest

log = logging.getLogger("flagctl.gate")


class RelayRefused(Exception):
    """The relay answered something other than a state: its status and what it said."""


class RemoteGate(Gate):
    """A gate reading through ``flagctl serve`` (see the module)."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        system: str,
        name: str | None = None,
        staleness: timedelta = timedelta(seconds=30),
        backoff: timedelta = timedelta(seconds=30),
        clock: Callable[[], float] = time.monotonic,
        transport: Any = None,
        start: bool = True,
    ) -> None:
        super().__init__(
            url, system=system, staleness=staleness, resync=None, backoff=backoff, clock=clock,
            register=False, start=False,
        )  # fmt: skip
        self.url = url.rstrip("/")
        self.name = name or f"{socket.gethostname()}:{os.getpid()}"
        self._headers = {"Authorization": f"Bearer {token}", "X-Flagctl-Client": self.name}
        self._transport = transport  # an httpx transport, for tests
        self._etag: str | None = None
        self._manifest: Manifest | None = None
        self._stream: Any = None
        if start:
            self.start()

    def close(self) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:  # end the wait for the next event now, not at the next keepalive
            stream.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ the thread

    def _run(self) -> None:
        delay = 0.5
        while not self._stop.is_set():
            try:
                self._follow()
                delay = 0.5
            except Exception as exc:  # the relay is gone or refused: back off, then again
                if self._stop.is_set():
                    return
                self.stats.errors.append(f"{type(exc).__name__}: {exc}"[:300])
                log.warning("flagctl gate lost the relay %s (%s); retrying in %.1fs", self.url, exc, delay)
            if self._stop.wait(delay):
                return
            delay = min(delay * 2, self.backoff)
            self.stats.reconnects += 1

    def _follow(self) -> None:
        """Fetch the state, then follow the push stream until it ends."""
        import httpx

        timeout = httpx.Timeout(10.0, read=max(self.staleness, 1.0))  # a silent relay is a gone one
        with httpx.Client(
            base_url=self.url, headers=self._headers, timeout=timeout, transport=self._transport
        ) as http:
            self.fetch(http)
            events = http.send(http.build_request("GET", "/flagctl/v1/events"), stream=True)
            self._stream = events
            try:
                if events.status_code != 200:
                    events.read()
                    raise RelayRefused(f"{events.status_code}: {events.text[:200]}")
                for kind, data in _events(events.iter_lines()):
                    if self._stop.is_set():
                        return
                    self.stats.notifications += kind == "change"
                    if kind in ("hello", "change") and data.get("seq") != self.seq:
                        self.fetch(http)
                    elif kind == "keepalive" and data.get("ready") and data.get("seq") == self.seq:
                        self._confirm()
            finally:
                self._stream = None
                events.close()

    def fetch(self, http: Any) -> None:
        """Fetch the relay's state (a 304 confirms the one held)."""
        headers = {"If-None-Match": self._etag} if self._etag and self._state is not None else {}
        response = http.get("/flagctl/v1/state", headers=headers)
        if response.status_code == 304:
            self.stats.checks += 1
            self._confirm()
            return
        if response.status_code != 200:
            raise RelayRefused(f"{response.status_code}: {response.text[:200]}")
        got = decode(response.json(), self._manifest_of)
        self._etag = response.headers.get("etag")
        self.apply(
            got.manifest, got.snapshot, got.engaged, got.exemptions, got.seq, got.digest, None,
            engaged_rows=got.engaged_rows,
        )  # fmt: skip

    def _confirm(self) -> None:
        state = self._state
        if state is not None:
            self._state = replace(state, read_at=self.clock())

    def _manifest_of(self, text: str) -> Manifest:
        """The manifest of this text: the one in use while the text stands, else validated
        anew (through the manifest cache)."""
        from flagctl.model.cache import ManifestCache
        from flagctl.model.manifest import parse_manifest

        if self._manifest is not None and self._manifest.source == text:
            return self._manifest
        cache = ManifestCache.from_environ(os.environ)
        where = f"{self.system} from {self.url}"
        manifest = (cache.get(text, where) if cache is not None else None) or parse_manifest(text, where)
        self._manifest = manifest
        return manifest


def _events(lines: Iterator[str]) -> Iterator[tuple[str, dict[str, Any]]]:
    """A server-sent-events stream's events: (event, data as JSON); comments skipped."""
    kind, data = "message", ""
    for line in lines:
        if not line:
            if data:
                yield kind, json.loads(data)
            kind, data = "message", ""
        elif line.startswith("event:"):
            kind = line[6:].strip()
        elif line.startswith("data:"):
            data += line[5:].strip()
