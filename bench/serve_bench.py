"""flagctl serve: OFREP requests per second on one core, time to mitigate for 1,000 push
subscribers, memory per subscriber, the relay's database connections, and `kill --wait-ack`
through the relay.

The relay is a real `flagctl serve` process pinned to core 0; the load (wrk, Debian's
package, for requests per second; an asyncio client in this process for the subscribers)
runs on core 1. The database server and the `flagctl kill` processes are not pinned.
Each part runs on both stacks uvicorn can run on: pure Python (h11, asyncio: what the serve
extra installs) and, when installed, httptools + uvloop (uvicorn[standard]).

1. Requests per second (wrk, keep-alive connections, 1,000 contexts in turn): bulk
   evaluation of WS8 (1 flag) and of the recommender (12 flags), single-flag evaluation,
   304 answers (If-None-Match), next to a bare Starlette app on the same uvicorn that reads
   the body and returns a constant JSON document (the stack's ceiling). Rounds alternate
   over the scenarios; the median of the rounds is printed.
2. Time to mitigate: from the start of the `flagctl kill` process until each of 1,000
   subscribers (its own push stream, its own X-Flagctl-Client name, its own keep-alive
   connection for fetches) has received the change event, re-fetched (bulk) and sees the
   flag off. Kills and releases alternate.
3. Memory per subscriber: the relay's VmRSS with 0 and with 1,000 subscribers.
4. The relay's database connections (pg_stat_activity, application_name flagctl-gate)
   while the 1,000 are connected: exactly 1.
5. `flagctl kill --wait-ack` with the 1,000 re-fetching: until it confirms.

    python bench/serve_bench.py [--subscribers 1000] [--kills 20] [--seconds 4] [--dsn DSN]

Without --dsn the databases are created on the embedded PostgreSQL. Needs wrk on PATH
(`apt-get install wrk`); without it part 1 is skipped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psycopg
from _db import admin_dsn, compile_flagctl, throwaway_database

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "flagctl" / "examples"
FLAGCTL = str(Path(sys.executable).parent / "flagctl")
RELAY_CORE, LOAD_CORE = 0, 1
GO = ("-r", "bench", "-y")
CONTEXTS = 1000  # targeting keys the load cycles through
PEER = "bare Starlette, constant JSON"
# `flagctl serve` on a given HTTP parser and event loop: uvicorn's "auto" choice pinned to
# them, then flagctl's own command line (bench-only: flagctl serve leaves the choice to uvicorn).
ON_STACK = """
import sys
import uvicorn.config as config
config.HTTP_PROTOCOLS["auto"] = config.HTTP_PROTOCOLS[sys.argv.pop(1)]
config.LOOP_FACTORIES["auto"] = config.LOOP_FACTORIES[sys.argv.pop(1)]
sys.argv[0] = "flagctl"
from flagctl.cli.main import main
sys.exit(main())
"""
BARE_APP = """
import sys, uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route
DOC = {"flags": [{"key": "p3_advisory", "value": False, "reason": "SPLIT", "variant": "off", "metadata": {}}],
       "metadata": {}}
async def evaluate(request):
    await request.body()
    return JSONResponse(DOC, headers={"ETag": '"1.0"', "Cache-Control": "no-store"})
async def healthz(request):
    return JSONResponse({"status": "ok"})
app = Starlette(routes=[Route("/ofrep/v1/evaluate/flags", evaluate, methods=["POST"]), Route("/healthz", healthz)])
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[3]), log_level="warning", access_log=False,
            http=sys.argv[1], loop=sys.argv[2])
"""


@dataclass(frozen=True)
class Stack:
    """What uvicorn runs on: pure Python (what `pip install 'flagctl[serve]'` brings), or the
    C parser and loop of `pip install 'uvicorn[standard]'`, which uvicorn takes when present."""

    label: str
    http: str
    loop: str

    def available(self) -> bool:
        import importlib.util

        return all(importlib.util.find_spec(m) is not None for m in (self.http, self.loop) if m != "asyncio")


STACKS = [Stack("h11 + asyncio", "h11", "asyncio"), Stack("httptools + uvloop", "httptools", "uvloop")]


@dataclass(frozen=True)
class System:
    name: str
    example: str
    switch: str
    flag: str  # the flag a single evaluation asks for, and the kill turns off
    prepare: list[list[str]]

    @property
    def manifest(self) -> Path:
        return EXAMPLES / self.example / "flagctl.yaml"


WS8 = System("WS8", "ws8", "p3-off", "p3_advisory", [["stage", "set", "p3", "canary", *GO]])
RECSYS = System("recommender", "recsys", "cf-off", "disable_cf", [])


# ---------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _on_relay_core() -> None:
    """In the child: core 0 only, and as many descriptors as the hard limit allows."""
    os.sched_setaffinity(0, {RELAY_CORE})
    _raise_fd_limit()


def _on_any_core() -> None:
    os.sched_setaffinity(0, set(range(os.cpu_count() or 2)))


def _raise_fd_limit() -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        """The process's user and system CPU time so far (all its threads)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_kib(self) -> int:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise RuntimeError("no VmRSS")


@contextlib.contextmanager
def started(command: list[str], env: dict[str, str], port: int, ready: str = "/healthz") -> Iterator[Served]:
    """A server process on the relay's core, once ``ready`` answers 200; stopped afterwards."""
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=_on_relay_core
        )
        try:
            _wait_ready(process, f"http://127.0.0.1:{port}{ready}", log)
            yield Served(f"http://127.0.0.1:{port}", process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen[bytes], url: str, log: Any) -> None:
    deadline = time.monotonic() + 30
    while True:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        if process.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise RuntimeError(f"{process.args!r} did not start: {log.read().decode(errors='replace')}")
        time.sleep(0.05)


@dataclass
class Database:
    dsn: str
    env: dict[str, str]
    token: str

    def flagctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [FLAGCTL, *args], env=self.env, capture_output=True, text=True, preexec_fn=_on_any_core
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"flagctl {' '.join(args)}: exit {done.returncode}: {done.stderr}{done.stdout}"
            )
        return done

    def relay(self, stack: Stack) -> contextlib.AbstractContextManager[Served]:
        port = free_port()
        command = [sys.executable, "-c", ON_STACK, stack.http, stack.loop, "serve", "--port", str(port)]
        return started(command, self.env, port, "/readyz")


@contextlib.contextmanager
def database(admin: str, system: System) -> Iterator[Database]:
    with throwaway_database(admin) as dsn:
        cache = tempfile.mkdtemp(prefix="flagctl-bench-cache-")
        env = {
            **os.environ,
            "FLAGCTL_DSN": dsn,
            "FLAGCTL_MANIFEST": str(system.manifest),
            "FLAGCTL_CACHE_DIR": cache,
        }
        schema = EXAMPLES / system.example / "schema.sql"
        if schema.exists():
            with psycopg.connect(dsn, autocommit=True) as conn:
                conn.execute(schema.read_bytes())
        db = Database(dsn, env, "")
        db.flagctl("db", "init")
        for command in system.prepare:
            db.flagctl(*command)
        db.token = json.loads(db.flagctl("tokens", "create", "bench-app", *GO, "-o", "json").stdout)["token"]
        yield db


# ---------------------------------------------------------------------- 1. requests per second


def body(n: int) -> str:
    return json.dumps({"context": {"targetingKey": f"user-{n}", "region": "eu"}}, separators=(",", ":"))


def lua_script(path: str, headers: dict[str, str], etags: list[str] | None = None) -> str:
    """A wrk script cycling through the contexts (each request pre-formatted in init)."""
    lines = ["local reqs, i = {}, 0", "init = function(args)"]
    for n in range(CONTEXTS):
        given = {**headers, **({"If-None-Match": etags[n]} if etags else {})}
        table = ", ".join(f"[{json.dumps(k)}] = {json.dumps(v)}" for k, v in given.items())
        lines.append(
            f"  reqs[{n + 1}] = wrk.format('POST', {json.dumps(path)}, {{{table}}}, {json.dumps(body(n))})"
        )
    lines += ["end", "request = function()", "  i = i % #reqs + 1", "  return reqs[i]", "end"]
    return "\n".join(lines) + "\n"


@dataclass
class Scenario:
    label: str
    stack: Stack
    served: Served
    path: str
    headers: dict[str, str]
    expect: int  # the status every answer has (wrk counts 200 and 304 alike)
    etags: list[str] | None = None
    samples: list[float] = field(default_factory=list)

    def check(self) -> None:
        """The scenario's first request answers as it should."""
        headers = {**self.headers, **({"If-None-Match": self.etags[0]} if self.etags else {})}
        answer = httpx.post(self.served.url + self.path, content=body(0), headers=headers)
        assert answer.status_code == self.expect, (self.label, answer.status_code, answer.text)

    def wrk(self, seconds: float, connections: int) -> float:
        """Requests per second over ``seconds``, from wrk on the load core."""
        with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
            script.write(lua_script(self.path, self.headers, self.etags))
            script.flush()
            out = subprocess.run(
                ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "-s", script.name, self.served.url],
                capture_output=True,
                text=True,
                check=True,
                preexec_fn=lambda: os.sched_setaffinity(0, {LOAD_CORE}),
            ).stdout
        for wrong in (r"Non-2xx or 3xx responses: \d+", r"Socket errors: .*"):
            if found := re.search(wrong, out):
                raise RuntimeError(f"{self.label}: {found.group(0)}")
        rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
        assert rate is not None, out
        return float(rate.group(1))


def throughput(
    admin: str, stacks: list[Stack], rounds: int, seconds: float, connections: int
) -> list[Scenario]:
    """Every scenario's requests per second on each stack, ``rounds`` times, taking turns."""
    bulk = "/ofrep/v1/evaluate/flags"
    with contextlib.ExitStack() as resources:
        scenarios: list[Scenario] = []
        databases = [(system, resources.enter_context(database(admin, system))) for system in (WS8, RECSYS)]
        for stack in stacks:
            for system, db in databases:
                served = resources.enter_context(db.relay(stack))
                headers = {
                    "Authorization": f"Bearer {db.token}",
                    "Content-Type": "application/json",
                    "X-Flagctl-Client": "bench-pod",
                }
                with httpx.Client(base_url=served.url, headers=headers) as http:
                    flags = len(http.post(bulk, content=body(0)).json()["flags"])
                    etags = [http.post(bulk, content=body(n)).headers["etag"] for n in range(CONTEXTS)]
                label = f"{system.name} bulk, {flags} flag{'s' * (flags > 1)}"
                scenarios += [
                    Scenario(label, stack, served, bulk, headers, 200),
                    Scenario(f"{system.name} bulk, 304", stack, served, bulk, headers, 304, etags),
                    Scenario(
                        f"{system.name} single flag", stack, served, f"{bulk}/{system.flag}", headers, 200
                    ),
                ]
            port = free_port()
            command = [sys.executable, "-c", BARE_APP, stack.http, stack.loop, str(port)]
            bare = resources.enter_context(started(command, {**os.environ}, port))
            scenarios.append(Scenario(PEER, stack, bare, bulk, {"Content-Type": "application/json"}, 200))
        for scenario in scenarios:
            scenario.check()
            scenario.wrk(1, connections)  # warm-up
        for _ in range(rounds):
            for scenario in scenarios:
                scenario.samples.append(scenario.wrk(seconds, connections))
    return scenarios


# ---------------------------------------------------------------------- 2-5. push subscribers


class Connection:
    """A minimal HTTP/1.1 keep-alive client over asyncio streams: cheap enough that 1,000 of
    them in one process measure the relay, not the client."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    def send(self, method: str, path: str, headers: dict[str, str], content: bytes = b"") -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: relay\r\nContent-Length: {len(content)}\r\n"
        head += "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.writer.write(head.encode() + b"\r\n" + content)

    async def head(self) -> tuple[int, dict[str, str]]:
        status = int((await self.reader.readline()).split()[1])
        headers = {}
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    async def chunk(self) -> bytes:
        size = int((await self.reader.readline()).split(b";")[0], 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    async def request(
        self, method: str, path: str, headers: dict[str, str], content: bytes = b""
    ) -> tuple[int, bytes]:
        self.send(method, path, headers, content)
        status, given = await self.head()
        if status in (204, 304):
            return status, b""
        if given.get("transfer-encoding") == "chunked":
            parts = []
            while part := await self.chunk():
                parts.append(part)
            await self.reader.readline()
            return status, b"".join(parts)
        return status, await self.reader.readexactly(int(given["content-length"]))

    async def events(self) -> Any:
        """The server-sent events of a stream opened with ``send``: (event, data) pairs."""
        status, _ = await self.head()
        assert status == 200, status
        buffer = b""
        while True:
            buffer += await self.chunk()
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                fields = dict(line.split(b": ", 1) for line in raw.split(b"\n") if b": " in line)
                if b"event" in fields:
                    yield fields[b"event"].decode(), json.loads(fields.get(b"data", b"null"))

    def close(self) -> None:
        self.writer.close()


@dataclass
class Round:
    """One kill or release: when it started, what state counts as reached, who reached it."""

    off: bool
    started: float
    reached: dict[int, float] = field(default_factory=dict)  # subscriber → seconds after start
    heard: dict[int, float] = field(
        default_factory=dict
    )  # subscriber → its change event, seconds after start
    done: asyncio.Event = field(default_factory=asyncio.Event)


class Subscribers:
    """N push subscribers in this process, each with its own stream and name, re-fetching
    the bulk evaluation on every change event."""

    def __init__(self, port: int, token: str, flag: str, count: int) -> None:
        self.port, self.flag, self.count = port, flag, count
        self.auth = {"Authorization": f"Bearer {token}"}
        self.round: Round | None = None
        self.connected = 0
        self.all_connected = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.refetches = 0

    def is_off(self, document: dict[str, Any]) -> bool:
        found = next(f for f in document["flags"] if f["key"] == self.flag)
        return bool(found.get("reason") == "DISABLED" and found.get("value") is False)

    async def _one(self, n: int) -> None:
        name = {"X-Flagctl-Client": f"sub-{n:04d}"}
        stream, fetch = await Connection.open(self.port), await Connection.open(self.port)
        stream.send("GET", "/flagctl/v1/events", {**self.auth, **name})
        payload = body(n).encode()
        headers = {**self.auth, **name, "Content-Type": "application/json"}
        try:
            async for event, _ in stream.events():
                if event == "hello":
                    status, _ = await fetch.request("POST", "/ofrep/v1/evaluate/flags", headers, payload)
                    assert status == 200, status
                    self.connected += 1
                    if self.connected == self.count:
                        self.all_connected.set()
                    continue
                if event != "change":
                    continue
                heard = time.perf_counter()
                status, content = await fetch.request("POST", "/ofrep/v1/evaluate/flags", headers, payload)
                self.refetches += 1
                at = time.perf_counter()
                assert status == 200, status
                current = self.round
                if current is None or n in current.reached or self.is_off(json.loads(content)) != current.off:
                    continue
                current.heard[n] = heard - current.started
                current.reached[n] = at - current.started
                if len(current.reached) == self.count:
                    current.done.set()
        finally:
            stream.close()
            fetch.close()

    async def start(self, batch: int = 100) -> None:
        for first in range(0, self.count, batch):
            before = self.connected
            self.tasks += [
                asyncio.create_task(self._one(n)) for n in range(first, min(first + batch, self.count))
            ]
            while self.connected < before + min(batch, self.count - first):
                await asyncio.sleep(0.01)
                for task in self.tasks:
                    if task.done() and task.exception():
                        raise task.exception()  # type: ignore[misc]
        await self.all_connected.wait()

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def engage(
        self, db: Database, command: list[str], off: bool, timeout: float = 120
    ) -> tuple[Round, float]:
        """Run a flagctl command (a kill or a release) in a process; the round (every
        subscriber's time to see the state) and the process's own wall time."""
        self.round = Round(off, time.perf_counter())
        process = await asyncio.create_subprocess_exec(
            FLAGCTL, *command, env=db.env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            preexec_fn=_on_any_core,
        )  # fmt: skip
        out, err = await process.communicate()
        ran = time.perf_counter() - self.round.started
        if process.returncode != 0:
            raise RuntimeError(
                f"flagctl {' '.join(command)}: exit {process.returncode}: {err.decode()}{out.decode()}"
            )
        await asyncio.wait_for(self.round.done.wait(), timeout)
        return self.round, ran


@dataclass
class PushResults:
    rss_kib: dict[str, int]
    backends: int
    kills: list[Round]
    kill_process: list[float]
    releases: list[Round]
    wait_ack: list[float]
    wait_ack_reached: list[Round]
    refetches: int
    relay_cpu: list[float] = field(default_factory=list)  # per kill: the relay's CPU seconds
    client_cpu: list[float] = field(default_factory=list)  # per kill: this process's


def backends(dsn: str) -> int:
    name = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    with psycopg.connect(dsn) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = 'flagctl-gate'",
            (name,),
        ).fetchone()
    return int(row[0]) if row else -1


async def push(admin: str, stack: Stack, count: int, kills: int, acks: int) -> PushResults:
    with database(admin, WS8) as db, db.relay(stack) as served:
        port = int(served.url.rsplit(":", 1)[1])
        with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {db.token}"}) as http:
            for n in range(CONTEXTS):  # the bulk path warmed, as in a running relay
                http.post("/ofrep/v1/evaluate/flags", content=body(n))
        rss = {"0 subscribers": served.rss_kib()}
        subscribers = Subscribers(port, db.token, WS8.flag, count)
        await subscribers.start()
        await asyncio.sleep(1)  # their registrations written (the relay's thread), the heap settled
        rss[f"{count} subscribers"] = served.rss_kib()
        result = PushResults(rss, backends(db.dsn), [], [], [], [], [], 0)
        kill, release = ["kill", WS8.switch, *GO], ["release", WS8.switch, *GO]
        try:
            for _ in range(kills):
                relay_cpu, client_cpu = served.cpu_seconds(), time.process_time()
                killed, ran = await subscribers.engage(db, kill, off=True)
                result.relay_cpu.append(served.cpu_seconds() - relay_cpu)
                result.client_cpu.append(time.process_time() - client_cpu)
                result.kills.append(killed)
                result.kill_process.append(ran)
                result.releases.append((await subscribers.engage(db, release, off=False))[0])
            rss[f"{count} subscribers, after {kills} kills"] = served.rss_kib()
            for _ in range(acks):
                waited, ran = await subscribers.engage(db, ["kill", WS8.switch, "--wait-ack", *GO], off=True)
                result.wait_ack.append(ran)
                result.wait_ack_reached.append(waited)
                await subscribers.engage(db, release, off=False)
        finally:
            result.refetches = subscribers.refetches
            await subscribers.stop()
        return result


# ---------------------------------------------------------------------- the report


def pct(samples: list[float], p: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def ms(samples: list[float]) -> str:
    p50, p99, top = (x * 1000 for x in (pct(samples, 50), pct(samples, 99), max(samples)))
    return f"p50 {p50:6.0f} ms   p99 {p99:6.0f} ms   max {top:6.0f} ms"


def report_throughput(scenarios: list[Scenario], stacks: list[Stack], rounds: int, seconds: float,
                      connections: int) -> None:  # fmt: skip
    print(
        f"flagctl serve, requests per second on one core (server on core {RELAY_CORE}, wrk -t1 -c{connections} "
        f"on core {LOAD_CORE}; 1,000 contexts in turn), median of {rounds} rounds of {seconds:g} s, same run;"
        " ×: of the bare Starlette app on the same stack"
    )
    rates = {(s.stack.label, s.label): statistics.median(s.samples) for s in scenarios}
    print(f"  {'':32s}" + "".join(f"{stack.label:>26s}" for stack in stacks))
    for label in dict.fromkeys(s.label for s in scenarios):
        cells = []
        for stack in stacks:
            rate, ceiling = rates[stack.label, label], rates[stack.label, PEER]
            cells.append(f"{rate:10.0f} req/s (×{rate / ceiling:.2f})")
        ratio = (
            f"   {stacks[1].label} / {stacks[0].label}: ×{rates[stacks[1].label, label] / rates[stacks[0].label, label]:.2f}"
            if len(stacks) > 1
            else ""
        )
        print(f"  {label:32s}" + "".join(f"{cell:>26s}" for cell in cells) + ratio)


def report_push(result: PushResults, stack: Stack, count: int) -> None:
    zero, full = (result.rss_kib[k] for k in ("0 subscribers", f"{count} subscribers"))
    print(
        f"flagctl serve on {stack.label}, {count} push subscribers (one asyncio process on core {LOAD_CORE}):"
    )
    print(f"  relay backends in pg_stat_activity (application_name flagctl-gate): {result.backends}")
    for label, kib in result.rss_kib.items():
        print(f"  relay VmRSS, {label + ':':36s} {kib / 1024:6.1f} MiB")
    print(f"  memory per subscriber (its stream and its fetch connection): {(full - zero) / count:.1f} KiB")
    rows = [
        (f"kill start → all {count} see it off ({len(result.kills)} kills)", [max(r.reached.values()) for r in result.kills]),
        ("kill start → each subscriber sees it off", [t for r in result.kills for t in r.reached.values()]),
        ("kill start → each hears the change event", [t for r in result.kills for t in r.heard.values()]),
        ("first event heard → last sees it off", [max(r.reached.values()) - min(r.heard.values()) for r in result.kills]),
        ("the flagctl kill process, start → exit", result.kill_process),
        (f"release start → all {count} see it on", [max(r.reached.values()) for r in result.releases]),
    ]  # fmt: skip
    if result.wait_ack:
        rows += [
            (f"kill --wait-ack start → it confirms ({len(result.wait_ack)} kills)", result.wait_ack),
            (f"  the same kills: → all {count} see it off", [max(r.reached.values()) for r in result.wait_ack_reached]),
        ]  # fmt: skip
    for label, samples in rows:
        print(f"  {label:48s} {ms(samples)}")
    print(f"  re-fetches answered: {result.refetches}")
    relay, client = statistics.median(result.relay_cpu), statistics.median(result.client_cpu)
    print(
        f"  CPU per kill, median: the relay {relay * 1000:.0f} ms ({relay / count * 1e6:.0f} µs per subscriber: "
        f"its event and its re-fetch), this client {client * 1000:.0f} ms"
    )


def main() -> None:
    compile_flagctl()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--wait-acks", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--dsn", help="an existing server's admin DSN (default: the embedded one)")
    args = parser.parse_args()
    if (os.cpu_count() or 1) < 2:
        sys.exit("serve_bench needs two cores (the relay on one, the load on the other)")
    _raise_fd_limit()
    admin = admin_dsn(args.dsn)
    os.sched_setaffinity(0, {LOAD_CORE})  # the subscribers' client; the server and kills are not pinned
    stacks = [stack for stack in STACKS if stack.available()]
    if len(stacks) < len(STACKS):
        print("httptools and uvloop are not installed (pip install 'uvicorn[standard]'): pure Python only")
    if args.skip_throughput:
        pass
    elif shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): requests per second skipped")
    else:
        scenarios = throughput(admin, stacks, args.rounds, args.seconds, args.connections)
        report_throughput(scenarios, stacks, args.rounds, args.seconds, args.connections)
    results = [
        asyncio.run(push(admin, stack, args.subscribers, args.kills, args.wait_acks)) for stack in stacks
    ]
    for stack, result in zip(stacks, results, strict=True):
        report_push(result, stack, args.subscribers)
    if len(results) > 1:
        first, second = (statistics.median([max(r.reached.values()) for r in x.kills]) for x in results)
        print(
            f"time to mitigate (all {args.subscribers}), median, {stacks[1].label} / {stacks[0].label}: ×{second / first:.2f}"
        )
    if any(result.backends != 1 for result in results):
        sys.exit(f"the relay held {[r.backends for r in results]} database connections, not 1")


if __name__ == "__main__":
    main()
