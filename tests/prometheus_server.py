"""A real Prometheus for the tests: an exporter in this process whose values a test sets,
and ``/usr/bin/prometheus`` scraping it every second, both on loopback only.

The binary comes from Debian's ``prometheus`` package (``make prometheus`` installs it; CI
does). Without it a test fails with that hint when ``CI`` is set, and is skipped otherwise.
The tests wait for Prometheus itself, never for a fixed time: each wait blocks until the
exporter has answered its next scrape, then asks Prometheus again, bounded by ``SCRAPE_WAIT``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.tools import missing

BINARY = os.environ.get("FLAGCTL_TEST_PROMETHEUS", "/usr/bin/prometheus")
SCRAPE_WAIT = 30.0  # seconds: Prometheus up, and a value scraped
LOOPBACK = "127.0.0.1"


class Exporter:
    """Prometheus text metrics on ``http://127.0.0.1:PORT/metrics``: one line per series,
    set and removed by the test."""

    def __init__(self) -> None:
        self.series: dict[str, float] = {}  # 'name{labels}' → value
        self.lock = threading.Lock()
        self.scrapes = 0  # scrapes answered so far
        self.scraped = threading.Condition()
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/metrics":
                    self.send_error(404, "only /metrics here")
                    return
                body = exporter.text().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with exporter.scraped:
                    exporter.scrapes += 1
                    exporter.scraped.notify_all()

            def log_message(self, *args: object) -> None:  # quiet: no stderr per scrape
                pass

        self.server = ThreadingHTTPServer((LOOPBACK, 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, series: str, value: float) -> None:
        with self.lock:
            self.series[series] = value

    def remove(self, series: str) -> None:
        with self.lock:
            self.series.pop(series, None)

    def text(self) -> str:
        with self.lock:
            return "".join(f"{series} {value!r}\n" for series, value in self.series.items())

    def next_scrape(self, deadline: float) -> None:
        """Block until Prometheus has scraped once more (or the deadline has passed)."""
        with self.scraped:
            seen = self.scrapes
            self.scraped.wait_for(lambda: self.scrapes > seen, timeout=max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Prometheus:
    def __init__(self, url: str, exporter: Exporter) -> None:
        self.url = url
        self.exporter = exporter

    def query(self, promql: str) -> list[dict[str, object]]:
        """The instant vector Prometheus holds now (the test's own view, not flagctl's)."""
        address = f"{self.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
        with urllib.request.urlopen(address, timeout=5) as response:
            answer = json.load(response)
        result: list[dict[str, object]] = answer["data"]["result"]
        return result

    def scraped(self, series: str, value: float) -> None:
        """Set ``series`` to ``value`` on the exporter and wait (bounded) until Prometheus
        has scraped it."""
        self.exporter.set(series, value)
        self.wait(series, lambda found: len(found) == 1 and _value(found[0]) == value, f"{series} = {value}")

    def gone(self, series: str) -> None:
        """Remove ``series`` and wait until Prometheus has marked it stale."""
        self.exporter.remove(series)
        self.wait(series, lambda found: not found, f"{series} gone")

    def wait(self, promql: str, done: Callable[[list[dict[str, object]]], bool], what: str) -> None:
        deadline = time.monotonic() + SCRAPE_WAIT
        found: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            with suppress(OSError, ValueError, KeyError):
                found = self.query(promql)
                if done(found):
                    return
            self.exporter.next_scrape(deadline)  # what the next scrape brings, not a fixed pause
        raise AssertionError(f"Prometheus at {self.url} did not show {what} within {SCRAPE_WAIT:g}s: {found}")


def _value(sample: dict[str, object]) -> float:
    pair = sample["value"]
    assert isinstance(pair, list)
    return float(pair[1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def require_binary() -> str:
    found = BINARY if os.access(BINARY, os.X_OK) else shutil.which("prometheus")
    if found:
        return found
    missing(f"no Prometheus binary at {BINARY}: run `make prometheus` (apt-get install -y prometheus)")


def bypass_proxies() -> None:
    """A machine's HTTP proxy is for the world, not for loopback (flagctl honours the
    proxy variables, as urllib does)."""
    for var in ("no_proxy", "NO_PROXY"):
        current = os.environ.get(var, "")
        if LOOPBACK not in current.split(","):
            os.environ[var] = ",".join(filter(None, [current, LOOPBACK]))


@contextmanager
def running_prometheus() -> Iterator[Prometheus]:
    binary = require_binary()
    bypass_proxies()
    exporter = Exporter()
    exporter.set("flagctl_test_up", 1)
    folder = Path(tempfile.mkdtemp(prefix="flagctl-prometheus-"))
    config = folder / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: flagctl_test\n    static_configs: [{{targets: ['{LOOPBACK}:{exporter.port}']}}]\n"
    )
    port = free_port()
    log = (folder / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            binary, f"--config.file={config}", f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address={LOOPBACK}:{port}",
        ],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=folder,
    )  # fmt: skip
    prometheus = Prometheus(f"http://{LOOPBACK}:{port}", exporter)
    try:
        try:
            prometheus.wait("flagctl_test_up", lambda found: len(found) == 1, "the exporter scraped")
        except AssertionError:
            if process.poll() is not None:
                log.flush()
                raise AssertionError(
                    f"prometheus exited {process.returncode}: {(folder / 'prometheus.log').read_text()[-2000:]}"
                ) from None
            raise
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        exporter.close()
        shutil.rmtree(folder, ignore_errors=True)
