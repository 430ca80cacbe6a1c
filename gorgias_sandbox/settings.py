"""Configuration of a sandbox: accounts and their users, rate limits, faults, seed."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from gorgias_sandbox.faults import FaultConfig, parse_fault_config
from gorgias_sandbox.ratelimit import parse_rate

Role = Literal["admin", "agent", "basic-agent", "lite-agent", "internal-agent", "observer-agent", "bot"]
ROLES: tuple[str, ...] = ("admin", "agent", "basic-agent", "lite-agent", "internal-agent", "observer-agent", "bot")

_DOMAIN = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class UserSettings(BaseModel):
    """A helpdesk user who can call the API with an API key (Basic) and/or an OAuth token (Bearer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: str
    api_key: str | None = None
    oauth_token: str | None = None
    role: Role = "admin"
    name: str | None = None


class CustomFieldSeed(BaseModel):
    """A custom field definition present when the account starts (ids are given in list order)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object_type: Literal["Ticket", "Customer"]
    label: str
    data_type: Literal["text", "number", "boolean"] = "text"
    managed_type: str | None = None
    """Set for system-managed fields (e.g. ``ai_intent``): API clients can neither set nor remove their value
    (Gorgias fills it; here ``PUT /__admin/tickets/{id}/custom-fields/{field_id}`` does)."""
    choices: list[str] | None = None
    """A dropdown's choices (``input_settings: {input_type: dropdown, choices}``): no other value is accepted."""


def default_custom_fields() -> list[CustomFieldSeed]:
    """Field definitions every account starts with (ids 1-8), so field values can be written at once;
    7 is system-managed (its value can be neither set nor removed through the API), 8 a dropdown."""
    return [
        CustomFieldSeed(object_type="Ticket", label="Contact reason", data_type="text"),
        CustomFieldSeed(object_type="Ticket", label="Order number", data_type="text"),
        CustomFieldSeed(object_type="Ticket", label="Refund amount", data_type="number"),
        CustomFieldSeed(object_type="Ticket", label="Escalated", data_type="boolean"),
        CustomFieldSeed(object_type="Customer", label="Loyalty tier", data_type="text"),
        CustomFieldSeed(object_type="Customer", label="Lifetime orders", data_type="number"),
        CustomFieldSeed(object_type="Ticket", label="AI intent", data_type="text", managed_type="ai_intent"),
        CustomFieldSeed(object_type="Ticket", label="Delivery issue", data_type="text",
                        choices=["Late", "Damaged", "Lost"]),
    ]


SANDBOX_REDIRECT_URI = "https://app.example.com/oauth/callback"
"""The redirection URI the sandbox's app ``sandbox-client`` registered (the README's example)."""


class OAuthAppSettings(BaseModel):
    """An OAuth app installed on the account, acting for one of its users (``POST /oauth/token``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_id: str
    client_secret: str
    user: str
    """Email of the user its tokens act for."""
    refresh_token: str | None = None
    """A refresh token it holds from the start (as if the user had authorized it with scope ``offline``)."""
    scope: str = ("openid email profile offline account:read tickets:read tickets:write tags:read tags:write "
                  "customers:read customers:write custom_fields:read jobs:read jobs:write satisfaction_survey:read "
                  "satisfaction_survey:write")
    """The scope of the refresh token it holds from the start and of those ``/__admin/oauth/authorize`` gives
    by default: what the worker's templates need (README, OAuth apps, step 2); calls on ``/api`` are checked
    against it (:mod:`gorgias_sandbox.scopes`)."""
    redirect_uris: list[str] = Field(default_factory=list)
    """Its registered redirection URIs: ``/oauth/authorize`` redirects only to one of them (the only one
    when the request names none); none registered: any absolute URI, which the request must then name."""


class AccountSettings(BaseModel):
    """One helpdesk account, addressed by the first label of the ``Host`` header (``acme.gorgias.com``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    domain: str
    users: list[UserSettings] = Field(min_length=1)
    oauth_apps: list[OAuthAppSettings] = Field(default_factory=list)
    custom_fields: list[CustomFieldSeed] = Field(default_factory=default_custom_fields)

    @field_validator("domain")
    @classmethod
    def _domain_is_a_label(cls, value: str) -> str:
        if not _DOMAIN.match(value) or value.isdigit() or value == "localhost":
            raise ValueError(f"{value!r} is not a usable subdomain (lower-case letters, digits and '-')")
        return value


def default_accounts() -> list[AccountSettings]:
    """Account ``acme``: admin ``agent@acme.com`` (key ``sandbox-api-key``, token ``sandbox-oauth-token``)
    and ``observer@acme.com`` (role observer-agent, key ``observer-key``)."""
    return [
        AccountSettings(
            domain="acme",
            users=[
                UserSettings(email="agent@acme.com", api_key="sandbox-api-key", oauth_token="sandbox-oauth-token",
                             role="admin", name="Acme Agent"),
                UserSettings(email="observer@acme.com", api_key="observer-key", role="observer-agent",
                             name="Acme Observer"),
            ],
            oauth_apps=[OAuthAppSettings(client_id="sandbox-client", client_secret="sandbox-client-secret",
                                         user="agent@acme.com", refresh_token="sandbox-refresh-token",
                                         redirect_uris=[SANDBOX_REDIRECT_URI])],
        )
    ]


class SandboxSettings(BaseModel):
    """Everything a sandbox needs to start.

    ``rate_limit`` is the API-key budget as ``"N/Ws"`` (N requests draining over W seconds) or ``"off"``;
    ``oauth_rate_limit`` likewise for Bearer tokens, ``None`` meaning twice the API-key capacity over the
    same window (Gorgias: 40/20s and 80/20s), and off when ``rate_limit`` is off. ``faults`` is a fault
    spec string or its JSON form (see :mod:`gorgias_sandbox.faults`). ``seed`` makes faults reproducible.
    ``job_duration_s``: how long a ticket job stays ``pending``/``running`` before it ends.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    accounts: list[AccountSettings] = Field(default_factory=default_accounts, min_length=1)
    rate_limit: str = "40/20s"
    oauth_rate_limit: str | None = None
    faults: str | dict[str, Any] | FaultConfig | None = None
    seed: int | None = None
    oauth_access_token_lifetime_s: float = Field(default=86_400.0, gt=0)
    """How long an access token from ``POST /oauth/token`` works (Gorgias: 24 h)."""
    oauth_rotate_refresh_tokens: bool = False
    """Answer every refresh with a new refresh token and refuse the old one from then on."""
    oauth_code_lifetime_s: float = Field(default=600.0, gt=0)
    """How long a code from ``GET /oauth/authorize`` can be exchanged (RFC 6749 advises 10 minutes at most)."""
    hang_max_s: float = Field(default=300.0, gt=0)
    max_body_bytes: int = Field(default=20 * 1024 * 1024, gt=0)
    job_duration_s: float = Field(default=0.0, ge=0)
    """How long a ticket job runs before it ends (0: it ends before the next request is handled)."""

    @field_validator("rate_limit", "oauth_rate_limit")
    @classmethod
    def _rate_parses(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    @field_validator("faults")
    @classmethod
    def _faults_parse(cls, value: str | dict[str, Any] | FaultConfig | None) -> FaultConfig | None:
        return None if value is None else parse_fault_config(value)

    @model_validator(mode="after")
    def _domains_unique(self) -> SandboxSettings:
        domains = [a.domain for a in self.accounts]
        if len(set(domains)) != len(domains):
            raise ValueError(f"account domains must be unique, got {domains}")
        return self

    def fault_config(self) -> FaultConfig:
        """The configured faults (an empty configuration when none)."""
        return self.faults if isinstance(self.faults, FaultConfig) else FaultConfig()

    @classmethod
    def from_cli(cls, rate_limit: str = "40/20s", faults: str | None = None, seed: int | None = None,
                 accounts: list[str] | None = None, job_duration_s: float = 0.0) -> SandboxSettings:
        """Settings from the command line's strings (``--account`` specs replace the default account)."""
        kwargs: dict[str, Any] = {"rate_limit": rate_limit, "faults": faults, "seed": seed,
                                  "job_duration_s": job_duration_s}
        if accounts:
            kwargs["accounts"] = parse_account_specs(accounts)
        return cls(**kwargs)


def parse_account_specs(specs: list[str]) -> list[AccountSettings]:
    """Accounts from ``domain:email:apikey[:role[:oauth_token]]`` strings; specs sharing a domain add
    users to the same account. Raises ``ValueError`` with the offending spec."""
    users: dict[str, list[UserSettings]] = {}
    for spec in specs:
        parts = spec.split(":")
        if len(parts) < 3 or len(parts) > 5 or not all(parts[:3]):
            raise ValueError(f"account spec {spec!r} is not domain:email:apikey[:role[:oauth_token]]")
        domain, email, api_key = parts[0].lower(), parts[1], parts[2]
        role = parts[3] if len(parts) > 3 and parts[3] else "admin"
        if role not in ROLES:
            raise ValueError(f"account spec {spec!r}: role must be one of {', '.join(ROLES)}")
        token = parts[4] if len(parts) > 4 and parts[4] else None
        users.setdefault(domain, []).append(
            UserSettings(email=email, api_key=api_key, oauth_token=token, role=role)  # type: ignore[arg-type]
        )
    return [AccountSettings(domain=domain, users=members) for domain, members in users.items()]
