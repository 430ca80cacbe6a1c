"""Settings and the command-line argument formats."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from gorgias_sandbox.settings import SandboxSettings, default_accounts, parse_account_specs


def test_default_account() -> None:
    (acme,) = default_accounts()
    assert acme.domain == "acme"
    assert [(u.email, u.api_key, u.oauth_token, u.role) for u in acme.users] == [
        ("agent@acme.com", "sandbox-api-key", "sandbox-oauth-token", "admin"),
        ("observer@acme.com", "observer-key", None, "observer-agent"),
    ]


def test_account_specs_group_users_by_domain() -> None:
    accounts = parse_account_specs(["acme:a@acme.com:k1", "Globex:g@globex.com:k2:observer-agent",
                                    "acme:b@acme.com:k3:agent:tok-b"])
    assert [a.domain for a in accounts] == ["acme", "globex"]
    assert [(u.email, u.role, u.oauth_token) for u in accounts[0].users] == [
        ("a@acme.com", "admin", None), ("b@acme.com", "agent", "tok-b")]
    assert accounts[1].users[0].role == "observer-agent"


@pytest.mark.parametrize("spec", ["acme:a@acme.com", "acme::k", "acme:a@acme.com:k:chief", "a:b:c:d:e:f",
                                  "127:a@b.c:k", "localhost:a@b.c:k"])
def test_bad_account_specs(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_account_specs([spec])


def test_from_cli() -> None:
    settings = SandboxSettings.from_cli(rate_limit="off", faults="drop=0.5", seed=4,
                                        accounts=["x:a@x.com:k"])
    assert settings.rate_limit == "off" and settings.seed == 4
    assert settings.fault_config().rules[0].kind == "drop"
    assert [a.domain for a in settings.accounts] == ["x"]
    assert SandboxSettings.from_cli().accounts == default_accounts()


@pytest.mark.parametrize("kwargs", [{"rate_limit": "lots"}, {"faults": "boom"}, {"oauth_rate_limit": "1/0s"},
                                    {"accounts": default_accounts() * 2}])
def test_invalid_settings(kwargs: dict[str, object]) -> None:
    with pytest.raises((ValidationError, ValueError)):
        SandboxSettings(**kwargs)  # type: ignore[arg-type]
