"""Ticket tags: add 200, set 200, remove 204 - all with empty bodies (recorded); the list is a bare array."""

from __future__ import annotations

import pytest

from tests.unit.sandbox.conftest import Api, incoming_ticket


@pytest.fixture
async def ticket(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "a"}]))


async def names(api: Api) -> list[str]:
    r = await api.call("GET", "/api/tickets/1/tags")
    assert r.status == 200 and isinstance(r.json, list)
    return [t["name"] for t in r.json]


async def test_add_is_additive_and_creates_unknown_names(api: Api, ticket: None) -> None:
    r = await api.call("POST", "/api/tickets/1/tags", {"names": ["b", "a"]})
    assert r.status == 200 and r.raw == b""
    assert await names(api) == ["a", "b"]
    r = await api.call("POST", "/api/tickets/1/tags", {"ids": [1]})
    assert r.status == 200 and await names(api) == ["a", "b"]


async def test_set_replaces_and_empty_clears(api: Api, ticket: None) -> None:
    r = await api.call("PUT", "/api/tickets/1/tags", {"names": ["x", "y"]})
    assert r.status == 200 and r.raw == b""
    assert await names(api) == ["x", "y"]
    assert (await api.call("PUT", "/api/tickets/1/tags", {})).status == 200
    assert await names(api) == []


async def test_remove_listed_and_ignore_absent(api: Api, ticket: None) -> None:
    await api.call("POST", "/api/tickets/1/tags", {"names": ["b", "c"]})
    r = await api.call("DELETE", "/api/tickets/1/tags", {"names": ["a", "zzz"], "ids": [3]})
    assert r.status == 204 and r.raw == b""
    assert await names(api) == ["b"]


async def test_unknown_tag_id_is_400_and_unknown_ticket_404(api: Api, ticket: None) -> None:
    r = await api.call("POST", "/api/tickets/1/tags", {"ids": [1, 99]})
    assert r.status == 400 and r.json["error"]["data"] == {"ids": {"1": ["Tag not found."]}}
    assert await names(api) == ["a"]
    assert (await api.call("POST", "/api/tickets/5/tags", {"names": ["a"]})).status == 404


async def test_name_longer_than_256_is_400(api: Api, ticket: None) -> None:
    r = await api.call("POST", "/api/tickets/1/tags", {"names": ["t" * 257]})
    assert r.status == 400 and r.json["error"]["data"] == {"names": {"0": ["Longer than maximum length 256."]}}
    assert (await api.call("POST", "/api/tickets/1/tags", {"names": ["t" * 256]})).status == 200
