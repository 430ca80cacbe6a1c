"""Where and how each call is sent: a template, or method, URL, content format and headers by hand."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, WithJsonSchema, field_validator, model_validator

from worker.core.config.base import PLACEHOLDER, Model
from worker.core.config.template_options import TemplateOptions


class HttpMethod(StrEnum):
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"


class ContentFormat(StrEnum):
    JSON = "json"
    FORM = "form"


HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
RESERVED_HEADERS = frozenset({"authorization", "host", "content-length", "content-type", "transfer-encoding"})


def parse_headers(value: str | dict[str, str]) -> dict[str, str]:
    """Parse ``h1:v1,h2:v2`` (the seed's format) or a mapping into a validated header dict."""
    pairs: list[tuple[str, str]]
    if isinstance(value, dict):
        pairs = [(str(k), str(v)) for k, v in value.items()]
    else:
        pairs = []
        for chunk in value.split(","):
            if not chunk.strip():
                continue
            name, sep, val = chunk.partition(":")
            if not sep:
                raise ValueError(f"header {chunk.strip()!r} has no ':'; write name:value pairs, comma-separated")
            pairs.append((name.strip(), val.strip()))
    headers: dict[str, str] = {}
    for name, val in pairs:
        if not HEADER_NAME.match(name):
            raise ValueError(f"invalid header name {name!r}")
        if any(c in val for c in "\r\n\0"):
            raise ValueError(f"header {name!r} value contains a line break or NUL")
        if name.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {name!r} is set by the worker itself (credentials, body); remove it")
        headers[name] = val
    return headers


class EndpointSettings(Model):
    """Where and how each call is sent: a template, or method + URL by hand (the seed's manual mode)."""

    template: str | None = Field(
        default=None, description="Name of a pre-built endpoint template (`gorgias-worker templates`)."
    )
    template_options: TemplateOptions = Field(
        default_factory=TemplateOptions,
        description="Template customisation (see Templates): constant fields, attribute mapping, external id, "
        "URL attributes, duplicate checks, jobs.",
    )
    method: HttpMethod | None = Field(default=None, description="POST, PUT, PATCH or DELETE.")
    url: str | None = Field(
        default=None,
        description="https://{domain}.gorgias.com/api/... with {attribute} placeholders (dotted paths).",
    )
    content_format: ContentFormat = Field(
        default=ContentFormat.JSON, description="json, or form (form-urlencoded; flat records only).",
    )
    # The schema says what the file may hold (the text form too), not the parsed mapping.
    headers: Annotated[dict[str, str], WithJsonSchema({"anyOf": [
        {"type": "string"}, {"type": "object", "additionalProperties": {"type": "string"}}]})] = Field(
        default_factory=dict, description="Extra request headers: `h1:v1,h2:v2` or a mapping."
    )
    exclude_attributes: list[str] = Field(
        default_factory=list, description="Record attributes (dotted paths) removed from the body."
    )

    @field_validator("headers", mode="before")
    @classmethod
    def _parse_headers(cls, value: Any) -> Any:
        if isinstance(value, str | dict):
            return parse_headers(value)
        return value

    @field_validator("exclude_attributes")
    @classmethod
    def _paths(cls, value: list[str]) -> list[str]:
        for path in value:
            if not path or any(not part for part in path.split(".")):
                raise ValueError(f"{path!r} is not a dotted attribute path like `meta.trace_id`")
        return value

    @field_validator("url")
    @classmethod
    def _url_shape(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(PLACEHOLDER.sub("x", value))
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(
                f"must be an absolute URL like https://{{domain}}.gorgias.com/api/tickets (got {value!r})"
            )
        if parts.fragment:
            raise ValueError("must not contain a #fragment")
        if any(seg in (".", "..") for seg in parts.path.split("/")):
            raise ValueError("must not contain `.` or `..` path segments")
        for name in PLACEHOLDER.findall(value):
            if not name.strip() or any(not part for part in name.split(".")):
                raise ValueError(f"placeholder {{{name}}} is not an attribute path")
        return value

    @model_validator(mode="after")
    def _template_or_manual(self) -> EndpointSettings:
        if self.template is None:
            missing = [f for f in ("method", "url") if getattr(self, f) is None]
            if missing:
                raise ValueError(
                    "set `template`, or configure manually with both `method` and `url` "
                    f"(missing: {', '.join(missing)})"
                )
        return self

    def placeholders(self) -> list[str]:
        return PLACEHOLDER.findall(self.url or "")

    def summary(self) -> dict[str, str]:
        """What the endpoint calls, in brief (status, the console's list): the template, else method and URL."""
        if self.template is not None:
            return {"template": self.template}
        return {"method": str(self.method.value if self.method is not None else ""), "url": self.url or ""}
