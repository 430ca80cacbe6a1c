"""Tags: create, update, delete (one / bulk), merge, list."""

from __future__ import annotations

from tests.support.sandbox_api import Api, incoming_ticket


async def test_create_201_and_duplicate_409(api: Api) -> None:
    r = await api.call("POST", "/api/tags", {"name": "VIP", "decoration": {"color": "#F58D86"}})
    assert r.status == 201
    assert r.json == {"id": 1, "uri": "/api/tags/1/", "name": "VIP", "description": None,
                      "decoration": {"color": "#F58D86"}, "usage": 0,
                      "created_datetime": r.json["created_datetime"], "deleted_datetime": None}
    assert (await api.call("POST", "/api/tags", {"name": "VIP"})).status == 409
    assert (await api.call("POST", "/api/tags", {"name": "vip"})).status == 201  # case-sensitive


async def test_name_required_and_bounded(api: Api) -> None:
    r = await api.call("POST", "/api/tags", {})
    assert r.status == 400 and r.json["error"]["data"] == {"name": ["Missing data for required field."]}
    r = await api.call("POST", "/api/tags", {"name": "x" * 257, "description": "d" * 1025})
    assert r.json["error"]["data"] == {"name": ["Longer than maximum length 256."],
                                       "description": ["Longer than maximum length 1024."]}
    assert (await api.call("POST", "/api/tags", {"name": ""})).status == 400


async def test_update_202(api: Api) -> None:
    await api.call("POST", "/api/tags", {"name": "a"})
    await api.call("POST", "/api/tags", {"name": "b"})
    r = await api.call("PUT", "/api/tags/1", {"name": "renamed", "description": "x"})
    assert r.status == 202 and (r.json["name"], r.json["description"]) == ("renamed", "x")
    assert (await api.call("PUT", "/api/tags/1", {"name": "b"})).status == 409
    assert (await api.call("PUT", "/api/tags/9", {"name": "z"})).status == 404
    assert (await api.call("POST", "/api/tags", {"name": "a"})).status == 201  # old name is free


async def test_delete_takes_tag_off_tickets(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "a"}, {"name": "b"}]))
    r = await api.call("DELETE", "/api/tags/1")
    assert r.status == 204 and r.raw == b""
    assert [t["name"] for t in (await api.call("GET", "/api/tickets/1")).json["tags"]] == ["b"]
    assert (await api.call("DELETE", "/api/tags/1")).status == 404


async def test_bulk_delete(api: Api) -> None:
    for name in "abc":
        await api.call("POST", "/api/tags", {"name": name})
    assert (await api.call("DELETE", "/api/tags", {"ids": [1, 3]})).status == 204
    assert [t["name"] for t in (await api.call("GET", "/api/tags")).json["data"]] == ["b"]


async def test_merge(api: Api) -> None:
    await api.call("POST", "/api/tickets", incoming_ticket(tags=[{"name": "src"}, {"name": "other"}]))
    await api.call("POST", "/api/tags", {"name": "dest"})
    r = await api.call("PUT", "/api/tags/3/merge", {"source_tags_ids": [1]})
    assert r.status == 202 and r.json["name"] == "dest" and r.json["usage"] == 1
    assert [t["name"] for t in (await api.call("GET", "/api/tickets/1")).json["tags"]] == ["dest", "other"]
    assert [t["name"] for t in (await api.state())["tags"]] == ["other", "dest"]
    r = await api.call("PUT", "/api/tags/3/merge", {"source_tags_ids": [42, 3]})
    assert r.status == 400
    assert r.json["error"]["data"] == {"source_tags_ids": {"0": ["Tag not found."],
                                                           "1": ["Cannot merge a tag into itself."]}}


async def test_list_has_no_name_filter_but_search(api: Api) -> None:
    for name in ("VIP", "vip-gold", "refund", "Gold"):
        await api.call("POST", "/api/tags", {"name": name})
    r = await api.call("GET", "/api/tags?name=VIP")
    assert r.status == 400 and r.json["error"]["data"] == {"name": ["Unknown field."]}
    r = await api.call("GET", "/api/tags?search=vip")
    assert [t["name"] for t in r.json["data"]] == ["VIP", "vip-gold"]
    r = await api.call("GET", "/api/tags?search=GOLD&order_by=name:desc")
    assert [t["name"] for t in r.json["data"]] == ["vip-gold", "Gold"]
    assert (await api.call("GET", "/api/tags?search=zz")).json["data"] == []
    assert (await api.call("GET", "/api/tags/1")).json["name"] == "VIP"


async def test_list_pages_by_cursor(api: Api) -> None:
    for i in range(5):
        await api.call("POST", "/api/tags", {"name": f"t{i}"})
    names: list[str] = []
    r = await api.call("GET", "/api/tags?search=t&limit=2")
    while True:
        names += [t["name"] for t in r.json["data"]]
        cursor = r.json["meta"]["next_cursor"]
        if cursor is None:
            break
        r = await api.call("GET", f"/api/tags?search=t&limit=2&cursor={cursor}")
    assert names == ["t0", "t1", "t2", "t3", "t4"]
    assert (await api.call("GET", "/api/tags?limit=101")).status == 400
    assert (await api.call("GET", "/api/tags?cursor=bogus")).status == 400
