"""A destination's URL pattern (``https://{domain}.gorgias.com/api/tickets/{ticket_id}``): compiled once,
filled with a record's (or a group key's) values per request. Pure.

URL safety
    Requests only go to ``https://{domain}.gorgias.com`` or the credential's explicit ``base_url``:
    the origin of a rendered URL is always ``credential.origin``; the configured pattern supplies only
    the path and query. Placeholder values are percent-encoded except RFC 3986 unreserved characters
    (``A-Za-z0-9-._~``), so no value can add a path segment, a query, a fragment or change the host.
    Values the encoding cannot make safe are refused with a :class:`~worker.core.requests.render_error.RenderError`:

    * an empty string (``/api/tickets/{id}`` would become the collection ``/api/tickets/``);
    * a path segment that would read as ``.`` or ``..``. Such values are still encoded as ``%2E`` (so a
      query value ``..`` survives), but that does not protect a path: aiohttp, the default transport,
      parses URLs with yarl, which decodes ``%2E`` and then removes dot segments, so
      ``/api/tickets/%2E%2E/messages`` would be sent as ``/api/messages``.

Values render as in JSON: ``12``, ``1.5``, ``true``; null, objects and arrays are refused.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import quote, urlsplit

from worker.core.config.account import Credential
from worker.core.config.base import DOMAIN_PLACEHOLDER, PLACEHOLDER
from worker.core.records.json_types import a_json_type, scalar_text
from worker.core.records.transform import MissingAttribute, get_parts, split_path
from worker.core.requests.render_error import RenderError

_UNRESERVED: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ASCII_ESCAPES: Final = {c: f"%{c:02X}" for c in range(128) if chr(c) not in _UNRESERVED}
_ENCODED: Final = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-F]{2})+")


def encode_component(text: str) -> str:
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


@dataclass(frozen=True, slots=True)
class Slot:
    """One ``{attribute}`` of a URL pattern."""

    name: str  # as written: a dotted path
    parts: tuple[str, ...]  # the path split once
    in_path: bool  # before the query
    segment: int  # index of its path segment (values never add "/"); -1 in the query
    key_index: int  # position in batching.attributes; -1 when not a grouping attribute


def split_origin(pattern: str) -> tuple[str, str]:
    """``https://{domain}.gorgias.com/api/x?y`` -> (``https://{domain}.gorgias.com``, ``/api/x?y``)."""
    scheme_end = pattern.index("://") + 3
    ends = [i for i in (pattern.find(c, scheme_end) for c in "/?#") if i != -1]
    cut = min(ends) if ends else len(pattern)
    rest = pattern[cut:]
    if not rest.startswith("/"):
        rest = "/" + rest
    return pattern[:cut], rest


class UrlPattern:
    """``pattern`` compiled for ``credential``: the origin from the credential, the path and query from the
    pattern, split into literals and slots. With ``key_attributes`` (a batched destination) every
    placeholder must be a grouping attribute, and :meth:`render` takes the group key's values.

    A pattern that cannot be used is a ``ValueError`` naming ``destination``.
    """

    def __init__(self, pattern: str, credential: Credential, destination: str,
                 key_attributes: tuple[str, ...] | None = None) -> None:
        self.pattern = pattern
        self.origin = credential.origin
        origin_parts = urlsplit(self.origin)
        self._origin_check = (origin_parts.scheme, origin_parts.netloc)
        self._origin_slash = self.origin + "/"
        literals: list[str] = []
        slots: list[Slot] = []
        current = self.origin  # literal text since the previous slot
        before = ""  # the whole path and query before the current slot, slots included
        _, path_and_query = split_origin(pattern)
        position = 0
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
            in_path = "?" not in before
            segment = before.count("/") if in_path else -1  # index in urlsplit(url).path.split("/")
            literals.append(current)
            slots.append(Slot(name, _attribute_path(name), in_path, segment,
                              _key_index(name, key_attributes, destination)))
            current = ""
            before += "x"  # a value: never a "/" or "?"
        literals.append(current + path_and_query[position:])
        self._literals = tuple(literals)
        self.slots = tuple(slots)
        template_url = "".join(literals)
        self._slash_count = template_url.count("/")
        self._query_count = template_url.count("?")
        self.static: str | None = None if slots else self._check_static(template_url)
        """The URL itself when the pattern has no placeholder (but ``{domain}``)."""

    def values_from(self, data: dict[str, Any]) -> list[Any]:
        """The record's value of each placeholder, in order."""
        values = []
        for slot in self.slots:
            try:
                values.append(get_parts(data, slot.parts, slot.name))
            except MissingAttribute:
                raise RenderError(
                    f"URL placeholder {{{slot.name}}}: the record has no attribute {slot.name}"
                ) from None
        return values

    def from_key(self, key: tuple[Any, ...]) -> str:
        """The URL of a batch: its placeholders filled from the group key."""
        return self.static or self.render([key[s.key_index] for s in self.slots])

    def render(self, values: Sequence[Any]) -> str:
        """The URL with ``values`` (one per slot) encoded into it, or a RenderError naming the placeholder."""
        literals = self._literals
        pieces = [literals[0]]
        dots = False
        for i, slot in enumerate(self.slots):
            value = values[i]
            text = value if type(value) is str else scalar_text(value)
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
                pieces.append(encode_component(text))
            except UnicodeEncodeError:
                raise RenderError(
                    f"URL placeholder {{{slot.name}}}: the value of {slot.name} is not valid Unicode text"
                ) from None
            except ValueError as exc:  # the defensive check in encode_component: refuse, never send
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
        for slot, value in zip(self.slots, values, strict=True):
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
            f"shape of the pattern {self.pattern}; refusing to send it"
        )


def _attribute_path(name: str) -> tuple[str, ...]:
    try:
        return split_path(name)
    except ValueError:
        raise ValueError(f"URL placeholder {{{name}}} is not an attribute path") from None


def _key_index(name: str, key_attributes: tuple[str, ...] | None, destination: str) -> int:
    """The placeholder's position in the grouping key; -1 unbatched (``key_attributes`` None)."""
    if key_attributes is None:
        return -1
    if name not in key_attributes:
        raise ValueError(
            f"destination {destination}: URL placeholder {{{name}}} must be one of the "
            f"grouping attributes when batching ({', '.join(key_attributes) or 'none'})"
        )
    return key_attributes.index(name)
