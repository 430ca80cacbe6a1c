"""Request rendering: URLs (and their safety), bodies, batches, methods and headers."""

from __future__ import annotations

import copy
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import orjson
import pytest
import yarl
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.support.rendering import CREDENTIAL, TICKET_URL, destination, record
from worker.core.requests.render_error import RenderError
from worker.core.requests.rendering import DefaultBodyBuilder, Prepared, RequestRenderer
from worker.core.requests.request import RenderedRequest

SANDBOX = "http://127.0.0.1:8080"


def renderer(url: str | None = TICKET_URL, method: str | None = "PUT", **kwargs: Any) -> RequestRenderer:
    return RequestRenderer(destination(url, method, **kwargs))


def one(r: RequestRenderer, data: dict[str, Any]) -> RenderedRequest:
    return r.render_one(r.prepare(record(data)))


def reason(r: RequestRenderer, data: dict[str, Any]) -> str:
    with pytest.raises(RenderError) as info:
        one(r, data)
    return info.value.reason


def by_ticket(**extra: Any) -> dict[str, Any]:
    return {"enabled": True, "algorithm": "by_attribute", "attributes": ["ticket_id"], **extra}


# --------------------------------------------------------------------------------------------------
# URL placeholders


def test_placeholder_from_the_record() -> None:
    req = one(renderer(), {"ticket_id": 123, "status": "closed"})
    assert req.url == "https://acme.gorgias.com/api/tickets/123"
    assert req.method == "PUT"


def test_dotted_and_indexed_placeholders_and_query() -> None:
    r = renderer("https://{domain}.gorgias.com/api/tickets/{ticket.id}/messages/{messages.0.id}?src={src}")
    req = one(r, {"ticket": {"id": 5}, "messages": [{"id": "m 1"}], "src": "a&b=c"})
    assert req.url == "https://acme.gorgias.com/api/tickets/5/messages/m%201?src=a%26b%3Dc"


@pytest.mark.parametrize(
    ("value", "rendered"),
    [
        (12, "12"),
        (-3, "-3"),
        (12.0, "12.0"),
        (1.5, "1.5"),
        (True, "true"),
        (False, "false"),
        ("abc", "abc"),
        ("a/b", "a%2Fb"),
        ("a b", "a%20b"),
        ("a?b#c", "a%3Fb%23c"),
        ("user@evil.com:1", "user%40evil.com%3A1"),
        ("%2F", "%252F"),
        ("line\r\nX-Injected: 1", "line%0D%0AX-Injected%3A%201"),
        ("é", "%C3%A9"),
        ("a.b-c_d~e", "a.b-c_d~e"),
        ("...", "..."),
        ("a\\b", "a%5Cb"),
    ],
)
def test_placeholder_values_are_rendered_as_json_and_percent_encoded(value: Any, rendered: str) -> None:
    req = one(renderer(), {"ticket_id": value})
    assert req.url == f"https://acme.gorgias.com/api/tickets/{rendered}"


def test_missing_placeholder_attribute_is_a_render_error_at_prepare() -> None:
    r = renderer()
    with pytest.raises(RenderError) as info:
        r.prepare(record({"id": 1}))
    assert info.value.reason == "URL placeholder {ticket_id}: the record has no attribute ticket_id"
    assert str(info.value) == info.value.reason


def test_missing_nested_placeholder_names_the_path() -> None:
    r = renderer("https://{domain}.gorgias.com/api/customers/{customer.id}")
    assert reason(r, {"customer": {"email": "x"}}) == (
        "URL placeholder {customer.id}: the record has no attribute customer.id"
    )


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "the value of ticket_id is null"),
        ({"id": 1}, "the value of ticket_id is an object"),
        ([1, 2], "the value of ticket_id is an array"),
        ("", "the value of ticket_id is an empty string"),
        (".", "would make the path segment '.'"),
        ("..", "would make the path segment '..'"),
        ("\ud800", "is not valid Unicode text"),
        (float("nan"), "the value of ticket_id is a non-finite number"),
    ],
)
def test_unusable_placeholder_values_are_render_errors(value: Any, says: str) -> None:
    text = reason(renderer(exclude_attributes=["ticket_id"]), {"ticket_id": value})
    assert text.startswith("URL placeholder {ticket_id}: ")
    assert says in text


def test_dot_values_are_encoded_where_they_cannot_act_as_dot_segments() -> None:
    r = renderer("https://{domain}.gorgias.com/api/tickets/{ticket_id}/files/{name}.json?q={q}")
    req = one(r, {"ticket_id": 1, "name": "..", "q": ".."})
    assert req.url == "https://acme.gorgias.com/api/tickets/1/files/%2E%2E.json?q=%2E%2E"
    req = one(r, {"ticket_id": 1, "name": ".", "q": "."})
    assert req.url == "https://acme.gorgias.com/api/tickets/1/files/%2E.json?q=%2E"


def test_adjacent_placeholders_cannot_build_a_dot_segment_together() -> None:
    r = renderer("https://{domain}.gorgias.com/api/tickets/{a}{b}/messages")
    assert "would make the path segment '..'" in reason(r, {"a": ".", "b": "."})
    assert one(r, {"a": ".", "b": "x"}).url == "https://acme.gorgias.com/api/tickets/%2Ex/messages"


def test_domain_placeholder_in_the_path_comes_from_the_credential() -> None:
    r = renderer("https://{domain}.gorgias.com/api/{domain}/x", "POST")
    assert one(r, {"domain": "evil"}).url == "https://acme.gorgias.com/api/acme/x"


def test_static_url_needs_no_attributes() -> None:
    r = renderer("https://{domain}.gorgias.com/api/tickets", "POST")
    prepared = r.prepare(record({}))
    assert prepared.url == "https://acme.gorgias.com/api/tickets"
    assert r.render_one(prepared).url == "https://acme.gorgias.com/api/tickets"


def test_origin_without_path_renders_root() -> None:
    r = renderer("https://{domain}.gorgias.com", "POST")
    assert one(r, {}).url == "https://acme.gorgias.com/"


def test_render_one_without_a_prepared_url_renders_from_the_record() -> None:
    r = renderer()
    body = {"status": "open"}
    prepared = Prepared(record({"ticket_id": 9, **body}), body, orjson.dumps(body), ())
    assert r.render_one(prepared).url == "https://acme.gorgias.com/api/tickets/9"


# --------------------------------------------------------------------------------------------------
# Origin: https://{domain}.gorgias.com or the credential's base_url, nothing else


def test_base_url_replaces_the_origin_and_keeps_path_and_query() -> None:
    cred = {**CREDENTIAL, "base_url": SANDBOX}
    r = renderer("https://{domain}.gorgias.com/api/tickets/{ticket_id}?x=1", credential=cred)
    assert one(r, {"ticket_id": 4}).url == "http://127.0.0.1:8080/api/tickets/4?x=1"


def test_pattern_written_with_the_base_url_renders_the_base_url() -> None:
    cred = {**CREDENTIAL, "base_url": SANDBOX + "/"}
    r = renderer(SANDBOX + "/api/tickets/{ticket_id}", credential=cred)
    assert one(r, {"ticket_id": 4}).url == "http://127.0.0.1:8080/api/tickets/4"


def test_override_url_must_keep_an_allowed_origin() -> None:
    d = destination()
    with pytest.raises(ValueError, match="must start with https://"):
        RequestRenderer(d, url_pattern="https://evil.example.com/api/tickets")
    with pytest.raises(ValueError, match="must start with https://"):
        RequestRenderer(d, url_pattern="https://acme.gorgias.com.evil.example/api/tickets")
    with pytest.raises(ValueError, match="not allowed in the host"):
        RequestRenderer(d, url_pattern="https://{ticket_id}.gorgias.com/api/tickets")
    with pytest.raises(ValueError, match="fragment"):
        RequestRenderer(d, url_pattern="https://{domain}.gorgias.com/api/tickets#x")


# --------------------------------------------------------------------------------------------------
# Construction


def test_template_endpoint_needs_method_and_url_overrides() -> None:
    d = destination(None, None, template="create-ticket")
    with pytest.raises(ValueError, match="template 'create-ticket' must be resolved"):
        RequestRenderer(d)
    with pytest.raises(ValueError, match="no URL"):
        RequestRenderer(d, method="POST")
    r = RequestRenderer(d, method="post", url_pattern="https://{domain}.gorgias.com/api/tickets")
    req = one(r, {"subject": "x"})
    assert (req.method, req.url) == ("POST", "https://acme.gorgias.com/api/tickets")


def test_overrides_replace_the_configured_endpoint() -> None:
    r = RequestRenderer(destination(), method="DELETE", url_pattern="https://{domain}.gorgias.com/api/x/{id}")
    req = one(r, {"id": 3, "a": 1})
    assert (req.method, req.url) == ("DELETE", "https://acme.gorgias.com/api/x/3")


def test_unknown_method_is_refused() -> None:
    with pytest.raises(ValueError, match="method must be one of POST, PUT, PATCH, DELETE"):
        RequestRenderer(destination(), method="GET")


def test_batched_override_placeholders_must_be_grouping_attributes() -> None:
    d = destination(batching=by_ticket())
    with pytest.raises(ValueError, match=r"URL placeholder \{customer_id\} must be one of the grouping"):
        RequestRenderer(d, url_pattern="https://{domain}.gorgias.com/api/customers/{customer_id}")


def test_form_cannot_carry_a_default_batch() -> None:
    # refused by the config already, so no renderer can be built for it
    with pytest.raises(ValueError, match="content_format form cannot carry a batch"):
        RequestRenderer(destination(batching=by_ticket(), content_format="form"))


def test_malformed_placeholder_in_override_is_refused() -> None:
    with pytest.raises(ValueError, match="not an attribute path"):
        RequestRenderer(destination(), url_pattern="https://{domain}.gorgias.com/api/{a..b}")


# --------------------------------------------------------------------------------------------------
# Methods and bodies


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_each_method_sends_the_transformed_record_as_json(method: str) -> None:
    r = renderer(method=method, exclude_attributes=["ticket_id", "meta.trace_id"])
    data = {"ticket_id": 1, "status": "closed", "meta": {"trace_id": "t", "keep": 1}}
    snapshot = copy.deepcopy(data)
    req = one(r, data)
    assert req.method == method
    assert req.body == orjson.dumps({"status": "closed", "meta": {"keep": 1}})
    assert req.content_type == "application/json"
    assert req.headers["Content-Type"] == "application/json"
    assert data == snapshot  # the record itself is untouched


def test_prepare_keeps_body_and_bytes_in_step() -> None:
    r = renderer(exclude_attributes=["ticket_id"])
    prepared = r.prepare(record({"ticket_id": 1, "tags": ["a"]}))
    assert prepared.body == {"tags": ["a"]}
    assert prepared.body_bytes == orjson.dumps(prepared.body)
    assert prepared.key == ()
    assert prepared.url == "https://acme.gorgias.com/api/tickets/1"


def test_delete_without_body_after_exclusions_sends_none() -> None:
    r = renderer(method="DELETE", exclude_attributes=["ticket_id"])
    req = one(r, {"ticket_id": 5})
    assert req.body is None
    assert req.content_type is None
    assert "Content-Type" not in req.headers
    assert req.headers["Accept"] == "application/json"


def test_delete_with_a_body_sends_it() -> None:
    r = renderer("https://{domain}.gorgias.com/api/customers", "DELETE")
    req = one(r, {"ids": [1, 2]})
    assert req.body == b'{"ids":[1,2]}'
    assert req.content_type == "application/json"


def test_non_delete_methods_send_an_empty_object() -> None:
    r = renderer(method="PUT", exclude_attributes=["ticket_id"])
    assert one(r, {"ticket_id": 5}).body == b"{}"


def test_record_that_json_cannot_encode_is_a_render_error() -> None:
    r = renderer()
    with pytest.raises(RenderError, match="cannot be encoded as JSON"):
        r.prepare(record({"ticket_id": 1, "big": 2**70}))


def test_form_body_of_top_level_scalars() -> None:
    r = renderer(content_format="form", exclude_attributes=["ticket_id"])
    req = one(
        r, {"ticket_id": 1, "name": "Ann Lee", "vip": True, "score": 1.5, "n": 3, "note": None, "q": "a&b=é"}
    )
    assert req.body == b"name=Ann+Lee&vip=true&score=1.5&n=3&q=a%26b%3D%C3%A9"
    assert req.content_type == "application/x-www-form-urlencoded"
    assert req.headers["Content-Type"] == "application/x-www-form-urlencoded"


@pytest.mark.parametrize(("value", "kind"), [({"a": 1}, "an object"), ([1], "an array")])
def test_form_cannot_carry_nested_values(value: Any, kind: str) -> None:
    r = renderer(content_format="form")
    assert reason(r, {"ticket_id": 1, "customer": value}) == (
        f"attribute customer is {kind}: form format cannot carry nested values "
        "(exclude it, or use content_format json)"
    )


def test_form_nested_value_can_be_excluded() -> None:
    r = renderer(content_format="form", exclude_attributes=["customer", "ticket_id"])
    assert one(r, {"ticket_id": 1, "customer": {"a": 1}, "x": "y"}).body == b"x=y"


def test_form_delete_without_fields_sends_no_body() -> None:
    r = renderer(method="DELETE", content_format="form", exclude_attributes=["ticket_id"])
    assert one(r, {"ticket_id": 1}).body is None


# --------------------------------------------------------------------------------------------------
# Custom body builders (templates)


class Wrapping:
    def single(self, body: Any) -> Any:
        return {"ticket": body}

    def batch(self, bodies: Sequence[Any]) -> Any:
        return {"ids": [b["id"] for b in bodies]}


def test_custom_builder_shapes_single_bodies() -> None:
    r = RequestRenderer(destination(exclude_attributes=["ticket_id"]), body_builder=Wrapping())
    assert one(r, {"ticket_id": 1, "status": "open"}).body == b'{"ticket":{"status":"open"}}'


def test_custom_builder_shapes_batches_and_may_form_encode_them() -> None:
    d = destination("https://{domain}.gorgias.com/api/customers", "DELETE", batching={"enabled": True})
    r = RequestRenderer(d, body_builder=Wrapping())
    items = [r.prepare(record({"id": i}, i)) for i in (1, 2)]
    assert r.render_batch((), items).body == b'{"ids":[1,2]}'


def test_custom_builder_result_that_json_cannot_encode_is_a_render_error() -> None:
    class Bad:
        def single(self, body: Any) -> Any:
            return {"x": object()}

        def batch(self, bodies: Sequence[Any]) -> Any:
            return [object()]

    r = RequestRenderer(destination(), body_builder=Bad())
    assert "request body cannot be encoded as JSON" in reason(r, {"ticket_id": 1})


def test_form_needs_a_mapping_from_the_builder() -> None:
    class Listing:
        def single(self, body: Any) -> Any:
            return [body]

        def batch(self, bodies: Sequence[Any]) -> Any:
            return list(bodies)

    r = RequestRenderer(destination(content_format="form"), body_builder=Listing())
    assert reason(r, {"ticket_id": 1}) == "form format needs an object of fields, not an array"


def test_default_builder_shapes() -> None:
    assert DefaultBodyBuilder().batch([{"a": 1}]) == [{"a": 1}]
    assert DefaultBodyBuilder("items").batch(({"a": 1},)) == {"items": [{"a": 1}]}
    body = {"a": 1}
    assert DefaultBodyBuilder().single(body) is body


# --------------------------------------------------------------------------------------------------
# Batches


def batch_renderer(
    url: str = "https://{domain}.gorgias.com/api/tickets/{ticket_id}/messages", **kw: Any
) -> Any:
    return renderer(url, "POST", batching=by_ticket(**kw.pop("batching", {})), **kw)


def test_grouping_key_from_the_record_and_url_from_the_key() -> None:
    r = batch_renderer(exclude_attributes=["ticket_id"])
    items = [r.prepare(record({"ticket_id": 7, "body_text": t}, i)) for i, t in enumerate("ab")]
    assert [p.key for p in items] == [(7,), (7,)]
    assert all(p.url is None for p in items)
    req = r.render_batch((7,), items)
    assert req.url == "https://acme.gorgias.com/api/tickets/7/messages"
    assert req.body == orjson.dumps([{"body_text": "a"}, {"body_text": "b"}])
    assert req.content_type == "application/json"


def test_batch_url_comes_from_the_key_not_the_records() -> None:
    r = batch_renderer()
    items = [r.prepare(record({"ticket_id": 7}))]
    assert r.render_batch(("x/y",), items).url == "https://acme.gorgias.com/api/tickets/x%2Fy/messages"


def test_batch_with_wrap_key() -> None:
    r = batch_renderer(batching={"wrap_key": "messages"})
    items = [r.prepare(record({"ticket_id": 1, "n": i}, i)) for i in range(3)]
    req = r.render_batch((1,), items)
    assert req.body == orjson.dumps({"messages": [p.body for p in items]})
    assert orjson.loads(req.body or b"") == {"messages": [{"ticket_id": 1, "n": i} for i in range(3)]}


def test_batched_key_with_several_dotted_attributes() -> None:
    d = destination(
        "https://{domain}.gorgias.com/api/customers/{customer.id}/x/{kind}",
        "PUT",
        batching={"enabled": True, "algorithm": "session_window", "attributes": ["kind", "customer.id"]},
    )
    r = RequestRenderer(d)
    p = r.prepare(record({"customer": {"id": 3}, "kind": "vip"}))
    assert p.key == ("vip", 3)
    assert r.render_batch(p.key, [p]).url == "https://acme.gorgias.com/api/customers/3/x/vip"


@pytest.mark.parametrize(
    ("batching", "key"),
    [
        ({"enabled": True}, ()),  # arrival_order
        ({"enabled": True, "algorithm": "tumbling_window"}, ()),
        ({"enabled": True, "algorithm": "tumbling_window", "attributes": ["channel"]}, ("email",)),
        ({"enabled": False, "attributes": ["channel"], "algorithm": "by_attribute"}, ()),  # not batching
    ],
)
def test_key_only_for_keyed_batching(batching: dict[str, Any], key: tuple[Any, ...]) -> None:
    r = renderer("https://{domain}.gorgias.com/api/tickets", "POST", batching=batching)
    assert r.prepare(record({"channel": "email"})).key == key


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"x": 1}, "grouping attribute ticket_id: the record has no attribute ticket_id"),
        ({"ticket_id": None}, "grouping attribute ticket_id: the value is null; records can only be grouped"),
        ({"ticket_id": {"id": 1}}, "grouping attribute ticket_id: the value is an object"),
        ({"ticket_id": [1]}, "grouping attribute ticket_id: the value is an array"),
        ({"ticket_id": float("inf")}, "grouping attribute ticket_id: the value is a non-finite number"),
        ({"ticket_id": ""}, "URL placeholder {ticket_id}: the value of ticket_id is an empty string"),
        ({"ticket_id": ".."}, "URL placeholder {ticket_id}: the value '..' of ticket_id would make"),
    ],
)
def test_bad_grouping_values_are_render_errors_at_prepare(data: dict[str, Any], says: str) -> None:
    with pytest.raises(RenderError) as info:
        batch_renderer().prepare(record(data))
    assert info.value.reason.startswith(says)


@pytest.mark.parametrize("value", ["t-1", 5, 2.5, True])
def test_scalar_grouping_values_are_accepted(value: Any) -> None:
    r = batch_renderer()
    p = r.prepare(record({"ticket_id": value}))
    assert p.key == (value,)
    hash(p.key)


def test_fast_path_bytes_equal_orjson_of_the_list() -> None:
    r = batch_renderer()
    bodies: list[dict[str, Any]] = [
        {"ticket_id": 1, "text": 'é\n"x"', "n": 1.5, "tags": [None, True]},
        {"ticket_id": 1},
    ]
    items = [r.prepare(record(b, i)) for i, b in enumerate(bodies)]
    assert r.render_batch((1,), items).body == orjson.dumps(bodies)


def test_batch_of_one() -> None:
    r = batch_renderer()
    items = [r.prepare(record({"ticket_id": 1}))]
    assert r.render_batch((1,), items).body == b'[{"ticket_id":1}]'


def test_batched_delete_with_only_empty_bodies_sends_none() -> None:
    d = destination(
        "https://{domain}.gorgias.com/api/tickets/{ticket_id}",
        "DELETE",
        batching=by_ticket(),
        exclude_attributes=["ticket_id"],
    )
    r = RequestRenderer(d)
    items = [r.prepare(record({"ticket_id": 1}, i)) for i in range(2)]
    req = r.render_batch((1,), items)
    assert (req.body, req.content_type) == (None, None)
    items.append(r.prepare(record({"ticket_id": 1, "x": 1}, 3)))
    assert r.render_batch((1,), items).body == b'[{},{},{"x":1}]'


def test_render_batch_checks_its_arguments() -> None:
    r = batch_renderer()
    with pytest.raises(ValueError, match="at least one item"):
        r.render_batch((1,), [])
    p = r.prepare(record({"ticket_id": 1}))
    with pytest.raises(ValueError, match="does not match the grouping attributes"):
        r.render_batch((), [p])


def test_render_batch_refuses_a_bad_key_value() -> None:
    r = batch_renderer()
    p = r.prepare(record({"ticket_id": 1}))
    with pytest.raises(RenderError, match="is null"):
        r.render_batch((None,), [p])


# --------------------------------------------------------------------------------------------------
# Headers


def test_configured_headers_are_merged_with_accept_and_content_type() -> None:
    r = renderer(headers="X-Trace:abc, X-Team : support")
    req = one(r, {"ticket_id": 1})
    assert req.headers == {
        "X-Trace": "abc",
        "X-Team": "support",
        "Accept": "application/json",
        "Content-Type": "application/json",
    }
    assert not {"authorization", "host"} & {k.lower() for k in req.headers}


def test_configured_accept_is_kept() -> None:
    req = one(renderer(headers={"accept": "application/hal+json"}), {"ticket_id": 1})
    assert req.headers["accept"] == "application/hal+json"
    assert "Accept" not in req.headers


def test_each_request_gets_its_own_headers_dict() -> None:
    r = renderer()
    first = one(r, {"ticket_id": 1})
    first.headers["X-Mutated"] = "1"
    assert "X-Mutated" not in one(r, {"ticket_id": 2}).headers


# --------------------------------------------------------------------------------------------------
# Property: no placeholder value can change the origin or the URL's shape

NASTY = [*"../ .. . / ? # @ \r\n %2F % : \\ é 😀 a 0 & = + %20".split(" "), " "]
TEXT_VALUES = st.one_of(
    st.text(),
    st.lists(st.sampled_from(NASTY), max_size=6).map("".join),
    st.text(alphabet=st.sampled_from("./?#@%:\\\r\n \t\x00é")),
)
VALUES = st.one_of(
    TEXT_VALUES,
    st.integers(-(2**63), 2**64 - 1),  # what a JSON record can hold
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
)
ENCODED = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+")
PATTERN = "https://{domain}.gorgias.com/api/tickets/{a}/files/{b}.json?q={c}&r=1"


def as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


@pytest.mark.parametrize("base_url", [None, SANDBOX])
@settings(max_examples=400, deadline=None)
@given(a=VALUES, b=VALUES, c=VALUES)
@example(a="../../admin", b="x/../../y", c="1#frag")
@example(a="%2E%2E", b="?", c="a&r=2")
@example(a="evil.com@x", b="\r\nHost: evil", c="é😀")
def test_no_value_changes_origin_path_shape_query_or_fragment(
    base_url: str | None, a: Any, b: Any, c: Any
) -> None:
    cred = {**CREDENTIAL, "base_url": base_url} if base_url else CREDENTIAL
    r = RequestRenderer(destination(PATTERN, "POST", credential=cred))
    expected_origin = urlsplit(base_url or "https://acme.gorgias.com")
    texts = [as_text(v) for v in (a, b, c)]
    data = {"a": a, "b": b, "c": c}
    if "" in texts or texts[0] in (".", ".."):
        with pytest.raises(RenderError):
            one(r, data)
        return
    url = one(r, data).url

    # the standard library's view
    parts = urlsplit(url)
    assert (parts.scheme, parts.hostname, parts.port) == (
        expected_origin.scheme,
        expected_origin.hostname,
        expected_origin.port,
    )
    assert parts.username is None and parts.fragment == "" and "#" not in url
    segments = parts.path.split("/")
    assert len(segments) == len("/api/tickets/x/files/y.json".split("/"))
    assert segments[:3] == ["", "api", "tickets"] and segments[4] == "files"
    # substituted text is only unreserved characters and %XX escapes ...
    raw_values = [segments[3], segments[5][: -len(".json")], parts.query.split("&")[0][2:]]
    assert all(ENCODED.fullmatch(raw) for raw in raw_values), raw_values
    # ... and decodes back to the value
    assert unquote(segments[3], errors="strict") == texts[0]
    assert (
        segments[5].endswith(".json") and unquote(segments[5][: -len(".json")], errors="strict") == texts[1]
    )
    query = parse_qsl(parts.query, keep_blank_values=True)
    assert [k for k, _ in query] == ["q", "r"]
    assert parts.query.count("&") == 1 and parts.query.count("=") == 2
    assert unquote(parts.query.split("&")[0][2:], errors="strict") == texts[2]

    # what the default transport (aiohttp -> yarl) and httpx would send
    sent = yarl.URL(url, encoded=True)  # as the aiohttp transport sends it (worker.gorgias.client)
    assert (sent.scheme, sent.host, sent.port) == (
        expected_origin.scheme,
        expected_origin.hostname,
        expected_origin.port or {"https": 443, "http": 80}[expected_origin.scheme],
    )
    assert sent.raw_path.split("/")[:3] == ["", "api", "tickets"]
    assert len(sent.raw_path.split("/")) == len(segments)
    assert sent.raw_path.split("/")[3] == segments[3]  # nothing decoded on the way: ';' stays %3B
    assert sent.raw_fragment == ""
    assert [k for k, _ in parse_qsl(sent.raw_query_string, keep_blank_values=True)] == ["q", "r"]
    hx = httpx.URL(url)
    assert (hx.scheme, hx.host, hx.fragment) == (expected_origin.scheme, expected_origin.hostname, "")
    assert len(hx.raw_path.split(b"?")[0].split(b"/")) == len(segments)


class NotTheDefault(DefaultBodyBuilder):
    """Same shapes as the default builder, but not its exact type: no byte-concatenation fast path."""


@settings(max_examples=200, deadline=None)
@given(
    bodies=st.lists(
        st.dictionaries(
            st.text(max_size=4),
            st.recursive(
                st.none()
                | st.booleans()
                | st.integers(-(2**63), 2**63 - 1)
                | st.floats(allow_nan=False, allow_infinity=False)
                | st.text(max_size=5),
                lambda inner: (
                    st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3)
                ),
                max_leaves=8,
            ),
            max_size=4,
        ),
        min_size=1,
        max_size=6,
    ),
    wrap=st.none() | st.text(min_size=1, max_size=6),
)
def test_fast_path_batch_bytes_equal_the_builders_json(
    bodies: list[dict[str, Any]], wrap: str | None
) -> None:
    d = destination(
        "https://{domain}.gorgias.com/api/tickets", "POST", batching={"enabled": True, "wrap_key": wrap}
    )
    fast = RequestRenderer(d)
    slow = RequestRenderer(
        d, body_builder=NotTheDefault(wrap)
    )  # takes the orjson.dumps(builder.batch()) path
    items = [fast.prepare(record(b, i)) for i, b in enumerate(bodies)]
    expected = orjson.dumps({wrap: bodies} if wrap is not None else bodies)
    assert fast.render_batch((), items).body == expected
    assert slow.render_batch((), items).body == expected
