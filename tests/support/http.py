"""HTTP from the tests to the sandbox and the worker, without paying for a new TLS context every call.

``httpx.get`` and a bare ``httpx.Client()`` load the CA bundle into a new SSL context each time: about
30 ms of CPU, spent on every poll of a wait loop although the tests only speak plain HTTP on loopback.
These clients share one context and ignore proxy variables.
"""

from __future__ import annotations

import ssl
from typing import Any

import httpx

TLS = ssl.create_default_context()


def client(**options: Any) -> httpx.Client:
    return httpx.Client(verify=TLS, trust_env=False, **options)


def async_client(**options: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(verify=TLS, trust_env=False, **options)


# One connection per request (no keep-alive): a server a test killed leaves no stale connection behind.
_SHARED = client(limits=httpx.Limits(max_keepalive_connections=0))


def request(method: str, url: str, **options: Any) -> httpx.Response:
    return _SHARED.request(method, url, **options)


def get(url: str, **options: Any) -> httpx.Response:
    return _SHARED.request("GET", url, **options)
