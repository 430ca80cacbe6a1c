"""Destination configuration: the models that a worker's YAML/JSON config file is validated against.

The models are pure: they do no I/O. Secrets are referenced by environment variable or file path and
only read by the shell when the worker starts (:mod:`worker.environment`); the file itself is read,
``${VAR}``-expanded and overridden by :mod:`worker.config_loading`.
JSON Schemas in ``schemas/`` are generated from these models.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

GORGIAS_HOST_SUFFIX = ".gorgias.com"
PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
DOMAIN_PLACEHOLDER = "domain"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"
TOPIC_PATTERN = r"^[a-zA-Z0-9._-]{1,249}$"
INLINE_SECRET_KEYS = (
    "api_key", "password", "access_token", "token", "sasl_password", "ssl_key_password", "control_token",
)


class Model(BaseModel):
    """Base for every config model: unknown keys are rejected, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ConfigError(Exception):
    """A config file that cannot be used. ``problems`` holds one readable line per error."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------------------------------
# Secrets


class SecretRef(Model):
    """Where a secret lives: an environment variable or a mounted file. Never the secret itself."""

    env: str | None = Field(default=None, description="Name of the environment variable holding it.")
    file: str | None = Field(default=None, description="Path of a file holding it (e.g. a mounted Secret).")

    @model_validator(mode="after")
    def _one_source(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` (variable name) or `file` (path)")
        return self

    def describe(self) -> str:
        return f"env ${self.env}" if self.env else f"file {self.file}"


def _reject_inline_secrets(data: Any) -> Any:
    if isinstance(data, dict):
        for key in INLINE_SECRET_KEYS:
            if key in data:
                raise ValueError(
                    f"`{key}` must not be written inline: use `{key}_env: VARIABLE` or `{key}_file: PATH`"
                )
    return data


# --------------------------------------------------------------------------------------------------
# Kafka


class SecurityProtocol(StrEnum):
    PLAINTEXT = "PLAINTEXT"
    SSL = "SSL"
    SASL_PLAINTEXT = "SASL_PLAINTEXT"
    SASL_SSL = "SASL_SSL"


class SaslMechanism(StrEnum):
    PLAIN = "PLAIN"
    SCRAM_SHA_256 = "SCRAM-SHA-256"
    SCRAM_SHA_512 = "SCRAM-SHA-512"


class KafkaSettings(Model):
    """How the worker reaches Kafka."""

    bootstrap_servers: str = Field(
        default="localhost:9092",
        description="Comma-separated host:port list. The env var KAFKA_BOOTSTRAP_SERVERS overrides it.",
    )
    group_id: str = Field(default="gorgias-worker", min_length=1, description="Consumer group of the worker.")
    client_id: str = Field(default="gorgias-worker", min_length=1)
    security_protocol: SecurityProtocol = SecurityProtocol.PLAINTEXT
    sasl_mechanism: SaslMechanism | None = None
    sasl_username: str | None = None
    sasl_password_env: str | None = None
    sasl_password_file: str | None = None
    ssl_cafile: str | None = Field(default=None, description="CA bundle (PEM) to verify the brokers.")
    ssl_certfile: str | None = Field(default=None, description="Client certificate (PEM) for mutual TLS.")
    ssl_keyfile: str | None = Field(default=None, description="Client private key (PEM) for mutual TLS.")
    ssl_key_password_env: str | None = None
    control_topic: str = Field(
        default="gorgias-worker.control",
        pattern=TOPIC_PATTERN,
        description="Compacted topic carrying activate/pause commands to every replica.",
    )
    max_record_bytes: int = Field(
        default=1_048_576, ge=1, description="Records larger than this go to the dead-letter topic."
    )
    fetch_max_records: int = Field(default=2000, ge=1, le=100_000, description="Records per poll.")

    _reject = model_validator(mode="before")(_reject_inline_secrets)

    @model_validator(mode="after")
    def _sasl_complete(self) -> KafkaSettings:
        uses_sasl = self.security_protocol in (SecurityProtocol.SASL_PLAINTEXT, SecurityProtocol.SASL_SSL)
        if uses_sasl:
            if self.sasl_mechanism is None:
                raise ValueError("sasl_mechanism is required with SASL_* security_protocol (PLAIN, SCRAM-...)")
            if not self.sasl_username:
                raise ValueError("sasl_username is required with SASL_* security_protocol")
            if (self.sasl_password_env is None) == (self.sasl_password_file is None):
                raise ValueError("give exactly one of sasl_password_env or sasl_password_file")
        elif self.sasl_mechanism is not None:
            raise ValueError(
                "sasl_mechanism is set but security_protocol is not SASL_PLAINTEXT or SASL_SSL"
            )
        return self

    def sasl_password(self) -> SecretRef | None:
        if self.sasl_password_env is None and self.sasl_password_file is None:
            return None
        return SecretRef(env=self.sasl_password_env, file=self.sasl_password_file)



# --------------------------------------------------------------------------------------------------
# Gorgias credential


class AuthType(StrEnum):
    BASIC = "basic"
    OAUTH = "oauth"


class RateLimitSettings(Model):
    """The account's request budget (Gorgias: a leaky bucket per account)."""

    enabled: bool = True
    requests: int | None = Field(
        default=None, ge=1, description="Bucket size; default 40 for API keys, 80 for OAuth apps."
    )
    per_seconds: float = Field(default=20.0, gt=0, description="Seconds for a full bucket to drain.")
    headroom: int = Field(
        default=2, ge=0, description="Slots left unused as margin for other integrations' bursts."
    )
    assume_full_at_start: bool = Field(
        default=True,
        description=(
            "Start as if the account's bucket were full and let it drain, instead of bursting at once: "
            "replicas starting together (a rollout, a scale-out) then cannot overrun the shared budget "
            "before Gorgias' call-limit header has synced them."
        ),
    )
    age_bound_s: float = Field(
        default=30.0, gt=0,
        description=(
            "A call that has waited this long for the account's budget goes before the calls carrying "
            "more records per token, so no key or destination starves."
        ),
    )
    fairness: Literal["records", "equal"] = Field(
        default="records",
        description=(
            "How destinations on one account share its budget when calls wait: in proportion to their "
            "records waiting (records) or in equal parts (equal)."
        ),
    )


class Credential(Model):
    """A Gorgias account and how to authenticate to it."""

    domain: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Helpdesk subdomain: `mystore` for mystore.gorgias.com.",
    )
    auth: AuthType = AuthType.BASIC
    username: str | None = Field(default=None, description="Email of the user the API key belongs to.")
    api_key_env: str | None = None
    api_key_file: str | None = None
    access_token_env: str | None = None
    access_token_file: str | None = None
    base_url: str | None = Field(
        default=None,
        description=(
            "Explicitly allowed non-Gorgias origin to send to instead of https://{domain}.gorgias.com, "
            "e.g. the local sandbox http://127.0.0.1:8080. The Host header stays {domain}.gorgias.com."
        ),
    )
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    _reject = model_validator(mode="before")(_reject_inline_secrets)

    @field_validator("base_url")
    @classmethod
    def _base_url_is_origin(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"must be an http(s) origin like http://127.0.0.1:8080 (got {value!r})")
        if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
            raise ValueError(f"must be an origin only, without path, query or user (got {value!r})")
        return f"{parts.scheme}://{parts.netloc}"

    @model_validator(mode="after")
    def _secret_given(self) -> Credential:
        if self.auth is AuthType.BASIC:
            if not self.username:
                raise ValueError("username (the API key's user email) is required for auth: basic")
            if (self.api_key_env is None) == (self.api_key_file is None):
                raise ValueError("give exactly one of api_key_env or api_key_file for auth: basic")
        elif (self.access_token_env is None) == (self.access_token_file is None):
            raise ValueError("give exactly one of access_token_env or access_token_file for auth: oauth")
        return self

    def secret(self) -> SecretRef:
        if self.auth is AuthType.BASIC:
            return SecretRef(env=self.api_key_env, file=self.api_key_file)
        return SecretRef(env=self.access_token_env, file=self.access_token_file)

    @property
    def host(self) -> str:
        return f"{self.domain}{GORGIAS_HOST_SUFFIX}"

    @property
    def origin(self) -> str:
        """Where requests are actually sent."""
        return self.base_url or f"https://{self.host}"

    @property
    def account_key(self) -> str:
        """Identity of the rate-limit bucket: Gorgias limits per account and auth type."""
        return f"{self.domain}/{self.auth.value}"

    def bucket_size(self) -> int:
        if self.rate_limit.requests is not None:
            return self.rate_limit.requests
        return 80 if self.auth is AuthType.OAUTH else 40


# --------------------------------------------------------------------------------------------------
# Endpoint


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
    template_options: dict[str, Any] = Field(
        default_factory=dict, description="Template customisation: extra fields, attribute mapping."
    )
    method: HttpMethod | None = Field(default=None, description="POST, PUT, PATCH or DELETE.")
    url: str | None = Field(
        default=None,
        description="https://{domain}.gorgias.com/api/... with {attribute} placeholders (dotted paths).",
    )
    content_format: ContentFormat = ContentFormat.JSON
    headers: dict[str, str] = Field(
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


# --------------------------------------------------------------------------------------------------
# Batching


class GroupingAlgorithm(StrEnum):
    ARRIVAL_ORDER = "arrival_order"
    BY_ATTRIBUTE = "by_attribute"
    TUMBLING_WINDOW = "tumbling_window"
    SESSION_WINDOW = "session_window"


class BatchingSettings(Model):
    """Record batching: several records in one API call, grouped by an algorithm within windows."""

    enabled: bool = False
    batch_size: int = Field(default=100, ge=1, le=10_000, description="Most records in one call.")
    algorithm: GroupingAlgorithm = GroupingAlgorithm.ARRIVAL_ORDER
    attributes: list[str] = Field(
        default_factory=list, description="Grouping key attributes (dotted paths) for keyed algorithms."
    )
    max_wait_ms: int = Field(default=2000, ge=1, description="arrival_order/by_attribute: longest a batch waits.")
    window_ms: int = Field(default=10_000, ge=1, description="tumbling_window: window size, aligned to the clock.")
    gap_ms: int = Field(default=5000, ge=1, description="session_window: inactivity gap that ends a session.")
    max_session_ms: int | None = Field(default=None, ge=1, description="session_window: longest session.")
    max_bytes: int = Field(default=1_000_000, ge=64, description="Largest request body of a batch, in bytes.")
    wrap_key: str | None = Field(
        default=None, min_length=1, description="Send {wrap_key: [...]} instead of a bare JSON array."
    )
    fill_while_waiting: bool = Field(
        default=True,
        description=(
            "A due batch that waits (for its key's previous call, a call slot or the account's budget) keeps "
            "taking its key's records up to batch_size/max_bytes. false: seal each batch at its window."
        ),
    )

    @model_validator(mode="after")
    def _attributes_needed(self) -> BatchingSettings:
        keyed = (GroupingAlgorithm.BY_ATTRIBUTE, GroupingAlgorithm.SESSION_WINDOW)
        if self.enabled and self.algorithm in keyed and not self.attributes:
            raise ValueError(f"algorithm {self.algorithm.value} needs `attributes` (e.g. [ticket_id])")
        if self.algorithm is GroupingAlgorithm.ARRIVAL_ORDER and self.attributes:
            raise ValueError("arrival_order does not group by attributes; use by_attribute or drop `attributes`")
        return self

    @property
    def keyed(self) -> bool:
        """Whether batches are grouped by the values of ``attributes``: by_attribute, session_window, and a
        tumbling_window given attributes. Calls of one key are then sent one after another."""
        if not self.enabled or self.algorithm is GroupingAlgorithm.ARRIVAL_ORDER:
            return False
        return self.algorithm is not GroupingAlgorithm.TUMBLING_WINDOW or bool(self.attributes)


# --------------------------------------------------------------------------------------------------
# Delivery, responses


class DeliverySettings(Model):
    """Timeouts, retries and concurrency of the calls."""

    connect_timeout_s: float = Field(default=5.0, gt=0)
    timeout_s: float = Field(default=30.0, gt=0, description="Whole-request timeout of one attempt.")
    max_attempts: int = Field(default=8, ge=1, le=100, description="Attempts per call, the first included.")
    max_retry_time_s: float = Field(default=300.0, gt=0, description="Give up retrying after this long.")
    backoff_initial_s: float = Field(default=0.5, gt=0)
    backoff_max_s: float = Field(default=30.0, gt=0)
    max_in_flight: int = Field(default=16, ge=1, le=1024, description="Concurrent calls across keys.")
    max_pending_records: int = Field(
        default=20_000, ge=1, description="Back-pressure: consumption pauses above this many undelivered records."
    )


class BodyCapture(StrEnum):
    FULL = "full"
    HASH = "hash"
    NONE = "none"


DEFAULT_RESPONSE_HEADERS = (
    "x-gorgias-account-api-call-limit",
    "retry-after",
    "location",
    "x-request-id",
    "content-type",
)


StartPosition = Literal["earliest", "latest"] | datetime


def parse_start_from(value: str) -> StartPosition:
    """``earliest``, ``latest`` or an aware datetime; ``ValueError`` saying what is accepted otherwise."""
    if value in ("earliest", "latest"):
        return value  # type: ignore[return-value]
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00") if value.endswith("Z") else value)
    except ValueError:
        raise ValueError(
            f"start_from must be earliest, latest or an ISO 8601 timestamp like 2026-01-31T08:00:00Z (got {value!r})"
        ) from None
    if moment.tzinfo is None:
        raise ValueError(f"start_from timestamp needs a time zone, e.g. {value}Z for UTC (got {value!r})")
    return moment


class ResponseWebhookSettings(Model):
    """The response topic: one event per API call, consumed by other systems as a webhook source."""

    enabled: bool = True
    topic: str = Field(default="gorgias.responses", pattern=TOPIC_PATTERN)
    request_body: BodyCapture = Field(
        default=BodyCapture.FULL, description="full: the body; hash: its sha256; none: left out."
    )
    response_headers: list[str] = Field(default_factory=lambda: list(DEFAULT_RESPONSE_HEADERS))

    @field_validator("response_headers")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [v.lower() for v in value]


class Destination(Model):
    """One Gorgias destination: what to consume, where to send it, how to batch, where results go."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name, lowercase: `support-tickets`.")
    source_topics: list[Annotated[str, Field(pattern=TOPIC_PATTERN)]] = Field(min_length=1)
    credential: Credential
    endpoint: EndpointSettings
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    response_webhook: ResponseWebhookSettings = Field(default_factory=ResponseWebhookSettings)
    dead_letter_topic: str = Field(default="gorgias.dead-letter", pattern=TOPIC_PATTERN)
    active: bool = Field(default=True, description="Saved inactive: not consumed until activated.")
    group_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=249,
        description=(
            "The destination's consumer group; default `<kafka.group_id>.<name>`. Pin it to keep the committed "
            "offsets when the destination (or kafka.group_id) is renamed."
        ),
    )
    start_from: str = Field(
        default="earliest",
        description=(
            "Where a consumer group without committed offsets starts: `earliest` (every record in the topic), "
            "`latest` (only records published from now on) or an ISO 8601 timestamp with a time zone (the first "
            "record at or after it). Ignored once the group has committed offsets."
        ),
    )

    @field_validator("start_from")
    @classmethod
    def _start_from(cls, value: str) -> str:
        parse_start_from(value)
        return value

    def start_position(self) -> StartPosition:
        return parse_start_from(self.start_from)

    def consumer_group(self, prefix: str) -> str:
        """The consumer group: the pinned ``group_id``, else ``<prefix>.<name>``."""
        return self.group_id or f"{prefix}.{self.name}"

    @model_validator(mode="after")
    def _url_checks(self) -> Destination:
        url = self.endpoint.url
        if url is None:
            return self
        check_url_origin(url, self.credential)
        placeholders = [p for p in self.endpoint.placeholders() if p != DOMAIN_PLACEHOLDER]
        if self.batching.enabled and self.endpoint.content_format is ContentFormat.FORM:
            raise ValueError(
                "endpoint.content_format form cannot carry a batch (a JSON array); use json, or disable batching"
            )
        if self.batching.enabled:
            allowed = set(self.batching.attributes)
            outside = [p for p in placeholders if p not in allowed]
            if outside:
                raise ValueError(
                    f"endpoint.url placeholder(s) {', '.join('{' + p + '}' for p in outside)} are not part of the "
                    f"grouping: in batched mode a URL can only use batching.attributes "
                    f"({', '.join(allowed) or 'none'}); add them there or remove them from the URL"
                )
        return self

    def gorgias_patch_warning(self) -> str | None:
        if self.endpoint.method is HttpMethod.PATCH:
            return (
                f"destination {self.name}: Gorgias has no PATCH operation (every write is POST, PUT or DELETE; "
                "PUT is already a partial update) — expect 405 Method Not Allowed"
            )
        return None


def check_url_origin(url: str, credential: Credential) -> None:
    """Requests go only to https://{domain}.gorgias.com or the credential's explicit ``base_url``."""
    if PLACEHOLDER.search(urlsplit(url.replace("{domain}", credential.domain)).netloc):
        raise ValueError("endpoint.url: placeholders other than {domain} are not allowed in the host")
    concrete = url.replace("{domain}", credential.domain)
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(concrete))
    allowed = {f"https://{credential.host}"}
    if credential.base_url:
        allowed.add(credential.base_url)
    if origin not in allowed:
        raise ValueError(
            f"endpoint.url must start with https://{{domain}}.gorgias.com (domain {credential.domain}) "
            f"or the credential's base_url; got origin {origin}"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` (an address or name the web server binds) is reachable from this machine only."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class WorkerSettings(Model):
    """The worker process itself."""

    web_host: str = Field(
        default="127.0.0.1",
        min_length=1,
        description="Interface of the health, metrics and control API. Beyond loopback (e.g. 0.0.0.0 in a "
        "container) a control token is required.",
    )
    web_port: int = Field(default=6066, ge=0, le=65535, description="Health, metrics and control API.")
    control_token_env: str | None = Field(
        default=None, description="Environment variable holding the bearer token of the control API's POST routes."
    )
    control_token_file: str | None = Field(
        default=None, description="File holding the bearer token of the control API's POST routes."
    )
    shutdown_grace_s: float = Field(default=25.0, ge=0, description="SIGTERM: time to finish in-flight calls.")
    broker_wait_s: float = Field(
        default=120.0, ge=0, description="At start, how long to wait for Kafka to answer before giving up."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["json", "text"] = "json"

    _reject = model_validator(mode="before")(_reject_inline_secrets)

    @model_validator(mode="after")
    def _token_beyond_loopback(self) -> WorkerSettings:
        if self.control_token_env is not None and self.control_token_file is not None:
            raise ValueError("give only one of control_token_env or control_token_file")
        if not is_loopback(self.web_host) and self.control_token() is None:
            raise ValueError(
                f"web_host {self.web_host} listens beyond this machine: set worker.control_token_env (or "
                "control_token_file) to a secret bearer token for the control API, or use web_host: 127.0.0.1"
            )
        return self

    def control_token(self) -> SecretRef | None:
        """Where the control API's bearer token lives; None when none is configured (loopback only)."""
        if self.control_token_env is None and self.control_token_file is None:
            return None
        return SecretRef(env=self.control_token_env, file=self.control_token_file)


class WorkerConfig(Model):
    """A config file: Kafka access, the worker, and one or more destinations."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    destinations: list[Destination] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_names(self) -> WorkerConfig:
        seen: set[str] = set()
        for dest in self.destinations:
            if dest.name in seen:
                raise ValueError(f"destination name {dest.name!r} is used twice; names must be unique")
            seen.add(dest.name)
        groups: dict[str, str] = {}
        for dest in self.destinations:
            group = dest.consumer_group(self.kafka.group_id)
            if group in groups:
                raise ValueError(
                    f"destinations {groups[group]!r} and {dest.name!r} would share consumer group {group!r}; "
                    "give each its own group_id"
                )
            groups[group] = dest.name
        return self

    def destination(self, name: str) -> Destination:
        for dest in self.destinations:
            if dest.name == name:
                return dest
        names = [d.name for d in self.destinations]
        guess = difflib.get_close_matches(name, names, n=1)
        hint = f"; did you mean {guess[0]!r}?" if guess else ""
        raise KeyError(f"no destination named {name!r} (known: {', '.join(names)}){hint}")

    def warnings(self) -> list[str]:
        return [w for d in self.destinations if (w := d.gorgias_patch_warning())]


# --------------------------------------------------------------------------------------------------
# Loading and error reporting


def error_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.startswith(("function-", "union[", "tagged-union[")):
            continue
        else:
            out += f".{part}" if out else part
    return out or "(top level)"


def describe_error(error: Any) -> str:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    got = error.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    bounds = {
        "greater_than_equal": ">= {ge}",
        "greater_than": "> {gt}",
        "less_than_equal": "<= {le}",
        "less_than": "< {lt}",
    }
    if kind in bounds:
        return f"must be {bounds[kind].format(**ctx)} (got {shown})"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        loc = tuple(error.get("loc") or ())
        guess = difflib.get_close_matches(str(loc[-1]), known_keys(loc[:-1]), n=1) if loc else []
        hint = f"did you mean `{guess[0]}`?" if guess else "check the spelling"
        return f"is not a known setting ({hint} see schemas/worker-config.schema.json)"
    if kind == "string_pattern_mismatch":
        return f"has an invalid format (got {shown}; must match {ctx.get('pattern')})"
    if kind in ("too_short", "too_long"):
        return f"{error['msg'].lower()} (got {shown})"
    if kind == "enum":
        return f"must be one of {ctx.get('expected')} (got {shown})"
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    return f"{error['msg'][0].lower()}{error['msg'][1:]} (got {shown})"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    """The config model inside an annotation (``X``, ``X | None``, ``list[X]``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def known_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The settings allowed at ``loc`` (a path into :class:`WorkerConfig`), for "did you mean"."""
    model: type[BaseModel] | None = WorkerConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or part.startswith(("function-", "union[", "tagged-union[")):
            continue
        info = model.model_fields.get(part)
        model = _model_in(info.annotation) if info is not None else None
    return [] if model is None else list(model.model_fields)


def format_validation_error(exc: ValidationError) -> list[str]:
    """One readable line per problem, each naming the path and what to do."""
    return [f"{error_location(tuple(e['loc']))}: {describe_error(e)}" for e in exc.errors(include_url=False)]


def parse_config(data: Any) -> WorkerConfig:
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc)) from None
