"""flagctl serve for tests: the real ASGI application on a real uvicorn server, on a
loopback port of its own, in a thread of the test process."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from flagctl.serve.app import Settings, build
from flagctl.serve.relay import Relay
from tests.conftest import Cli


@dataclass
class Serving:
    url: str
    relay: Relay
    token: str
    server: uvicorn.Server

    def headers(self, client: str | None = None, token: str | None = None) -> dict[str, str]:
        given = {"Authorization": f"Bearer {token or self.token}"}
        if client is not None:
            given["X-Flagctl-Client"] = client
        return given

    def http(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def create_token(cli: Cli, application: str) -> str:
    result = cli("tokens", "create", application, "-r", "CHG-1: a token for the tests", "-y", "-o", "json")
    assert result.exit_code == 0, result.stderr
    token: str = json.loads(result.stdout)["token"]
    return token


@contextmanager
def serving(cli: Cli, manifest: Path | None = None, *, application: str = "checkout-web",
            start: bool = True, **relay: Any) -> Iterator[Serving]:  # fmt: skip
    """flagctl serve over the cli's database (its manifest file, or the published catalogue
    with ``manifest=None`` and ``system=``), with a token for ``application``."""
    token = create_token(cli, application)
    if "system" not in relay:
        relay["manifest"] = manifest or cli.manifest
    gate = Relay(cli.dsn, **relay)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            build([gate], Settings(keepalive=1.0), start=start),
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=1,
        )
    )
    thread = threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[sock])), daemon=True)
    thread.start()
    try:
        if start:
            assert gate.wait_ready(15), gate.stats.errors
        yield Serving(f"http://127.0.0.1:{port}", gate, token, server)
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()
