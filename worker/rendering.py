"""Request rendering: turning prepared records into Gorgias API requests (pure, no I/O).

A :class:`RequestRenderer` is built once per destination. :meth:`~RequestRenderer.prepare` runs once
per record (exclusions, grouping key, and the URL when unbatched); :meth:`~RequestRenderer.render_one`
and :meth:`~RequestRenderer.render_batch` make the request of one record or one batch.

URL safety
    Requests only go to ``https://{domain}.gorgias.com`` or the credential's explicit ``base_url``:
    the origin of a rendered URL is always ``credential.origin``; the configured pattern supplies only
    the path and query. Placeholder values are percent-encoded except RFC 3986 unreserved characters
    (``A-Za-z0-9-._~``), so no value can add a path segment, a query, a fragment or change the host.
    Values the encoding cannot make safe are refused with a :class:`RenderError`:

    * an empty string (``/api/tickets/{id}`` would become the collection ``/api/tickets/``);
    * a path segment that would read as ``.`` or ``..``. Such values are still encoded as ``%2E`` (so a
      query value ``..`` survives), but that does not protect a path: aiohttp, the default transport,
      parses URLs with yarl, which decodes ``%2E`` and then removes dot segments, so
      ``/api/tickets/%2E%2E/messages`` would be sent as ``/api/messages``.

Values render as in JSON: ``12``, ``1.5``, ``true``; null, objects and arrays are refused.

Cost (timeit, 1,000 distinct 1.2 kB records, 2-core VM, CPython 3.11): ``prepare()`` + ``render_one()``
is ~8 µs per record for a static URL and ~9-10 µs for ``/api/tickets/{ticket_id}``, about half of it
``orjson.dumps``; three placeholders ~17 µs. ``render_batch()`` of 100 records is ~12 µs (the array
is the records' ``body_bytes`` joined, nothing is encoded twice).

Form bodies (``content_format: form``)
    Top-level fields only: a string/number/boolean field becomes ``name=value``, a null field is left
    out, and a nested object or array is a :class:`RenderError` (form encoding has no way to carry
    it; sending it JSON-encoded inside a form field would be guesswork about the receiver).
    A batch cannot be form-encoded with the default body builder (it is a JSON array).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol
from urllib.parse import quote, urlencode, urlsplit

import orjson

from worker.config import (
    DOMAIN_PLACEHOLDER,
    PLACEHOLDER,
    ContentFormat,
    Destination,
    HttpMethod,
    check_url_origin,
)
from worker.json_types import a_json_type
from worker.records import Record
from worker.transform import MissingAttribute, Transform, get_parts, split_path

if TYPE_CHECKING:
    from worker.plan import Plan

__all__ = [
    "BodyBuilder",
    "DefaultBodyBuilder",
    "Prepared",
    "RenderError",
    "RenderedRequest",
    "RequestRenderer",
]

JSON_CONTENT_TYPE: Final = "application/json"
FORM_CONTENT_TYPE: Final = "application/x-www-form-urlencoded"
_KEY_TYPES: Final = (str, int, float, bool)


def compact(encoded: bytes) -> bytes:
    """A right-sized copy of orjson output, for bytes that are held while records wait.

    orjson hands back its whole output buffer (about 4 KB for a small record, whatever ``len`` says):
    measured with tracemalloc, 10,000 small encoded records held 41 MB as returned and 0.8 MB copied.
    """
    return bytes(memoryview(encoded))


class RenderError(Exception):
    """A record or batch that cannot make a request; ``reason`` says why, naming the attribute."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class RenderedRequest:
    """One HTTP request for the client, which adds Authorization, User-Agent and (with base_url) Host."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None
    content_type: str | None
    plan: Plan | None = None  # more than one request (worker.plan): executed by worker.gorgias.plans
    notes: tuple[str, ...] = ()  # what a reader of ``preview`` should know, e.g. who it would email


@dataclass(frozen=True, slots=True)
class Prepared:
    """One record, transformed once, ready to be batched."""

    record: Record
    body: Any  # the transformed body (exclusions applied); shares unchanged values with record.data
    body_bytes: bytes  # orjson.dumps(body): byte-size accounting and the default batch array
    key: tuple[Any, ...]  # grouping key values (batching.attributes); () when not keyed
    url: str | None = None  # the final URL when prepare() could render it already (unbatched); else None


class BodyBuilder(Protocol):
    """Extension point: how record bodies become a request body (endpoint templates bring their own)."""

    def single(self, body: Any) -> Any: ...

    def batch(self, bodies: Sequence[Any]) -> Any: ...


class DefaultBodyBuilder:
    """One record: its body as is. A batch: a JSON array of bodies, or ``{wrap_key: [...]}``."""

    __slots__ = ("wrap_key",)

    def __init__(self, wrap_key: str | None = None) -> None:
        self.wrap_key = wrap_key

    def single(self, body: Any) -> Any:
        return body

    def batch(self, bodies: Sequence[Any]) -> Any:
        items = list(bodies)
        return {self.wrap_key: items} if self.wrap_key is not None else items


# --------------------------------------------------------------------------------------------------
# Values


def _scalar_text(value: Any) -> str | None:
    """A string, number or boolean as it reads in JSON (``12``, ``1.5``, ``true``); None for anything else."""
    kind = type(value)
    if kind is str:
        return value  # type: ignore[no-any-return]
    if kind is int:
        return str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return orjson.dumps(value).decode()
    return None


_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ASCII_ESCAPES: Final = {c: f"%{c:02X}" for c in range(128) if chr(c) not in _UNRESERVED}
_ENCODED: Final = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+")


def _encode_component(text: str) -> str:
    """Percent-encode all but RFC 3986 unreserved characters; ``.``/``..`` become ``%2E``/``%2E%2E``.

    Raises ``UnicodeEncodeError`` for text that is not valid Unicode (lone surrogates).
    """
    if text.isascii():
        if text.isalnum():
            return text
        if text == ".":
            return "%2E"
        if text == "..":
            return "%2E%2E"
        encoded = text.translate(_ASCII_ESCAPES)  # same as quote(text, safe=""), 3x faster
    else:
        encoded = quote(text, safe="", errors="strict")  # UTF-8 percent-escapes
    if not _ENCODED.fullmatch(encoded):  # defensive: nothing but unreserved characters and escapes
        raise ValueError(f"percent-encoding produced {encoded!r}")
    return encoded


def _is_empty(payload: Any) -> bool:
    if payload is None:
        return True
    return isinstance(payload, Mapping | list | tuple | str | bytes) and len(payload) == 0


# --------------------------------------------------------------------------------------------------
# URL pattern


@dataclass(frozen=True, slots=True)
class _Slot:
    """One ``{attribute}`` of a URL pattern."""

    name: str  # as written: a dotted path
    parts: tuple[str, ...]  # the path split once
    in_path: bool  # before the query
    segment: int  # index of its path segment (values never add "/"); -1 in the query
    key_index: int  # position in batching.attributes; -1 when not a grouping attribute


def _split_origin(pattern: str) -> tuple[str, str]:
    """``https://{domain}.gorgias.com/api/x?y`` -> (``https://{domain}.gorgias.com``, ``/api/x?y``)."""
    scheme_end = pattern.index("://") + 3
    ends = [i for i in (pattern.find(c, scheme_end) for c in "/?#") if i != -1]
    cut = min(ends) if ends else len(pattern)
    rest = pattern[cut:]
    if not rest.startswith("/"):
        rest = "/" + rest
    return pattern[:cut], rest


# --------------------------------------------------------------------------------------------------
# Renderer


class RequestRenderer:
    """Renders the requests of one destination.

    ``method`` and ``url_pattern`` override ``destination.endpoint`` (endpoint templates pass their
    own); a templated endpoint without them is a ``ValueError`` (templates are resolved elsewhere).
    Every other configuration problem is also a ``ValueError`` here; per-record problems are
    :class:`RenderError`.
    """

    def __init__(
        self,
        destination: Destination,
        body_builder: BodyBuilder | None = None,
        method: str | None = None,
        url_pattern: str | None = None,
    ) -> None:
        endpoint = destination.endpoint
        batching = destination.batching
        credential = destination.credential
        if endpoint.template is not None and method is None and url_pattern is None:
            raise ValueError(
                f"destination {destination.name}: endpoint template {endpoint.template!r} must be resolved "
                "by the templates module, which passes its method and URL pattern to RequestRenderer"
            )
        chosen_method = method if method is not None else endpoint.method
        pattern = url_pattern if url_pattern is not None else endpoint.url
        if chosen_method is None or pattern is None:
            missing = " and ".join(n for n, v in (("method", chosen_method), ("URL", pattern)) if v is None)
            raise ValueError(f"destination {destination.name}: no {missing} to send requests with")
        try:
            self.method: str = HttpMethod(str(chosen_method).upper()).value
        except ValueError:
            allowed = ", ".join(m.value for m in HttpMethod)
            raise ValueError(f"method must be one of {allowed} (got {chosen_method!r})") from None

        if "#" in pattern:
            raise ValueError(f"URL pattern must not contain a #fragment (got {pattern!r})")
        check_url_origin(pattern, credential)  # ValueError naming the allowed origins

        self.destination = destination
        self.body_builder: BodyBuilder = body_builder or DefaultBodyBuilder(batching.wrap_key)
        self._default_builder = type(self.body_builder) is DefaultBodyBuilder
        self._transform = Transform(endpoint.exclude_attributes)
        self._form = endpoint.content_format is ContentFormat.FORM
        self._delete = self.method == HttpMethod.DELETE.value
        self._batched = batching.enabled
        if self._form and self._batched and self._default_builder:
            raise ValueError(
                f"destination {destination.name}: content_format form cannot carry a batch (a JSON array); "
                "use content_format json or turn batching off"
            )

        self._keyed = batching.keyed
        self.key_attributes: tuple[str, ...] = tuple(batching.attributes) if self._keyed else ()
        self._key_parts = tuple(split_path(a) for a in self.key_attributes)

        # The URL: origin from the credential, path and query from the pattern, split into literals and slots.
        self.origin = credential.origin
        origin_parts = urlsplit(self.origin)
        self._origin_check = (origin_parts.scheme, origin_parts.netloc)
        self._origin_slash = self.origin + "/"
        _, path_and_query = _split_origin(pattern)
        literals: list[str] = []
        slots: list[_Slot] = []
        position = 0
        current = self.origin  # literal text since the previous slot
        before = ""  # the whole path and query before the current slot, slots included
        for match in PLACEHOLDER.finditer(path_and_query):
            literal = path_and_query[position : match.start()]
            current += literal
            before += literal
            position = match.end()
            name = match.group(1)
            if name == DOMAIN_PLACEHOLDER:
                current += credential.domain
                before += credential.domain
                continue
            try:
                parts = split_path(name)
            except ValueError:
                raise ValueError(f"URL placeholder {{{name}}} is not an attribute path") from None
            in_path = "?" not in before
            if self._batched:
                if name not in self.key_attributes:
                    raise ValueError(
                        f"destination {destination.name}: URL placeholder {{{name}}} must be one of the "
                        f"grouping attributes when batching ({', '.join(self.key_attributes) or 'none'})"
                    )
                key_index = self.key_attributes.index(name)
            else:
                key_index = -1
            segment = before.count("/") if in_path else -1  # index in urlsplit(url).path.split("/")
            literals.append(current)
            slots.append(_Slot(name, parts, in_path, segment, key_index))
            current = ""
            before += "x"  # a value: never a "/" or "?"
        literals.append(current + path_and_query[position:])
        self._literals = tuple(literals)
        self._slots = tuple(slots)
        self.url_pattern = pattern
        template_url = "".join(literals)
        self._slash_count = template_url.count("/")
        self._query_count = template_url.count("?")
        self._static_url: str | None = None if slots else self._check_static(template_url)

        extras = {k: v for k, v in endpoint.headers.items() if k.lower() != "content-type"}
        if not any(k.lower() == "accept" for k in extras):
            extras["Accept"] = JSON_CONTENT_TYPE
        self._content_type = FORM_CONTENT_TYPE if self._form else JSON_CONTENT_TYPE
        self._headers_no_body = extras
        self._headers_body = {**extras, "Content-Type": self._content_type}
        if self._default_builder and batching.wrap_key is not None:
            self._batch_open = b"{" + orjson.dumps(batching.wrap_key) + b":["
            self._batch_close = b"]}"
        else:
            self._batch_open, self._batch_close = b"[", b"]"

    # ---------------------------------------------------------------------------------------------
    # Per record

    def prepare(self, record: Record) -> Prepared:
        """Transform a record once and compute its grouping key (and, unbatched, its URL)."""
        data = record.data
        body = self._transform(data)
        try:
            body_bytes = compact(orjson.dumps(body))
        except orjson.JSONEncodeError as exc:
            raise RenderError(f"the record cannot be encoded as JSON: {exc}") from None
        key = self._key(data) if self._keyed else ()
        url: str | None = None
        if not self._batched:
            url = self._static_url or self._render_url(self._values_from(data))
        elif self._slots:
            self._render_url([key[s.key_index] for s in self._slots])  # refuse a bad value now, not its batch
        return Prepared(record, body, body_bytes, key, url)

    def render_one(self, prepared: Prepared) -> RenderedRequest:
        """The request of one record; URL placeholders come from the record."""
        url = prepared.url or self._static_url or self._render_url(self._values_from(prepared.record.data))
        if self._default_builder:
            payload = prepared.body
            body = self._encode_body(payload, prepared.body_bytes)
        else:
            payload = self.body_builder.single(prepared.body)
            body = self._encode_body(payload, None)
        return self._request(url, body)

    def render_batch(self, key: tuple[Any, ...], items: Sequence[Prepared]) -> RenderedRequest:
        """The request of a batch; URL placeholders come from the group ``key``."""
        if not items:
            raise ValueError("render_batch needs at least one item")
        if len(key) != len(self.key_attributes):
            raise ValueError(
                f"group key {key!r} does not match the grouping attributes {list(self.key_attributes)}"
            )
        url = self._static_url or self._render_url([key[s.key_index] for s in self._slots])
        body: bytes | None
        if self._default_builder:
            if self._delete and all(_is_empty(item.body) for item in items):
                body = None
            else:
                body = self._batch_open + b",".join([item.body_bytes for item in items]) + self._batch_close
        else:
            payload = self.body_builder.batch([item.body for item in items])
            body = self._encode_body(payload, None)
        return self._request(url, body)

    # ---------------------------------------------------------------------------------------------
    # Helpers

    def _request(self, url: str, body: bytes | None) -> RenderedRequest:
        if body is None:
            return RenderedRequest(self.method, url, dict(self._headers_no_body), None, None)
        return RenderedRequest(self.method, url, dict(self._headers_body), body, self._content_type)

    def _encode_body(self, payload: Any, encoded: bytes | None) -> bytes | None:
        if self._delete and _is_empty(payload):
            return None
        if self._form:
            return _form_encode(payload)
        if encoded is not None:
            return encoded
        try:
            return compact(orjson.dumps(payload))
        except orjson.JSONEncodeError as exc:
            raise RenderError(f"the request body cannot be encoded as JSON: {exc}") from None

    def _key(self, data: dict[str, Any]) -> tuple[Any, ...]:
        values = []
        for name, parts in zip(self.key_attributes, self._key_parts, strict=True):
            try:
                value = get_parts(data, parts, name)
            except MissingAttribute:
                raise RenderError(f"grouping attribute {name}: the record has no attribute {name}") from None
            if not isinstance(value, _KEY_TYPES) or (isinstance(value, float) and not math.isfinite(value)):
                raise RenderError(
                    f"grouping attribute {name}: the value is {a_json_type(value)}; "
                    "records can only be grouped by a string, number or boolean"
                )
            values.append(value)
        return tuple(values)

    def _values_from(self, data: dict[str, Any]) -> list[Any]:
        values = []
        for slot in self._slots:
            try:
                values.append(get_parts(data, slot.parts, slot.name))
            except MissingAttribute:
                raise RenderError(
                    f"URL placeholder {{{slot.name}}}: the record has no attribute {slot.name}"
                ) from None
        return values

    def _render_url(self, values: Sequence[Any]) -> str:
        literals = self._literals
        pieces = [literals[0]]
        dots = False
        for i, slot in enumerate(self._slots):
            value = values[i]
            text = value if type(value) is str else _scalar_text(value)
            if text is None:
                raise RenderError(
                    f"URL placeholder {{{slot.name}}}: the value of {slot.name} is {a_json_type(value)}; "
                    "a URL can only carry a string, number or boolean"
                )
            if not text:
                raise RenderError(
                    f"URL placeholder {{{slot.name}}}: the value of {slot.name} is an empty string, "
                    "which would change the URL's meaning"
                )
            try:
                pieces.append(_encode_component(text))
            except UnicodeEncodeError:
                raise RenderError(
                    f"URL placeholder {{{slot.name}}}: the value of {slot.name} is not valid Unicode text"
                ) from None
            except ValueError as exc:  # the defensive check in _encode_component: refuse, never send
                raise RenderError(f"URL placeholder {{{slot.name}}}: {exc}; refusing to send it") from None
            pieces.append(literals[i + 1])
            if text[0] == "." and slot.in_path:
                dots = True
        url = "".join(pieces)
        if dots:
            self._refuse_dot_segments(url, values)
        # Defensive (values are encoded, so this cannot fail): the origin and the pattern's shape are intact.
        if (
            not url.startswith(self._origin_slash)
            or url.count("/") != self._slash_count
            or url.count("?") != self._query_count
            or "#" in url
        ):
            raise RenderError(self._shape_error(values))
        return url

    def _refuse_dot_segments(self, url: str, values: Sequence[Any]) -> None:
        segments = urlsplit(url).path.split("/")
        for slot, value in zip(self._slots, values, strict=True):
            if slot.in_path:
                segment = segments[slot.segment].replace("%2E", ".")
                if segment in (".", ".."):
                    raise RenderError(
                        f"URL placeholder {{{slot.name}}}: the value {value!r} of {slot.name} would make the "
                        f"path segment {segment!r}, which HTTP clients resolve as a relative path"
                    )

    def _check_static(self, url: str) -> str:
        parts = urlsplit(url)
        if (
            (parts.scheme, parts.netloc) != self._origin_check
            or parts.fragment
            or not url.startswith(self._origin_slash)
        ):
            raise ValueError(self._shape_error(()))
        return url

    def _shape_error(self, values: Sequence[Any]) -> str:
        return (
            f"the URL rendered from {list(values)!r} does not keep the origin {self.origin} and the "
            f"shape of the pattern {self.url_pattern}; refusing to send it"
        )


def _form_encode(payload: Any) -> bytes:
    if not isinstance(payload, Mapping):
        raise RenderError(f"form format needs an object of fields, not {a_json_type(payload)}")
    pairs: list[tuple[str, str]] = []
    for name, value in payload.items():
        if value is None:
            continue
        text = _scalar_text(value)
        if text is None:
            raise RenderError(
                f"attribute {name} is {a_json_type(value)}: form format cannot carry nested values "
                "(exclude it, or use content_format json)"
            )
        pairs.append((str(name), text))
    try:
        return urlencode(pairs).encode("ascii")
    except UnicodeEncodeError:
        raise RenderError("a form field is not valid Unicode text") from None
