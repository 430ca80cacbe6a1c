"""GorgiasClient against a real aiohttp server on 127.0.0.1 (port 0), with both transports."""

from __future__ import annotations

import asyncio
import base64
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import orjson
import pytest
from aiohttp import web
from hypothesis import HealthCheck, example, given
from hypothesis import settings as settings_
from hypothesis import strategies as st
from multidict import CIMultiDict
from pydantic import SecretStr

from tests.support.gorgias_fakes import SECRET, credential, request, settings
from worker.core.config.worker_config import Destination
from worker.core.records.record import Record, SourceRef
from worker.core.requests.rendering import RequestRenderer
from worker.gorgias.client import GorgiasClient, HttpResult, TransportName
from worker.gorgias.errors import TransportError

UNRESERVED_OR_ESCAPE = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+")


@dataclass
class Server:
    origin: str
    release: asyncio.Event
    hits: dict[str, int]


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    release = asyncio.Event()
    hits: dict[str, int] = {}

    def count(request: web.Request) -> None:
        hits[request.path] = hits.get(request.path, 0) + 1

    async def echo(request: web.Request) -> web.Response:
        count(request)
        body = await request.read()
        return web.json_response(
            {
                "host": request.headers.get("Host"),
                "authorization": request.headers.get("Authorization"),
                "content_type": request.headers.get("Content-Type"),
                "path_qs": request.path_qs,
                "body": body.decode(),
                "cookie": request.headers.get("Cookie"),
            },
            status=201,
            headers=CIMultiDict([("X-Gorgias-Account-Api-Call-Limit", "1/40"), ("Set-Cookie", "session=abc; Path=/"),
                                 ("X-Twice", "a"), ("X-Twice", "b")]),
        )

    async def slow(request: web.Request) -> web.Response:
        count(request)
        await request.read()
        try:
            await asyncio.wait_for(release.wait(), 5.0)
        except TimeoutError:
            pass
        return web.Response(status=201)

    async def drop(request: web.Request) -> web.Response:
        count(request)
        await request.read()
        assert request.transport is not None
        request.transport.abort()  # the request arrived; the connection dies before any response
        raise web.HTTPInternalServerError()

    async def truncated(request: web.Request) -> web.StreamResponse:
        count(request)
        await request.read()
        response = web.StreamResponse(status=201, headers={"Content-Length": "1000"})
        await response.prepare(request)
        await response.write(b'{"id": 1, ')
        await response.drain()
        assert request.transport is not None
        request.transport.abort()
        return response

    async def raw(request: web.Request) -> web.Response:
        return web.json_response({"raw_path": request.raw_path})

    app = web.Application()
    app.router.add_route("*", r"/api/raw/{tail:[\s\S]*}", raw)
    for path, handler in (
        ("/api/echo", echo),
        ("/api/slow", slow),
        ("/api/drop", drop),
        ("/api/truncated", truncated),
    ):
        app.router.add_route("*", path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield Server(f"http://127.0.0.1:{port}", release, hits)
    finally:
        release.set()
        await runner.cleanup()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
class TestAgainstRealServer:
    async def send(
        self, origin: str, path: str, transport: TransportName, timeout_s: float = 10.0
    ) -> HttpResult:
        cred = credential(base_url=origin)
        config = settings(timeout_s=timeout_s, connect_timeout_s=5.0)
        async with GorgiasClient(cred, SecretStr(SECRET), config, transport=transport) as client:
            return await client.send(request(f"https://acme.gorgias.com{path}"))

    async def test_success_carries_auth_and_gorgias_host(
        self, server: Server, transport: TransportName
    ) -> None:
        got = await self.send(server.origin, "/api/echo?x=1", transport)
        assert isinstance(got, HttpResult) and got.status == 201
        echoed = orjson.loads(got.body_bytes)
        assert echoed["host"] == "acme.gorgias.com"
        assert (
            echoed["authorization"]
            == "Basic " + base64.b64encode(f"agent@acme.com:{SECRET}".encode()).decode()
        )
        assert echoed["content_type"] == "application/json"
        assert echoed["path_qs"] == "/api/echo?x=1"
        assert echoed["body"] == '{"subject": "hi"}'
        assert got.headers["x-gorgias-account-api-call-limit"] == "1/40"

    async def test_dropped_connection_may_have_been_sent(
        self, server: Server, transport: TransportName
    ) -> None:
        with pytest.raises(TransportError) as caught:
            await self.send(server.origin, "/api/drop", transport)
        # aiohttp: ServerDisconnectedError; httpx: RemoteProtocolError ("without sending a response")
        assert (caught.value.kind, caught.value.maybe_sent) == ("protocol", True)
        assert server.hits["/api/drop"] >= 1

    async def test_truncated_response_is_a_read_side_failure(
        self, server: Server, transport: TransportName
    ) -> None:
        with pytest.raises(TransportError) as caught:
            await self.send(server.origin, "/api/truncated", transport)
        # aiohttp: ClientPayloadError; httpx: RemoteProtocolError ("without sending complete message body")
        expected_kind = "read" if transport == "aiohttp" else "protocol"
        assert (caught.value.kind, caught.value.maybe_sent) == (expected_kind, True)

    async def test_read_timeout(self, server: Server, transport: TransportName) -> None:
        loop = asyncio.get_running_loop()
        started = loop.time()
        with pytest.raises(TransportError) as caught:
            await self.send(server.origin, "/api/slow", transport, timeout_s=0.3)
        assert (caught.value.kind, caught.value.maybe_sent) == ("timeout", True)
        assert loop.time() - started < 2.0
        assert server.hits["/api/slow"] == 1

    async def test_connection_refused_was_not_sent(self, transport: TransportName) -> None:
        with pytest.raises(TransportError) as caught:
            await self.send(f"http://127.0.0.1:{closed_port()}", "/api/echo", transport)
        assert (caught.value.kind, caught.value.maybe_sent) == ("connect", False)
        assert SECRET not in str(caught.value)

    async def test_cookies_are_not_kept_and_repeated_headers_are_joined(
        self, server: Server, transport: TransportName
    ) -> None:
        """Gorgias authenticates each request by its header: a cookie it sets is never sent back."""
        cred = credential(base_url=server.origin)
        async with GorgiasClient(cred, SecretStr(SECRET), settings(), transport=transport) as client:
            first = await client.send(request("https://acme.gorgias.com/api/echo"))
            second = await client.send(request("https://acme.gorgias.com/api/echo"))
        assert first.headers["set-cookie"].startswith("session=abc")
        assert orjson.loads(second.body_bytes)["cookie"] is None
        assert second.headers["x-twice"] == "a, b"

    async def test_pool_is_reused_across_sends(self, server: Server, transport: TransportName) -> None:
        cred = credential(base_url=server.origin)
        async with GorgiasClient(cred, SecretStr(SECRET), settings(), transport=transport) as client:
            sends = [client.send(request("https://acme.gorgias.com/api/echo")) for _ in range(20)]
            results = await asyncio.gather(*sends)
        assert [r.status for r in results] == [201] * 20


URL_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12).filter(
    lambda t: t not in (".", ".."))


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
@settings_(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(a=URL_TEXT, b=URL_TEXT)
@example(a="1;drop", b="a@b:c,d")
@example(a="!$&'()*+,;=", b="%3B")
async def test_placeholder_values_reach_the_server_exactly_as_encoded(
    server: Server, transport: TransportName, a: str, b: str
) -> None:
    """The strict unreserved-set encoding survives the transport: nothing is decoded on the way."""
    dest = Destination.model_validate({
        "name": "d", "source_topics": ["t"],
        "credential": {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"},
        "endpoint": {"method": "PUT", "url": "https://{domain}.gorgias.com/api/raw/{a}/x?q={b}"},
    })
    renderer = RequestRenderer(dest)
    rendered = renderer.render_one(renderer.prepare(Record(data={"a": a, "b": b}, source=SourceRef("t", 0, 0))))
    sent_path = urlsplit(rendered.url).path
    segment = sent_path.split("/")[3]
    assert UNRESERVED_OR_ESCAPE.fullmatch(segment) and unquote(segment, errors="strict") == a
    cred = credential(base_url=server.origin)
    async with GorgiasClient(cred, SecretStr(SECRET), settings(), transport=transport) as client:
        got = await client.send(rendered)
    assert isinstance(got, HttpResult) and got.status == 200
    assert orjson.loads(got.body_bytes)["raw_path"] == f"{sent_path}?{urlsplit(rendered.url).query}"
