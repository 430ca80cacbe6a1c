"""The HTTP boundary to Gorgias: one pooled client per account, one attempt per :meth:`GorgiasClient.send`.

Everything below HTTP is translated here into :class:`~worker.gorgias.errors.TransportError`; callers
never see an httpx or aiohttp exception, and the credential's secret never appears in a repr, an
exception message or a result.

Transport choice, measured with ``bench/http_transport_bench.py`` (2-core machine, aiohttp server
pinned to one core, client to the other, ``POST`` with a 286-byte JSON body, 5 s per run). First run,
quiet machine::

    transport                      in flight   req/s   p50 ms   p99 ms
    httpx default (httpcore)               1     954     0.98     1.73
    httpx default (httpcore)              32     288    71.45   496.78
    httpx_aiohttp.AiohttpTransport         1    1665     0.56     1.18
    httpx_aiohttp.AiohttpTransport        32    3021     9.62    25.58

Across three runs (the later two with a load average of 2 from other work): httpx 425-954 req/s at 1
in flight and 156-288 at 32; aiohttp 701-1665 and 2355-3021. Through ``GorgiasClient.send`` itself
(last run): 937 and 2415 req/s on aiohttp against 645 and 263 on httpx. The aiohttp-backed transport
is the default (faster at 1 in flight, about ten times faster at 32, with a p99 ten to twenty times
lower); ``transport="httpx"`` keeps the plain httpcore transport selectable.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol
from urllib.parse import urlsplit

import aiohttp
import httpx
import yarl
from httpx_aiohttp import AiohttpTransport
from httpx_aiohttp.transport import map_aiohttp_exceptions
from pydantic import SecretStr

from worker.core.config.account import AuthType, Credential
from worker.core.config.delivery import DeliverySettings
from worker.core.requests.request import RenderedRequest
from worker.core.requests.wire_headers import wire_headers
from worker.gorgias.errors import ForeignOriginError, TransportError, redact, translate_exception
from worker.host import environment

TransportName = Literal["aiohttp", "httpx"]
DEFAULT_TRANSPORT: TransportName = "aiohttp"

with warnings.catch_warnings():  # aiohttp discourages subclassing ClientSession; this one changes one method
    warnings.simplefilter("ignore", DeprecationWarning)

    class _ExactUrlSession(aiohttp.ClientSession):
        """A session that sends a URL string exactly as rendered.

        aiohttp parses a URL string with ``yarl.URL(url)``, which re-quotes it and *decodes* escapes of
        characters a path may hold raw: ``/api/tickets/1%3Bdrop`` would go out as ``/api/tickets/1;drop``,
        which servers that treat ``;`` as a path-parameter delimiter read as ticket 1. Our URLs are
        rendered already encoded (:mod:`worker.core.requests.rendering`), so they are taken as they are.
        """

        def _build_url(self, str_or_url: str | yarl.URL) -> yarl.URL:
            if isinstance(str_or_url, str):
                return yarl.URL(str_or_url, encoded=True)
            return super()._build_url(str_or_url)


class _AiohttpTransport(AiohttpTransport):
    """httpx over aiohttp, with :class:`_ExactUrlSession`, no cookie jar, and a short path per request.

    Same connector settings as the library's own. ``handle_async_request`` keeps httpx's transport
    contract (an ``httpx.Request`` in, an ``httpx.Response`` out, aiohttp errors raised as the library's
    httpx errors with the aiohttp error as ``__cause__``) but reads the whole body at once and sends the
    URL exactly as :class:`GorgiasClient` passed it (``request.extensions["worker.url"]``), instead of
    streaming the body in 16 kB chunks and re-serializing ``request.url``.
    """

    def get_client(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(
            limit=self.limits.max_connections or 0,
            keepalive_timeout=self.limits.keepalive_expiry,
            ssl=self.ssl_context,
        )
        # Gorgias authenticates every request with its header: cookies are neither needed nor kept.
        return _ExactUrlSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self.client
        if not isinstance(session, aiohttp.ClientSession):
            session = self.client = self.get_client()
        extensions = request.extensions
        url = extensions.get(EXACT_URL) or str(request.url)
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        with map_aiohttp_exceptions():
            async with session.request(
                request.method,
                url,
                headers=headers,
                data=request.content or None,
                allow_redirects=False,
                auto_decompress=False,
                compress=False,
                timeout=_client_timeout(extensions.get("timeout")),
            ) as response:
                body = await response.read()
        # stream=, not content=: httpx would otherwise rebuild the headers and decode the body right here
        return httpx.Response(
            status_code=response.status,
            headers=response.raw_headers,
            stream=httpx.ByteStream(body),
            request=request,
            extensions={"http_version": b"HTTP/1.1"},
        )


_CLIENT_TIMEOUTS: dict[tuple[float | None, float | None, float | None], aiohttp.ClientTimeout] = {}


def _client_timeout(timeout: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
    """The aiohttp timeout of an httpx timeout extension (as the library maps it), built once per value."""
    timeout = timeout or {}
    key = (timeout.get("connect"), timeout.get("read"), timeout.get("pool"))
    found = _CLIENT_TIMEOUTS.get(key)
    if found is None:
        found = aiohttp.ClientTimeout(sock_connect=key[0], sock_read=key[1], connect=key[2])
        if len(_CLIENT_TIMEOUTS) < 64:
            _CLIENT_TIMEOUTS[key] = found
    return found


EXACT_URL = "worker.url"
"""``httpx.Request`` extension: the URL string to send as it is (already encoded by the renderer)."""
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LENGTH_REQUIRED = frozenset({"POST", "PUT", "PATCH"})  # an empty body is sent as Content-Length: 0


@dataclass(frozen=True, slots=True)
class HttpResult:
    """A complete HTTP response to one attempt. Header names are lower-case."""

    status: int
    headers: dict[str, str]
    body_bytes: bytes
    elapsed_s: float

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


class Sender(Protocol):
    """One attempt at a request; what :class:`~worker.gorgias.delivery.DeliveryService` drives."""

    async def send(self, req: RenderedRequest) -> HttpResult: ...
    async def aclose(self) -> None: ...


class GorgiasClient:
    """A pooled HTTP client for one Gorgias account with the credential's authentication.

    ``send`` makes exactly one attempt, following no redirects. With ``credential.base_url`` (the local
    sandbox) requests go to that origin but keep ``Host: {domain}.gorgias.com``. ``transport`` is
    ``"aiohttp"`` (default), ``"httpx"``, or any ``httpx.AsyncBaseTransport`` (tests).
    """

    def __init__(
        self,
        credential: Credential,
        secret: SecretStr,
        settings: DeliverySettings,
        *,
        transport: TransportName | httpx.AsyncBaseTransport = DEFAULT_TRANSPORT,
        max_connections: int | None = None,
    ) -> None:
        self._account_key = credential.account_key
        self._host = credential.host
        self._base_url = credential.base_url
        self._allowed = {_origin_key(f"https://{credential.host}")}
        if credential.base_url:
            self._allowed.add(_origin_key(credential.base_url))
        self._timeout_s = settings.timeout_s
        self._secret = secret
        self._authorization = SecretStr(_authorization(credential, secret))
        limit = max_connections or max(settings.max_in_flight, 32)
        limits = httpx.Limits(max_connections=limit, max_keepalive_connections=limit)
        chosen: httpx.AsyncBaseTransport
        if isinstance(transport, httpx.AsyncBaseTransport):
            chosen, self._transport_name = transport, type(transport).__name__
        elif transport == "aiohttp":
            chosen, self._transport_name = _AiohttpTransport(limits=limits), "aiohttp"
        elif transport == "httpx":
            chosen, self._transport_name = httpx.AsyncHTTPTransport(limits=limits), "httpx"
        else:
            raise ValueError(f"transport must be 'aiohttp' or 'httpx', not {transport!r}")
        self._transport = chosen
        self._extensions: dict[str, object] = {"timeout": {
            "connect": settings.connect_timeout_s,
            "read": settings.timeout_s,
            "write": settings.timeout_s,
            "pool": settings.timeout_s,
        }}
        # URLs starting with these are the credential's origin: no parsing needed (the trailing "/" ends
        # the authority, so nothing like "https://acme.gorgias.com@evil.example" can match).
        self._own_prefixes = tuple(
            p for p in (f"https://{credential.host}/", f"{credential.base_url}/" if credential.base_url else None)
            if p is not None
        )
        self._header_cache: dict[tuple[tuple[tuple[str, str], ...], str | None], list[tuple[str, str]]] = {}
        self._url_cache: dict[str, httpx.URL] = {}

    @property
    def account_key(self) -> str:
        return self._account_key

    @property
    def transport_name(self) -> str:
        return self._transport_name

    def __repr__(self) -> str:
        origin = self._base_url or f"https://{self._host}"
        return (
            f"GorgiasClient(account={self._account_key!r}, origin={origin!r}, "
            f"transport={self._transport_name!r})"
        )

    def target_url(self, url: str) -> str:
        """Where ``url`` is actually sent: the credential's origin. Raises ForeignOriginError elsewhere."""
        for prefix in self._own_prefixes:
            if url.startswith(prefix):
                if self._base_url is None:
                    return url
                return self._base_url + url[len(prefix) - 1:]
        parts = urlsplit(url)
        if _origin_key(url) not in self._allowed:
            raise ForeignOriginError(
                f"refusing to send credentials of {self._account_key} to {parts.scheme}://{parts.netloc}: "
                f"only https://{self._host}"
                + (f" or {self._base_url}" if self._base_url else "")
                + " is allowed"
            )
        if self._base_url is None:
            return url
        path = parts.path or "/"
        return f"{self._base_url}{path}" + (f"?{parts.query}" if parts.query else "")

    def _headers(self, req: RenderedRequest) -> list[tuple[str, str]]:
        """The request's headers as sent (:func:`wire_headers`, always with ``Host``), without Content-Length.

        Renderers hand every request of a destination the same few headers, so the result is kept per
        distinct (headers, content type).
        """
        key = (tuple(req.headers.items()), req.content_type)
        found = self._header_cache.get(key)
        if found is None:
            found = list(wire_headers(req, self._authorization.get_secret_value(), self._host).items())
            if len(self._header_cache) < 256:
                self._header_cache[key] = found
        return found

    def _url(self, url: str) -> httpx.URL:
        """``url`` parsed by httpx, kept per distinct URL (parsing is a third of building a request).

        Most destinations send every call to one URL or a few; the cache stops growing at 1,024 URLs.
        """
        found = self._url_cache.get(url)
        if found is None:
            found = httpx.URL(url)
            if len(self._url_cache) < 1024:
                self._url_cache[url] = found
        return found

    async def send(self, req: RenderedRequest) -> HttpResult:
        """One attempt. Returns any complete response (whatever its status) or raises TransportError.

        The request goes straight to the httpx transport: no client layer (URL merging, cookie jar,
        auth and redirect hooks), since every header is set here and no redirect is ever followed.
        """
        url = self.target_url(req.url)
        body = req.body or b""
        headers = self._headers(req)
        if body or req.method in _LENGTH_REQUIRED:
            headers = [*headers, ("Content-Length", str(len(body)))]
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self._timeout_s):
                request = httpx.Request(req.method, self._url(url), headers=headers, stream=httpx.ByteStream(body),
                                        extensions={**self._extensions, EXACT_URL: url})
                request.read()
                response = await self._transport.handle_async_request(request)
                try:
                    # a body the transport holds already (ours: a ByteStream) is read without an async generator
                    if isinstance(response.stream, httpx.SyncByteStream):
                        content = response.read()
                    else:
                        content = await response.aread()
                finally:
                    await response.aclose()
        except (httpx.RequestError, aiohttp.ClientError, TimeoutError) as exc:
            raise self._translate(exc) from None
        elapsed = time.perf_counter() - started
        result: dict[str, str] = {}
        for name, value in response.headers.multi_items():  # names lower-case; repeated ones joined
            result[name] = f"{result[name]}, {value}" if name in result else value
        return HttpResult(status=response.status_code, headers=result, body_bytes=content, elapsed_s=elapsed)

    def _translate(self, exc: BaseException) -> TransportError:
        kind, maybe_sent, message = translate_exception(exc, self._timeout_s)
        message = redact(message, self._secret.get_secret_value())
        message = redact(message, self._authorization.get_secret_value())
        return TransportError(kind, maybe_sent, message)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> GorgiasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def _authorization(credential: Credential, secret: SecretStr) -> str:
    if credential.auth is AuthType.BASIC:
        pair = f"{credential.username}:{secret.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")
    return f"Bearer {secret.get_secret_value()}"


def _origin_key(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port


def resolve_secret(credential: Credential) -> SecretStr:
    """The credential's API key or access token, read from its env var or file (LookupError if missing)."""
    return environment.resolve_secret(credential.secret())


ClientFactory = Callable[[Credential, SecretStr, DeliverySettings], Sender]
ClientKey = tuple[str, str, str, str]
RETIRED_CLIENT_LINGER_S = 5.0
"""A client replaced by a renewed secret is closed this long after its calls' timeout: calls already on
the wire with it finish first."""


def client_key(credential: Credential) -> ClientKey:
    """Who authenticates: the account and auth type, the user, where the secret lives and the origin."""
    return (credential.account_key, credential.username or "", credential.secret().describe(), credential.origin)


def _digest(secret: SecretStr) -> bytes:
    return hashlib.sha256(secret.get_secret_value().encode()).digest()


class ClientRegistry:
    """One client (one connection pool) per Gorgias account and identity.

    Clients are keyed by ``credential.account_key`` plus who authenticates (username, where the secret
    lives, origin): destinations sharing a credential share a pool, while two users' keys on one account
    never share an ``Authorization`` header. The first destination's DeliverySettings size the pool.

    :meth:`renew` reads a secret again (a rotated Secret file): when it changed, later calls get a new
    client carrying it, and the old one is closed once calls on the wire with it had their time.
    """

    def __init__(
        self,
        *,
        transport: TransportName = DEFAULT_TRANSPORT,
        factory: ClientFactory | None = None,
        secret_resolver: Callable[[Credential], SecretStr] = resolve_secret,
    ) -> None:
        self._transport: TransportName = transport
        self._factory = factory
        self._resolve = secret_resolver
        self._clients: dict[ClientKey, Sender] = {}
        self._digests: dict[ClientKey, bytes] = {}  # sha256 of the secret each client was built with
        self._settings: dict[ClientKey, DeliverySettings] = {}
        self._by_credential: dict[int, tuple[Credential, Sender]] = {}  # the last lookup of each credential
        self._closing: set[asyncio.Task[None]] = set()

    def get(self, credential: Credential, settings: DeliverySettings) -> Sender:
        """The account's client, created on first use (LookupError when its secret cannot be read)."""
        known = self._by_credential.get(id(credential))
        if known is not None and known[0] is credential:
            return known[1]
        key = client_key(credential)
        client = self._clients.get(key)
        if client is None:
            client = self._build(key, credential, self._resolve(credential), settings)
        self._by_credential[id(credential)] = (credential, client)
        return client

    def current(self, credential: Credential) -> Sender | None:
        """The client calls of ``credential`` get now (None before the first)."""
        return self._clients.get(client_key(credential))

    def renew(self, credential: Credential, settings: DeliverySettings | None = None) -> bool:
        """Read the credential's secret again; True when it changed (later calls carry the new one). Without
        ``settings``, those the current client was built with.

        Raises LookupError when the secret cannot be read now.
        """
        key = client_key(credential)
        settings = settings or self._settings.get(key) or DeliverySettings()
        secret = self._resolve(credential)
        old = self._clients.get(key)
        if old is not None and self._digests.get(key) == _digest(secret):
            return False
        self._build(key, credential, secret, settings)
        if old is not None:
            self._by_credential = {k: v for k, v in self._by_credential.items() if v[1] is not old}
            self._retire(old, settings.timeout_s + RETIRED_CLIENT_LINGER_S)
        return True

    def _build(self, key: ClientKey, credential: Credential, secret: SecretStr, settings: DeliverySettings) -> Sender:
        if self._factory is not None:
            client = self._factory(credential, secret, settings)
        else:
            client = GorgiasClient(credential, secret, settings, transport=self._transport)
        self._clients[key] = client
        self._digests[key] = _digest(secret)
        self._settings[key] = settings
        return client

    def _retire(self, client: Sender, after_s: float) -> None:
        async def close_later() -> None:
            try:
                await asyncio.sleep(after_s)
            finally:
                await client.aclose()

        task = asyncio.get_running_loop().create_task(close_later(), name="close-retired-client")
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def __len__(self) -> int:
        return len(self._clients)

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        self._by_credential = {}
        closing, self._closing = set(self._closing), set()
        for task in closing:
            task.cancel()  # closes its client at once
        await asyncio.gather(*closing, return_exceptions=True)
        for client in clients:
            await client.aclose()
