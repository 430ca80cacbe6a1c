"""Credentials defined once under `credentials:` and referred to by name; a file without destinations."""

from __future__ import annotations

from typing import Any

import pytest

from worker.core.config.account import Credential
from worker.core.config.base import ConfigError
from worker.core.config.worker_config import CREDENTIALS_CONTEXT, Destination, parse_config

ACME = {"domain": "acme", "username": "agent@acme.com", "api_key_env": "GORGIAS_API_KEY"}


def destination(name: str = "tickets", credential: Any = "acme") -> dict[str, Any]:
    return {"name": name, "source_topics": ["src"], "credential": credential,
            "endpoint": {"method": "POST", "url": "https://{domain}.gorgias.com/api/tickets"}}


def test_a_destination_refers_to_a_credential_by_name() -> None:
    config = parse_config({"credentials": {"acme": ACME}, "destinations": [destination("a"), destination("b")]})
    assert config.credentials["acme"].name == "acme"
    assert [d.credential for d in config.destinations] == [config.credentials["acme"]] * 2
    assert config.destinations[0].credential.account_key == "acme/basic"


def test_an_unknown_name_is_reported_at_the_destination_with_the_names_known() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"credentials": {"acme": ACME}, "destinations": [destination(credential="acmee")]})
    assert refused.value.problems == [
        "destinations[0].credential: no credential named 'acmee' (known: acme): define it under the top-level "
        "`credentials:`, or write the credential block here"]


def test_an_invalid_named_credential_is_reported_once_where_it_is_defined() -> None:
    with pytest.raises(ConfigError) as refused:
        parse_config({"credentials": {"acme": {"domain": "acme"}}, "destinations": [destination()]})
    assert refused.value.problems == [
        "credentials.acme: username (the API key's user email) is required for auth: basic",
        "destinations[0].credential: the credential named 'acme' is not valid (see credentials.acme)"]


def test_a_credential_s_name_is_its_key() -> None:
    with pytest.raises(ConfigError, match=r"credentials\.acme\.name is 'other': leave it out"):
        parse_config({"credentials": {"acme": {**ACME, "name": "other"}}, "destinations": []})


def test_a_destination_saved_at_runtime_finds_names_in_the_validation_context() -> None:
    known = {"acme": Credential.model_validate({**ACME, "name": "acme"})}
    dest = Destination.model_validate(destination(), context={CREDENTIALS_CONTEXT: known})
    assert dest.credential is known["acme"]
    with pytest.raises(ValueError, match="no credential named 'acme': define it"):
        Destination.model_validate(destination())


def test_a_file_may_define_no_destinations_and_inline_blocks_still_work() -> None:
    assert parse_config({}).destinations == []
    assert parse_config({"credentials": {"acme": ACME}}).credentials["acme"].name == "acme"
    inline = parse_config({"destinations": [destination(credential=ACME)]})
    assert inline.destinations[0].credential.name is None
