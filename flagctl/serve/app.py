"""``flagctl serve``'s HTTP application (Starlette): OFREP, the push stream, the status
page and its document, metrics and health, over one relay (``flagctl.serve.relay``) per
system.

Every route but ``/``, ``/healthz``, ``/readyz`` and ``/metrics`` needs a bearer token
(``flagctl tokens create``); the token names the system and the application. Nothing here
writes flag state: a token reads, by construction.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import functools
import hashlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from flagctl.gate.resolve import resolve
from flagctl.gate.wire import encode
from flagctl.serve import ofrep
from flagctl.serve.metrics import exposition
from flagctl.serve.relay import Relay, Who, version_of
from flagctl.store.tokens import digest

CLIENT_HEADER = "x-flagctl-client"
CLIENT_NAME = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII, no spaces
JSON_HEADERS = {"Cache-Control": "no-store"}


@dataclass
class Settings:
    keepalive: float = 15.0  # seconds between comments on an idle push stream


@functools.cache
def status_page() -> tuple[str, dict[str, str]]:
    """The status page and the headers it is served with: a Content-Security-Policy that
    lets run only the page's own script and style (by their digests) and lets it talk only
    to this server — an HTML fragment that ever slipped into the page could not run."""
    html = resources.files("flagctl.serve").joinpath("static/index.html").read_text(encoding="utf-8")

    def digests(tag: str) -> str:
        found = re.findall(rf"<{tag}>(.*?)</{tag}>", html, re.DOTALL)
        return " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in found)  # fmt: skip

    policy = (
        f"default-src 'none'; script-src {digests('script')}; style-src {digests('style')}; "
        "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    )
    return html, {
        "Content-Security-Policy": policy,
        "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
    }


class Unauthorized(Exception):
    pass


class NotReady(Exception):
    """No token matched, and a relay has not read its system (nor its tokens) yet."""


class Server:
    """The relays and the routes over them."""

    def __init__(self, relays: list[Relay], settings: Settings | None = None) -> None:
        self.relays = {relay.system: relay for relay in relays}
        self.settings = settings or Settings()
        self.unauthorized = 0

    # ------------------------------------------------------------------ helpers

    def caller(self, request: Request) -> tuple[Relay, str]:
        """The relay and application of the request's bearer token."""
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            hashed = digest(token.strip())
            for relay in self.relays.values():
                application = relay.tokens.get(hashed)
                if application is not None:
                    return relay, application
        if any(relay.seq is None for relay in self.relays.values()):
            raise NotReady
        self.unauthorized += 1
        raise Unauthorized

    @staticmethod
    def who(request: Request, application: str) -> Who | None:
        """The client behind the relay, by the name it gives (header X-Flagctl-Client, or
        ?client= for a browser's stream); None: it gave none (not tracked)."""
        name = request.headers.get(CLIENT_HEADER) or request.query_params.get("client")
        if name is None or not CLIENT_NAME.match(name):
            return None
        return application, name

    @staticmethod
    def not_ready(relay: Relay | None) -> JSONResponse:
        what = relay.system if relay is not None else "its systems"
        return JSONResponse(
            {"errorCode": "GENERAL", "errorDetails": f"flagctl serve has not read {what} yet"},
            status_code=503, headers={"Retry-After": "1"},
        )  # fmt: skip

    # ------------------------------------------------------------------ OFREP

    async def evaluate_one(self, request: Request) -> Response:
        relay, application = self.caller(request)
        key = request.path_params["key"]
        try:
            context = ofrep.parse(await request.body())
        except ofrep.BadRequest as bad:
            return JSONResponse({"key": key, "errorCode": bad.code, "errorDetails": bad.details}, 400)
        state_seq = relay.seq
        if state_seq is None:
            return self.not_ready(relay)
        found = resolve(relay, key, context.targeting_key, context.attributes)
        relay.counters.requests += 1
        relay.counters.evaluations += 1
        relay.fetched(self.who(request, application), state_seq)
        status, document = ofrep.single(found)
        return JSONResponse(document, status, headers=JSON_HEADERS)

    async def evaluate_all(self, request: Request) -> Response:
        relay, application = self.caller(request)
        try:
            context = ofrep.parse(await request.body())
        except ofrep.BadRequest as bad:
            return JSONResponse({"errorCode": bad.code, "errorDetails": bad.details}, 400)
        version, state_seq = relay.version(), relay.seq
        if version is None or state_seq is None:
            return self.not_ready(relay)
        relay.counters.requests += 1
        relay.fetched(self.who(request, application), state_seq)
        tag = ofrep.etag(version, context)
        if ofrep.matches(request.headers.get("if-none-match"), tag):
            relay.counters.not_modified += 1
            return Response(status_code=304, headers={"ETag": tag})
        found = [
            resolve(relay, key, context.targeting_key, context.attributes) for key in relay.manifest.flags
        ]
        relay.counters.evaluations += len(found)
        return JSONResponse(ofrep.bulk(found), headers={"ETag": tag, **JSON_HEADERS})

    async def state(self, request: Request) -> Response:
        """The whole state a gate decides from (``flagctl.gate.wire``), for a gate reading
        through this relay (``flagctl.gate.RemoteGate``); 304 while its ETag stands. The
        fetch is the named client's acknowledgement, as an OFREP fetch is."""
        relay, application = self.caller(request)
        state = relay.current_state()
        if state is None:
            return self.not_ready(relay)
        relay.fetched(self.who(request, application), state.seq)
        tag = f'"{version_of(state)}"'
        if ofrep.matches(request.headers.get("if-none-match"), tag):
            return Response(status_code=304, headers={"ETag": tag})
        return JSONResponse(encode(state), headers={"ETag": tag, **JSON_HEADERS})

    # ------------------------------------------------------------------ push

    async def events(self, request: Request) -> Response:
        """Server-sent events: ``hello`` with the current sequence, then a ``change`` for
        every change (its sequence and the state's version, which every bulk ETag starts
        with), and a comment every ``keepalive`` seconds while nothing changes."""
        relay, application = self.caller(request)
        who = self.who(request, application)
        return StreamingResponse(
            self._stream(relay, who), media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )  # fmt: skip

    async def _stream(self, relay: Relay, who: Who | None) -> AsyncIterator[str]:
        relay.opened(who)
        sent: int | None = None
        try:
            while True:
                changed = relay.changed()  # before the sequence is read: no change slips between
                seq = relay.seq
                if seq is not None and seq != sent:
                    data: dict[str, Any] = {"system": relay.system, "seq": seq, "version": relay.version()}
                    if who is not None:
                        data["client"] = who[1]
                    if sent is None:  # a reader hearing nothing for a few keepalives knows it is dead
                        data["keepalive"] = self.settings.keepalive
                        data["ready"] = relay.fresh()  # as a keepalive says it: current, or stale
                    yield f"id: {seq}\nevent: {'change' if sent is not None else 'hello'}\ndata: {json.dumps(data)}\n\n"
                    relay.counters.pushed += sent is not None
                    sent = seq
                    continue
                if await relay.wait(changed, self.settings.keepalive) is None:
                    # An event, not a comment: a gate behind the relay learns the relay is
                    # current (``ready``), and keeps its snapshot fresh by it.
                    alive = {"seq": relay.seq, "ready": relay.fresh()}
                    yield f"event: keepalive\ndata: {json.dumps(alive)}\n\n"
        finally:
            relay.closed(who)

    # ------------------------------------------------------------------ the page, health

    async def page(self, request: Request) -> Response:
        html, policy = status_page()
        return HTMLResponse(html, headers={"Cache-Control": "no-store", **policy})

    async def status(self, request: Request) -> Response:
        relay, _ = self.caller(request)
        if relay.seq is None:
            return self.not_ready(relay)
        document = await asyncio.to_thread(relay.status_document)
        if document is None:
            return JSONResponse({"error": "the status could not be read in time; try again"}, 503)
        return JSONResponse(document, headers=JSON_HEADERS)

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready when every system has a snapshot within its staleness bound."""
        systems = {name: relay.readiness() for name, relay in self.relays.items()}
        ready = all(s["ready"] for s in systems.values())
        return JSONResponse({"ready": ready, "systems": systems}, 200 if ready else 503)

    async def metrics(self, request: Request) -> Response:
        body, content_type = exposition(list(self.relays.values()), self.unauthorized)
        return Response(body, media_type=content_type)


def build(relays: list[Relay], settings: Settings | None = None, *, start: bool = True) -> Starlette:
    """The ASGI application. ``start``: its lifespan starts each relay's thread on startup
    (a test may drive relays itself) and closes them on shutdown."""
    server = Server(relays, settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        for relay in server.relays.values():
            relay.attach(loop)
            if start:
                relay.start()
        try:
            yield
        finally:
            if start:
                await asyncio.gather(*(asyncio.to_thread(r.close) for r in server.relays.values()))

    def guarded(handler: Any) -> Any:
        async def run(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except NotReady:
                return server.not_ready(None)
            except Unauthorized:
                return JSONResponse(
                    {"errorCode": "GENERAL", "errorDetails": "a valid bearer token is needed (flagctl tokens create)"},
                    401, headers={"WWW-Authenticate": 'Bearer realm="flagctl"'},
                )  # fmt: skip
            return response

        return run

    routes = [
        Route("/", server.page, methods=["GET"]),
        Route("/healthz", server.healthz, methods=["GET"]),
        Route("/readyz", server.readyz, methods=["GET"]),
        Route("/metrics", server.metrics, methods=["GET"]),
        Route("/ofrep/v1/evaluate/flags", guarded(server.evaluate_all), methods=["POST"]),
        Route("/ofrep/v1/evaluate/flags/{key:path}", guarded(server.evaluate_one), methods=["POST"]),
        Route("/flagctl/v1/events", guarded(server.events), methods=["GET"]),
        Route("/flagctl/v1/status", guarded(server.status), methods=["GET"]),
        Route("/flagctl/v1/state", guarded(server.state), methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.server = server
    return app
