"""Destination configuration: the models that a worker's YAML/JSON config file is validated against.

The models are pure: they do no I/O. Secrets are referenced by environment variable or file path and
only read by the shell when the worker starts (:mod:`worker.host.environment`); the file itself is read,
``${VAR}``-expanded and overridden by :mod:`worker.service.config_loading`.
JSON Schemas in ``schemas/`` are generated from these models.

The models live by subject: :mod:`worker.core.config.base` (base model, error, secret references),
:mod:`worker.core.config.kafka`, :mod:`worker.core.config.account` (a Gorgias account),
:mod:`worker.core.config.endpoint`,
:mod:`worker.core.config.delivery` (batching, delivery, responses),
:mod:`worker.core.config.template_options`; this module puts them together (a destination, the
worker, the whole file) and turns validation errors into readable lines.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from worker.core.config.account import AuthType, Credential, check_url_origin
from worker.core.config.base import (
    DOMAIN_PLACEHOLDER,
    NAME_PATTERN,
    TOPIC_PATTERN,
    ConfigError,
    Model,
    Problem,
    SecretRef,
    reject_inline_secrets,
)
from worker.core.config.delivery import BatchingSettings, Coalesce, DeliverySettings, ResponseWebhookSettings
from worker.core.config.endpoint import ContentFormat, EndpointSettings, HttpMethod
from worker.core.config.kafka import KafkaSettings

__all__ = [
    "Destination",
    "StartPosition",
    "WorkerConfig",
    "WorkerSettings",
    "describe_error",
    "error_location",
    "format_validation_error",
    "is_loopback",
    "known_keys",
    "parse_config",
    "parse_start_from",
    "problem_of",
    "suggest",
]

TOP_LEVEL = "(top level)"


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


CREDENTIALS_CONTEXT = "credentials"  # validation context: the named credentials a destination may refer to


@dataclass(frozen=True)
class _UnknownCredential:
    """A credential name that names nothing usable (set aside by :class:`WorkerConfig` for the message)."""

    name: str
    known: tuple[str, ...]


def _named_credential(value: Any, info: ValidationInfo) -> Any:
    """``credential: "<name>"``: the named credential, from the file's ``credentials:`` or the validation
    context (a mapping of name to :class:`Credential`, for destinations saved at runtime)."""
    if isinstance(value, str):
        known: Mapping[str, Credential] = (info.context or {}).get(CREDENTIALS_CONTEXT) or {}
        found = known.get(value)
        if found is not None:
            return found
        value = _UnknownCredential(value, tuple(sorted(known)))
    if isinstance(value, _UnknownCredential):
        if value.name in value.known:
            raise ValueError(f"the credential named {value.name!r} is not valid (see credentials.{value.name})")
        names = f" (known: {', '.join(value.known)})" if value.known else ""
        raise ValueError(f"no credential named {value.name!r}{names}: define it under the top-level `credentials:`, "
                         "or write the credential block here")
    return value


NamedCredential = Annotated[Credential, BeforeValidator(_named_credential, json_schema_input_type=Credential | str)]


class Destination(Model):
    """One Gorgias destination: what to consume, where to send it, how to batch, where results go."""

    name: str = Field(pattern=NAME_PATTERN, description="Unique name, lowercase: `support-tickets`.")
    source_topics: list[Annotated[str, Field(pattern=TOPIC_PATTERN)]] = Field(
        min_length=1, description="The Kafka topics whose records this destination sends.",
    )
    credential: NamedCredential = Field(
        description="The Gorgias account: a credential block, or the name of one defined under the top-level "
        "`credentials:` (or saved at runtime).",
    )
    endpoint: EndpointSettings
    batching: BatchingSettings = Field(default_factory=BatchingSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    response_webhook: ResponseWebhookSettings = Field(default_factory=ResponseWebhookSettings)
    dead_letter_topic: str = Field(
        default="gorgias.dead-letter", pattern=TOPIC_PATTERN,
        description="Where records that cannot be delivered go, with the reason.",
    )
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
    def _coalesce_needs_a_template(self) -> Destination:
        if self.delivery.coalesce is Coalesce.JOBS and self.endpoint.template is None:
            raise ValueError("delivery.coalesce: jobs needs an endpoint template whose calls a Gorgias ticket job can "
                             "make (add_ticket_tags, delete_ticket, update_ticket); a manual endpoint cannot be "
                             "coalesced: remove coalesce")
        return self

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
    secrets_key_env: str | None = Field(
        default=None,
        description="Environment variable holding the key(s) that encrypt the secrets of credentials saved at "
        "runtime: Fernet keys, comma-separated, the first encrypts (rotation: put the new key first).",
    )
    secrets_key_file: str | None = Field(default=None, description="File holding those key(s), one per line.")
    credential_env_prefix: str = Field(
        default="GORGIAS_",
        description="A credential saved at runtime may name only environment variables starting with this "
        "(never one of the worker's own: the Kafka password, the control token, the secrets key).",
    )
    credential_file_dirs: list[str] = Field(
        default_factory=list,
        description="Directories whose files a credential saved at runtime may name (e.g. a mounted Secret); "
        "none by default.",
    )
    credential_origins: list[str] = Field(
        default_factory=list,
        description="Origins other than https://{domain}.gorgias.com a credential saved at runtime may send a "
        "variable's or a file's secret to (its base_url), e.g. the sandbox http://127.0.0.1:8080.",
    )
    shutdown_grace_s: float = Field(default=25.0, ge=0, description="SIGTERM: time to finish the calls on the wire.")
    broker_wait_s: float = Field(
        default=120.0, ge=0,
        description="At start, how long to wait for Kafka (retries logged) before exiting with one line.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="debug, info, warning or error; secrets are redacted from every line.",
    )
    log_format: Literal["json", "text"] = Field(
        default="json", description="json (one object per line, with the records' coordinates) or text.",
    )
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description=("The loop the worker's data path runs on: uvloop (libuv, ~10 % less CPU per call) or asyncio "
                     "(the standard library's). faust's helper thread always uses asyncio's."),
    )

    _reject = model_validator(mode="before")(reject_inline_secrets)

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

    @model_validator(mode="after")
    def _one_secrets_key(self) -> WorkerSettings:
        if self.secrets_key_env is not None and self.secrets_key_file is not None:
            raise ValueError("give only one of secrets_key_env or secrets_key_file")
        return self

    def secrets_key(self) -> SecretRef | None:
        """Where the credentials store's encryption key(s) live; None when none is configured."""
        if self.secrets_key_env is None and self.secrets_key_file is None:
            return None
        return SecretRef(env=self.secrets_key_env, file=self.secrets_key_file)

    def control_token(self) -> SecretRef | None:
        """Where the control API's bearer token lives; None when none is configured (loopback only)."""
        if self.control_token_env is None and self.control_token_file is None:
            return None
        return SecretRef(env=self.control_token_env, file=self.control_token_file)


class WorkerConfig(Model):
    """A config file: Kafka access, the worker, and one or more destinations."""

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    credentials: dict[Annotated[str, Field(pattern=NAME_PATTERN)], Credential] = Field(
        default_factory=dict,
        description="Credentials defined once and referred to by name from destinations (`credential: <name>`).",
    )
    destinations: list[Destination] = Field(
        default_factory=list,
        description="Destinations defined in this file; more can be saved at runtime (the destinations store).",
    )

    @model_validator(mode="before")
    @classmethod
    def _resolve_credential_names(cls, data: Any, info: ValidationInfo) -> Any:
        """Put each named credential in place of its name in the destinations (names of credentials that are
        missing or invalid are left for the destination to report; with named credentials in the validation
        context, names the file does not define are looked up there)."""
        if not isinstance(data, dict):
            return data
        raw = data.get("credentials")
        if isinstance(raw, dict):  # each credential knows its name (its key)
            raw = {name: {"name": name, **block} if isinstance(block, dict) else block for name, block in raw.items()}
            data = {**data, "credentials": raw}
        if not isinstance(data.get("destinations"), list):
            return data
        named: dict[str, Credential] = {}
        for name, block in (raw.items() if isinstance(raw, dict) else ()):
            try:
                named[str(name)] = Credential.model_validate(block)
            except ValidationError:
                continue  # reported under credentials.<name>
        known = tuple(sorted(str(n) for n in raw)) if isinstance(raw, dict) else ()
        destinations = []
        for item in data["destinations"]:
            if isinstance(item, dict) and isinstance(item.get("credential"), str):
                name = item["credential"]
                if name in named:
                    item = {**item, "credential": named[name]}
                elif name in known or CREDENTIALS_CONTEXT not in (info.context or {}):
                    item = {**item, "credential": _UnknownCredential(name, known)}
            destinations.append(item)
        return {**data, "destinations": destinations}

    @model_validator(mode="after")
    def _credential_names(self) -> WorkerConfig:
        for name, credential in self.credentials.items():
            if credential.name != name:
                raise ValueError(f"credentials.{name}.name is {credential.name!r}: leave it out (the key names it)")
        return self

    @model_validator(mode="after")
    def _apps_need_the_secrets_key(self) -> WorkerConfig:
        apps = [d.name for d in self.destinations if d.credential.auth is AuthType.OAUTH_APP]
        apps += [n for n, c in self.credentials.items() if c.auth is AuthType.OAUTH_APP]
        if apps and self.worker.secrets_key() is None:
            raise ValueError(
                f"worker.secrets_key_env: {', '.join(sorted(set(apps)))} use an OAuth app, whose tokens the replicas "
                "share encrypted in the credentials store: set worker.secrets_key_env or secrets_key_file to a key "
                "made with `gorgias-worker secrets-key`")
        return self

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
    return out or TOP_LEVEL


def describe_error(error: Any, root: type[BaseModel] | None = None) -> str:
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
        guess = difflib.get_close_matches(str(loc[-1]), known_keys(loc[:-1], root), n=1) if loc else []
        hint = f"did you mean `{guess[0]}`?" if guess else "check the spelling"
        return f"is not a known setting ({hint}; see schemas/worker-config.schema.json)"
    if kind == "string_pattern_mismatch":
        return f"has an invalid format (got {shown}; must match {ctx.get('pattern')})"
    if kind in ("too_short", "too_long"):
        return f"{error['msg'].lower()} (got {shown})"
    if kind in ("enum", "literal_error"):
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


def known_keys(loc: tuple[int | str, ...], root: type[BaseModel] | None = None) -> list[str]:
    """The settings allowed at ``loc`` (a path into ``root``, default :class:`WorkerConfig`), for "did you mean"."""
    model: type[BaseModel] | None = root or WorkerConfig
    for part in loc:
        if model is None:
            return []
        if isinstance(part, int) or part.startswith(("function-", "union[", "tagged-union[")):
            continue
        info = _settings(model).get(part)
        model = _model_in(info.annotation) if info is not None else None
    return [] if model is None else list(_settings(model))


def _settings(model: type[BaseModel]) -> dict[str, Any]:
    """A model's fields by the name a config file uses (``from``, not ``from_``)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def format_validation_error(exc: ValidationError) -> list[str]:
    """One readable line per problem, each naming the path and what to do."""
    return [problem_of(e).line for e in exc.errors(include_url=False)]


def suggest(error: Any, root: type[BaseModel] | None = None) -> str | None:
    """What to write instead, when a near miss tells: a misspelt setting or a value close to an allowed one."""
    kind = error["type"]
    loc = tuple(error.get("loc") or ())
    if kind == "extra_forbidden" and loc:
        guess = difflib.get_close_matches(str(loc[-1]), known_keys(loc[:-1], root), n=1)
        return f"did you mean `{guess[0]}`?" if guess else None
    if kind in ("enum", "literal_error") and isinstance(error.get("input"), str):
        allowed = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        guess = difflib.get_close_matches(error["input"], allowed, n=1, cutoff=0.5)
        return f"did you mean `{guess[0]}`?" if guess else None
    return None


def problem_of(error: Any, origin: str | None = None, root: type[BaseModel] | None = None) -> Problem:
    """One pydantic error of validating ``root`` (default :class:`WorkerConfig`) as a :class:`Problem`;
    ``origin`` (``c.yaml:15``, ``--set ...``) ends its line."""
    path = error_location(tuple(error["loc"]))
    message = describe_error(error, root)
    line = f"{path}: {message}"
    return Problem("" if path == TOP_LEVEL else path, message, suggest(error, root),
                   f"{line} ({origin})" if origin else line)


def parse_config(data: Any) -> WorkerConfig:
    try:
        return WorkerConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError([problem_of(e) for e in exc.errors(include_url=False)]) from None
