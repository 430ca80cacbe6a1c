"""GorgiasClient on a mocked HTTP layer (respx): auth, Host, headers, results, error translation, secrets."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator

import aiohttp
import httpx
import pytest
import respx
import yarl
from multidict import CIMultiDict, CIMultiDictProxy
from pydantic import SecretStr

from tests.support.gorgias_fakes import SECRET, TOKEN, credential, request, settings
from worker.core.config.account import AuthType
from worker.gorgias.client import (
    ClientRegistry,
    GorgiasClient,
    HttpResult,
    TransportName,
)
from worker.gorgias.errors import ForeignOriginError, TransportError, translate_exception

SANDBOX = "http://127.0.0.1:8080"


@pytest.fixture
async def basic() -> AsyncIterator[GorgiasClient]:
    async with GorgiasClient(credential(), SecretStr(SECRET), settings(), transport="httpx") as client:
        yield client


@pytest.fixture
async def sandboxed() -> AsyncIterator[GorgiasClient]:
    cred = credential(base_url=SANDBOX)
    async with GorgiasClient(cred, SecretStr(SECRET), settings(), transport="httpx") as client:
        yield client


class TestRequestShape:
    @respx.mock
    async def test_basic_auth_header(self, basic: GorgiasClient) -> None:
        route = respx.post("https://acme.gorgias.com/api/tickets").respond(201, json={"id": 1})
        await basic.send(request())
        sent = route.calls.last.request
        expected = base64.b64encode(f"agent@acme.com:{SECRET}".encode()).decode()
        assert sent.headers["authorization"] == f"Basic {expected}"
        assert sent.headers["host"] == "acme.gorgias.com"
        assert sent.headers["content-type"] == "application/json"
        assert sent.headers["accept"] == "application/json"
        assert sent.content == b'{"subject": "hi"}'

    @respx.mock
    async def test_bearer_auth_header(self) -> None:
        route = respx.put("https://acme.gorgias.com/api/customers/5").respond(202)
        cred = credential(auth=AuthType.OAUTH)
        async with GorgiasClient(cred, SecretStr(TOKEN), settings(), transport="httpx") as client:
            await client.send(request("https://acme.gorgias.com/api/customers/5", method="PUT"))
        assert route.calls.last.request.headers["authorization"] == f"Bearer {TOKEN}"

    @respx.mock
    async def test_base_url_keeps_the_gorgias_host(self, sandboxed: GorgiasClient) -> None:
        route = respx.post(f"{SANDBOX}/api/tickets/7/messages", params={"action": "force"}).respond(201)
        await sandboxed.send(request("https://acme.gorgias.com/api/tickets/7/messages?action=force"))
        sent = route.calls.last.request
        assert sent.url == httpx.URL(f"{SANDBOX}/api/tickets/7/messages?action=force")
        assert sent.headers["host"] == "acme.gorgias.com"

    @respx.mock
    async def test_base_url_origin_is_accepted_as_is(self, sandboxed: GorgiasClient) -> None:
        route = respx.post(f"{SANDBOX}/api/tickets").respond(201)
        await sandboxed.send(request(f"{SANDBOX}/api/tickets"))
        assert route.calls.last.request.headers["host"] == "acme.gorgias.com"

    @pytest.mark.parametrize(
        "url",
        [
            "https://evil.example.com/api/tickets",
            "http://acme.gorgias.com/api/tickets",
            "https://other.gorgias.com/api",
        ],
    )
    async def test_foreign_origin_is_refused(self, basic: GorgiasClient, url: str) -> None:
        with respx.mock(assert_all_called=False) as mock:
            with pytest.raises(ForeignOriginError, match="refusing to send credentials"):
                await basic.send(request(url))
            assert mock.calls.call_count == 0

    def test_explicit_default_port_is_the_same_origin(self, basic: GorgiasClient) -> None:
        url = "https://ACME.gorgias.com:443/api/tickets"
        assert basic.target_url(url) == url

    @respx.mock
    async def test_request_headers_cannot_override_credentials(self, sandboxed: GorgiasClient) -> None:
        route = respx.post(f"{SANDBOX}/api/tickets").respond(201)
        headers = {"authorization": "Basic Zm9vOmJhcg==", "HOST": "evil.example.com", "X-Trace": "abc"}
        await sandboxed.send(request(headers=headers))
        sent = route.calls.last.request
        assert (
            sent.headers["authorization"].startswith("Basic ") and "Zm9v" not in sent.headers["authorization"]
        )
        assert sent.headers["host"] == "acme.gorgias.com"
        assert sent.headers["x-trace"] == "abc"

    @respx.mock
    async def test_content_type_from_the_request(self, basic: GorgiasClient) -> None:
        route = respx.post("https://acme.gorgias.com/api/tickets").respond(201)
        form = request(
            body=b"a=1", content_type="application/x-www-form-urlencoded", headers={"Content-Type": "x/y"}
        )
        await basic.send(form)
        assert route.calls.last.request.headers.get_list("content-type") == [
            "application/x-www-form-urlencoded"
        ]

    @respx.mock
    async def test_delete_without_body(self, basic: GorgiasClient) -> None:
        route = respx.delete("https://acme.gorgias.com/api/tags/3").respond(204)
        got = await basic.send(
            request("https://acme.gorgias.com/api/tags/3", method="DELETE", body=None, content_type=None)
        )
        assert got.status == 204 and got.body_bytes == b""
        assert route.calls.last.request.content == b""


class TestResult:
    @respx.mock
    async def test_result_fields(self, basic: GorgiasClient) -> None:
        respx.post("https://acme.gorgias.com/api/tickets").respond(
            201, json={"id": 9}, headers={"X-Gorgias-Account-Api-Call-Limit": "3/40", "X-Request-Id": "r1"}
        )
        got = await basic.send(request())
        assert isinstance(got, HttpResult)
        assert got.status == 201
        assert got.body_bytes == b'{"id":9}'
        assert got.headers["x-gorgias-account-api-call-limit"] == "3/40"
        assert got.header("X-Request-ID") == "r1"
        assert all(name == name.lower() for name in got.headers)
        assert got.elapsed_s >= 0

    @pytest.mark.parametrize("status", [301, 400, 404, 429, 500, 503])
    async def test_error_statuses_are_results_not_exceptions(self, basic: GorgiasClient, status: int) -> None:
        with respx.mock:
            respx.post("https://acme.gorgias.com/api/tickets").respond(
                status, headers={"Location": "https://acme.gorgias.com/api/tickets/2"}
            )
            got = await basic.send(request())
        assert got.status == status  # 301 is not followed


TRANSLATIONS = [
    (httpx.ConnectError("refused"), "connect", False),
    (httpx.ConnectTimeout("slow connect"), "connect", False),
    (httpx.PoolTimeout("pool"), "pool", False),
    (httpx.ProxyError("proxy"), "connect", False),
    (httpx.ReadTimeout("slow"), "timeout", True),
    (httpx.WriteTimeout("slow write"), "timeout", True),
    (httpx.ReadError("reset"), "read", True),
    (httpx.WriteError("broken pipe"), "write", True),
    (httpx.RemoteProtocolError("Server disconnected without sending a response."), "protocol", True),
    (httpx.LocalProtocolError("bad header"), "protocol", False),
    (httpx.UnsupportedProtocol("ftp"), "protocol", False),
    (httpx.DecodingError("bad gzip"), "protocol", True),
]


class TestErrorTranslation:
    @pytest.mark.parametrize(("exc", "kind", "maybe_sent"), TRANSLATIONS, ids=lambda v: type(v).__name__)
    async def test_httpx_exception_classes(
        self, basic: GorgiasClient, exc: Exception, kind: str, maybe_sent: bool
    ) -> None:
        with respx.mock:
            respx.post("https://acme.gorgias.com/api/tickets").mock(side_effect=exc)
            with pytest.raises(TransportError) as caught:
                await basic.send(request())
        assert (caught.value.kind, caught.value.maybe_sent) == (kind, maybe_sent)
        assert type(exc).__name__ in caught.value.message
        assert caught.value.__cause__ is None  # the httpx request (with its headers) is not chained

    @pytest.mark.parametrize(
        ("cause", "kind", "maybe_sent"),
        [
            (aiohttp.ServerDisconnectedError(), "protocol", True),
            (aiohttp.ConnectionTimeoutError("connect"), "connect", False),
            (aiohttp.SocketTimeoutError("read"), "timeout", True),
            (aiohttp.ServerTimeoutError("timeout"), "timeout", True),
            (aiohttp.ClientConnectionResetError("reset"), "read", True),
            (aiohttp.ClientOSError(32, "Broken pipe"), "write", True),
            (aiohttp.ClientOSError(104, "Connection reset by peer"), "read", True),
            (aiohttp.ClientPayloadError("truncated"), "read", True),
            (aiohttp.InvalidURL("x"), "protocol", False),
        ],
        ids=lambda v: type(v).__name__,
    )
    def test_aiohttp_causes_decide_over_the_coarse_httpx_mapping(
        self, cause: Exception, kind: str, maybe_sent: bool
    ) -> None:
        # httpx_aiohttp maps every ClientConnectionError to ConnectTimeout; the cause must win.
        wrapped = httpx.ConnectTimeout(str(cause))
        wrapped.__cause__ = cause
        got_kind, got_sent, _ = translate_exception(wrapped, 30.0)
        assert (got_kind, got_sent) == (kind, maybe_sent)

    def test_raw_aiohttp_response_error(self) -> None:
        info = aiohttp.RequestInfo(
            yarl.URL("https://acme.gorgias.com/api/tickets"),
            "POST",
            CIMultiDictProxy(CIMultiDict({"Authorization": f"Bearer {SECRET}"})),
        )
        kind, sent, message = translate_exception(
            aiohttp.ClientResponseError(info, (), message="bad line"), 30.0
        )
        assert (kind, sent) == ("protocol", True)
        assert "bad line" in message and SECRET not in message

    def test_overall_deadline(self) -> None:
        kind, sent, message = translate_exception(TimeoutError(), 2.0)
        assert (kind, sent) == ("timeout", True) and "2 s" in message


class TestSecrets:
    async def test_repr_and_str_hold_no_secret(self, basic: GorgiasClient) -> None:
        encoded = base64.b64encode(f"agent@acme.com:{SECRET}".encode()).decode()
        for text in (repr(basic), str(basic)):
            assert SECRET not in text and encoded not in text
            assert "acme/basic" in text

    async def test_oauth_repr(self) -> None:
        async with GorgiasClient(
            credential(auth=AuthType.OAUTH), SecretStr(TOKEN), settings(), transport="httpx"
        ) as client:
            assert TOKEN not in repr(client)

    async def test_exception_messages_are_redacted(self, basic: GorgiasClient) -> None:
        encoded = base64.b64encode(f"agent@acme.com:{SECRET}".encode()).decode()
        with respx.mock:
            respx.post("https://acme.gorgias.com/api/tickets").mock(
                side_effect=httpx.ConnectError(f"failed with {SECRET} and Basic {encoded}")
            )
            with pytest.raises(TransportError) as caught:
                await basic.send(request())
        for text in (str(caught.value), repr(caught.value), caught.value.message):
            assert SECRET not in text and encoded not in text
            assert "***" in text


class TestConstruction:
    async def test_transport_names(self) -> None:
        names: tuple[TransportName, ...] = ("aiohttp", "httpx")
        for name in names:
            async with GorgiasClient(credential(), SecretStr(SECRET), settings(), transport=name) as client:
                assert client.transport_name == name

    def test_default_transport_is_aiohttp(self) -> None:
        client = GorgiasClient(credential(), SecretStr(SECRET), settings())
        assert client.transport_name == "aiohttp"

    def test_unknown_transport(self) -> None:
        with pytest.raises(ValueError, match="transport must be"):
            GorgiasClient(credential(), SecretStr(SECRET), settings(), transport="curl")  # type: ignore[arg-type]

    async def test_custom_transport_object(self) -> None:
        mock = httpx.MockTransport(lambda r: httpx.Response(202, headers={"X-A": "b"}))
        async with GorgiasClient(credential(), SecretStr(SECRET), settings(), transport=mock) as client:
            got = await client.send(request())
        assert (got.status, got.headers["x-a"]) == (202, "b")


class TestRegistry:
    async def test_one_client_per_account_identity(self) -> None:
        registry = ClientRegistry(transport="httpx", secret_resolver=lambda c: SecretStr(SECRET))
        a = registry.get(credential(), settings())
        assert registry.get(credential(), settings(max_in_flight=3)) is a
        assert registry.get(credential(username="boss@acme.com"), settings()) is not a
        assert registry.get(credential(domain="other"), settings()) is not a
        assert len(registry) == 3
        await registry.aclose()
        assert len(registry) == 0

    def test_missing_secret_raises_lookup_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.delenv("GORGIAS_TEST_KEY", raising=False)
        with pytest.raises(LookupError, match="GORGIAS_TEST_KEY"):
            ClientRegistry().get(credential(), settings())

    async def test_default_resolver_reads_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("GORGIAS_TEST_KEY", SECRET)
        registry = ClientRegistry(transport="httpx")
        client = registry.get(credential(), settings())
        assert isinstance(client, GorgiasClient)
        await registry.aclose()
