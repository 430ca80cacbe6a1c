"""Ticket tags: add 200, set 200, remove 204 - all with empty bodies (recorded); the list is a bare array."""

from __future__ import annotations

import pytest

from tests.support.sandbox_api import Api, incoming_ticket


@pytest.fixture
async def ticket(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "a"}]))


async def names(api: Api) -> list[str]:
    r = await api.call("GET", "/api/tickets/1/tags")
    assert r.status == 200 and isinstance(r.json, list)
    return [t["name"] for t in r.json]


async def tags(api: Api, *wanted: str) -> None:
    for name in wanted:
        assert (await api.call("POST", "/api/tags", {"name": name})).status == 201


async def test_add_is_additive(api: Api, ticket: None) -> None:
    await tags(api, "b")
    r = await api.call("POST", "/api/tickets/1/tags", {"names": ["b", "a"]})
    assert r.status == 200 and r.raw == b""
    assert await names(api) == ["a", "b"]
    r = await api.call("POST", "/api/tickets/1/tags", {"ids": [1]})
    assert r.status == 200 and await names(api) == ["a", "b"]


async def test_set_replaces_and_empty_clears(api: Api, ticket: None) -> None:
    await tags(api, "x", "y")
    r = await api.call("PUT", "/api/tickets/1/tags", {"names": ["x", "y"]})
    assert r.status == 200 and r.raw == b""
    assert await names(api) == ["x", "y"]
    assert (await api.call("PUT", "/api/tickets/1/tags", {})).status == 200
    assert await names(api) == []


async def test_remove_listed_and_ignore_absent(api: Api, ticket: None) -> None:
    await tags(api, "b", "c")
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
    await tags(api, "t" * 256)
    assert (await api.call("POST", "/api/tickets/1/tags", {"names": ["t" * 256]})).status == 200


@pytest.mark.parametrize("method", ["POST", "PUT"])
async def test_a_name_no_tag_has_is_refused_and_nothing_changes(api: Api, ticket: None, method: str) -> None:
    await tags(api, "b")
    r = await api.call(method, "/api/tickets/1/tags", {"names": ["b", "gone"]})
    assert r.status == 400 and r.json["error"]["data"] == {"names": {"1": ["Tag not found."]}}
    assert await names(api) == ["a"] and "gone" not in [t["name"] for t in (await api.state())["tags"]]


async def test_a_tag_merged_away_or_deleted_no_longer_names_anything(api: Api, ticket: None) -> None:
    await tags(api, "b", "c")
    assert (await api.call("PUT", "/api/tags/1/merge", {"source_tags_ids": [2]})).status == 202  # b into a
    assert (await api.call("DELETE", "/api/tags/3")).status == 204  # c
    for name in ("b", "c"):
        assert (await api.call("POST", "/api/tickets/1/tags", {"names": [name]})).status == 400
