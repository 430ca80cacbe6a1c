"""What a body of POST/PUT /credentials may say: a secret given is stored encrypted (never as given), a
reference stays within the worker's policy, and what the API shows never holds a secret."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from worker.core.config.base import ConfigError
from worker.core.store.credentials import ENCRYPTED, ReferencePolicy, check_body, credential_of, public_view

POLICY = ReferencePolicy(env_prefix="GORGIAS_", reserved_env=frozenset({"GORGIAS_CONTROL_TOKEN"}),
                         file_dirs=("/etc/gorgias/keys",), origins=("http://127.0.0.1:8080",),
                         reserved_files=frozenset({"/etc/gorgias/keys/control-token"}))
KEY = "plain-key-0b1e"


def body(**changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": "acme-support", "domain": "acme", "username": "agent@acme.com", "api_key": KEY}
    doc.update(changes)
    return {k: v for k, v in doc.items() if v is not None}


def problems(doc: dict[str, Any], **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        check_body(doc, None, POLICY, **kwargs)
    return caught.value.problems


def test_a_secret_given_is_taken_out_of_the_document_and_the_credential_is_stored() -> None:
    checked = check_body(body(), None, POLICY)
    assert checked.secrets == {"api_key": KEY}
    assert KEY not in orjson.dumps(checked.document).decode()
    assert checked.document["stored"] is True
    assert checked.credential.secret().stored == "acme-support/api_key"
    assert checked.credential.secret().describe() == "the credentials store (acme-support/api_key, encrypted)"


def test_a_reference_is_stored_as_the_file_writes_it() -> None:
    checked = check_body(body(api_key=None, api_key_env="GORGIAS_ACME_KEY"), None, POLICY)
    assert checked.secrets == {} and "stored" not in checked.document
    assert checked.credential.secret().env == "GORGIAS_ACME_KEY"
    oauth = check_body({"name": "o", "domain": "acme", "auth": "oauth", "access_token": "tok-1"}, None, POLICY)
    assert oauth.secrets == {"access_token": "tok-1"}


@pytest.mark.parametrize(("changes", "expected"), [
    ({"api_key": None, "api_key_env": "KAFKA_PASSWORD"}, "may name only variables starting with 'GORGIAS_'"),
    ({"api_key": None, "api_key_env": "GORGIAS_CONTROL_TOKEN"}, "one of the worker's own secrets"),
    ({"api_key": None, "api_key_file": "/etc/passwd"}, "only files in worker.credential_file_dirs"),
    ({"api_key": None, "api_key_file": "/etc/gorgias/keys/./control-token"}, "one of the worker's own secrets"),
    ({"api_key": None, "api_key_file": "/etc/gorgias/keys/../../passwd"}, "only files in worker.credential_file_dirs"),
    ({"api_key": None, "api_key_env": "GORGIAS_KEY", "base_url": "http://evil.example"},
     "or an origin in worker.credential_origins"),
    ({"api_key": ""}, "api_key: give the secret as a non-empty string"),
    ({"api_key": None}, "give exactly one of api_key_env or api_key_file"),
    ({"api_key_env": "GORGIAS_KEY"}, "a stored credential keeps its api_key in the credentials store"),
    ({"domain": "Not A Domain"}, "domain"),
])
def test_what_a_saved_credential_may_not_do(changes: dict[str, Any], expected: str) -> None:
    assert any(expected in p for p in problems(body(**changes))), problems(body(**changes))


def test_references_within_the_policy_are_taken() -> None:
    inside = check_body(body(api_key=None, api_key_file="/etc/gorgias/keys/acme"), None, POLICY)
    assert inside.credential.api_key_file == "/etc/gorgias/keys/acme"
    sandbox = check_body(body(api_key=None, api_key_env="GORGIAS_KEY", base_url="http://127.0.0.1:8080"), None, POLICY)
    assert sandbox.credential.base_url == "http://127.0.0.1:8080"
    given = check_body(body(base_url="http://127.0.0.1:9999"), None, POLICY)  # its own key: any origin
    assert given.credential.base_url == "http://127.0.0.1:9999"


def test_a_change_without_the_secret_keeps_the_stored_one_only_when_asked() -> None:
    kept = check_body(body(api_key=None, rate_limit={"requests": 20}), None, POLICY, keep_stored=True)
    assert kept.secrets == {} and kept.document["stored"] is True
    assert problems(body(api_key=None)) != []


def test_the_route_s_name_wins_and_a_different_one_is_refused() -> None:
    assert check_body(body(name=None), "acme-support", POLICY).credential.name == "acme-support"
    with pytest.raises(ConfigError, match="but the route names 'other'"):
        check_body(body(), "other", POLICY)


def test_what_is_shown_never_holds_a_secret_or_its_length() -> None:
    stored = {**check_body(body(), None, POLICY).document, ENCRYPTED: {"api_key": "gAAAAA-token"}}
    shown = public_view(stored)
    text = orjson.dumps(shown).decode()
    assert "gAAAAA" not in text and KEY not in text and str(len(KEY)) not in text
    assert shown["secret"] == {"provided": "stored"} and shown["domain"] == "acme"
    referenced = public_view(check_body(body(api_key=None, api_key_env="GORGIAS_KEY"), None, POLICY).document)
    assert referenced["secret"] == {"provided": "env", "env": "GORGIAS_KEY"}
    assert credential_of(stored).stored
