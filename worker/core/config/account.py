"""A Gorgias account: its domain, how to authenticate, its request budget, and where calls may go."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from worker.core.config.base import (
    GORGIAS_HOST_SUFFIX,
    NAME_PATTERN,
    PLACEHOLDER,
    Model,
    SecretRef,
    reject_inline_secrets,
)


class AuthType(StrEnum):
    BASIC = "basic"  # a user's email and API key
    OAUTH = "oauth"  # a fixed OAuth access token
    OAUTH_APP = "oauth_app"  # an OAuth app: client id and secret, and a refresh token it exchanges for access tokens


SECRET_FIELDS: dict[AuthType, tuple[str, ...]] = {
    AuthType.BASIC: ("api_key",),
    AuthType.OAUTH: ("access_token",),
    AuthType.OAUTH_APP: ("refresh_token", "client_secret"),
}
"""Each auth type's secrets; the first is the one :meth:`Credential.secret` names."""


class RateLimitSettings(Model):
    """The account's request budget (Gorgias: a leaky bucket per account)."""

    enabled: bool = Field(default=True, description="Pace calls to the account's budget; false: no pacing.")
    requests: int | None = Field(
        default=None, ge=1, description="Bucket size; default 40 for API keys, 80 for OAuth apps."
    )
    per_seconds: float = Field(default=20.0, gt=0, description="Seconds for a full bucket to drain.")
    headroom: int = Field(
        default=2, ge=0, description="Slots, and their share of the drain rate, left unused for other integrations."
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
            "A call that has waited this long for the account's budget is overdue: one token in "
            "aged_call_every goes to the oldest overdue call, so no key or destination starves."
        ),
    )
    aged_call_every: int = Field(
        default=4, ge=1, le=1000,
        description=(
            "While calls wait for the budget, at least one token in this many goes to the oldest call past "
            "age_bound_s; the others go to the calls carrying the most records per token (1: every token "
            "goes to overdue calls first, oldest first)."
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

    name: str | None = Field(
        default=None,
        pattern=NAME_PATTERN,
        description="Its name when it is defined once (under the top-level `credentials:`, from its key there) "
        "and destinations refer to it by that name.",
    )
    domain: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="Helpdesk subdomain: `mystore` for mystore.gorgias.com.",
    )
    auth: AuthType = Field(
        default=AuthType.BASIC,
        description="basic (the user's email and API key), oauth (a fixed access token) or oauth_app (client id "
        "and secret, and a refresh token exchanged for access tokens).",
    )
    username: str | None = Field(default=None, description="Email of the user the API key belongs to.")
    api_key_env: str | None = Field(default=None, description="auth: basic: environment variable holding the API key.")
    api_key_file: str | None = Field(default=None, description="auth: basic: file holding the API key.")
    access_token_env: str | None = Field(
        default=None, description="auth: oauth: environment variable holding the access token.",
    )
    access_token_file: str | None = Field(default=None, description="auth: oauth: file holding the access token.")
    client_id: str | None = Field(default=None, min_length=1, description="auth: oauth_app: the app's client id.")
    client_secret_env: str | None = Field(
        default=None, description="auth: oauth_app: environment variable holding the client secret.",
    )
    client_secret_file: str | None = Field(
        default=None, description="auth: oauth_app: file holding the client secret.",
    )
    refresh_token_env: str | None = Field(
        default=None, description="auth: oauth_app: where the first refresh token is (scope `offline`); the "
        "replicas then keep the newest one in the credentials store.",
    )
    refresh_token_file: str | None = Field(
        default=None, description="auth: oauth_app: file holding the first refresh token.",
    )
    stored: bool = Field(
        default=False,
        description="Saved through the credentials API: its secret is in the credentials store, encrypted under "
        "the workers' key (worker.secrets_key_env / _file), not in a variable or a file.",
    )
    base_url: str | None = Field(
        default=None,
        description=(
            "Explicitly allowed non-Gorgias origin to send to instead of https://{domain}.gorgias.com, "
            "e.g. the local sandbox http://127.0.0.1:8080. The Host header stays {domain}.gorgias.com."
        ),
    )
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)

    _reject = model_validator(mode="before")(reject_inline_secrets)

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
        if self.auth is AuthType.BASIC and not self.username:
            raise ValueError("username (the API key's user email) is required for auth: basic")
        if self.auth is AuthType.OAUTH_APP and not self.client_id:
            raise ValueError("client_id (the OAuth app's) is required for auth: oauth_app")
        if self.stored and not self.name:
            raise ValueError("a stored credential needs its name")
        for field in SECRET_FIELDS[self.auth]:
            given = [v for v in (getattr(self, f"{field}_env"), getattr(self, f"{field}_file")) if v is not None]
            if self.stored and given:
                raise ValueError(f"a stored credential keeps its {field} in the credentials store: drop {field}_env "
                                 f"and {field}_file")
            if not self.stored and len(given) != 1:
                raise ValueError(f"give exactly one of {field}_env or {field}_file for auth: {self.auth.value}")
        return self

    @property
    def secret_field(self) -> str:
        """The name of its (first) secret: ``api_key`` (basic), ``access_token`` (oauth), ``refresh_token``."""
        return SECRET_FIELDS[self.auth][0]

    def secret(self) -> SecretRef:
        """Where its (first) secret is: the API key, the access token, or an app's refresh token."""
        return self.secret_ref(self.secret_field)

    def secret_ref(self, field: str) -> SecretRef:
        if self.stored:
            return SecretRef(stored=f"{self.name}/{field}")
        return SecretRef(env=getattr(self, f"{field}_env"), file=getattr(self, f"{field}_file"))

    def secret_refs(self) -> dict[str, SecretRef]:
        """Every secret it needs, by name."""
        return {field: self.secret_ref(field) for field in SECRET_FIELDS[self.auth]}

    @property
    def host(self) -> str:
        return f"{self.domain}{GORGIAS_HOST_SUFFIX}"

    @property
    def origin(self) -> str:
        """Where requests are actually sent."""
        return self.base_url or f"https://{self.host}"

    @property
    def account_key(self) -> str:
        """Identity of the rate-limit bucket: Gorgias limits per account and auth type (an app's tokens are
        OAuth tokens)."""
        auth = AuthType.OAUTH if self.auth is AuthType.OAUTH_APP else self.auth
        return f"{self.domain}/{auth.value}"

    @property
    def token_url(self) -> str:
        """Where an OAuth app's refresh token is exchanged: the account's ``/oauth/token`` (at ``base_url``)."""
        return f"{self.origin}/oauth/token"

    def bucket_size(self) -> int:
        if self.rate_limit.requests is not None:
            return self.rate_limit.requests
        return 40 if self.auth is AuthType.BASIC else 80


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
