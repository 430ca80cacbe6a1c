"""The secrets of saved credentials: Fernet under the workers' key, rotation with MultiFernet, and what a
worker without the key (or with another one) says."""

from __future__ import annotations

from pathlib import Path

import pytest

from worker.core.config.base import SecretRef
from worker.host.environment import resolve_secret
from worker.host.secret_box import STORED, SecretBox, StoredSecrets, load_box, new_key

SECRET = "gorgias-api-key-7f3a9c"


def test_a_secret_round_trips_and_the_token_does_not_show_it() -> None:
    box = SecretBox.from_text(new_key(), "test")
    token = box.encrypt(SECRET)
    assert SECRET not in token and box.decrypt(token) == SECRET
    assert box.encrypt(SECRET) != token  # a fresh IV every time: equal secrets are not recognisable


def test_rotation_puts_a_new_key_first_re_encrypts_then_drops_the_old_key() -> None:
    old, new = new_key(), new_key()
    token = SecretBox.from_text(old, "test").encrypt(SECRET)
    both = SecretBox.from_text(f"{new},{old}", "test")  # step 1: the new key first, the old one kept
    assert both.keys == 2 and both.decrypt(token) == SECRET
    rotated = both.rotate(token)  # step 2: every stored secret encrypted again (POST /credentials/re-encrypt)
    only_new = SecretBox.from_text(new, "test")  # step 3: the old key dropped
    assert only_new.decrypt(rotated) == SECRET
    with pytest.raises(LookupError, match=r"worker\.secrets_key_env or worker\.secrets_key_file"):
        only_new.decrypt(token)  # a secret nobody re-encrypted is unreadable without the old key


def test_keys_come_from_a_variable_or_a_file_and_mistakes_name_the_setting(tmp_path: Path) -> None:
    a, b = new_key(), new_key()
    assert load_box(None) is None
    box = load_box(SecretRef(env="KEYS"), {"KEYS": f" {a} , {b} "})
    assert box is not None and box.keys == 2
    path = tmp_path / "keys"
    path.write_text(f"{a}\n{b}\n")
    file_box = load_box(SecretRef(file=str(path)))
    assert file_box is not None and file_box.keys == 2
    with pytest.raises(LookupError, match=r"worker.secrets_key_env \(\$KEYS\) is empty"):
        load_box(SecretRef(env="KEYS"), {})
    with pytest.raises(LookupError, match="does not hold Fernet keys"):
        load_box(SecretRef(env="KEYS"), {"KEYS": "not-a-key"})
    with pytest.raises(LookupError, match=r"worker\.secrets_key_file: cannot read"):
        load_box(SecretRef(file=str(tmp_path / "missing")))


def test_a_stored_secret_needs_the_key_and_the_error_names_the_setting() -> None:
    stored = StoredSecrets()
    box = SecretBox.from_text(new_key(), "test")
    stored.set("acme/api_key", box.encrypt(SECRET))
    with pytest.raises(LookupError, match=r"has no key to read it: set worker\.secrets_key_env"):
        stored.reveal("acme/api_key")
    stored.box = SecretBox.from_text(new_key(), "test")  # another deployment's key
    with pytest.raises(LookupError, match="encrypted under a key this worker does not hold"):
        stored.reveal("acme/api_key")
    stored.box = box
    assert stored.reveal("acme/api_key").get_secret_value() == SECRET
    with pytest.raises(LookupError, match="holds no secret other/api_key"):
        stored.reveal("other/api_key")


def test_resolve_secret_reads_stored_secrets_through_the_process_store() -> None:
    box = SecretBox.from_text(new_key(), "test")
    saved_box = STORED.box
    STORED.box = box
    STORED.set("unit-test/api_key", box.encrypt(SECRET))
    try:
        assert resolve_secret(SecretRef(stored="unit-test/api_key")).get_secret_value() == SECRET
    finally:
        STORED.set("unit-test/api_key", None)
        STORED.box = saved_box


def test_the_cli_prints_a_fresh_key_the_worker_accepts() -> None:
    from typer.testing import CliRunner

    from worker.tools.cli import app

    runner = CliRunner()
    first, second = (runner.invoke(app, ["secrets-key"]) for _ in range(2))
    assert first.exit_code == 0 and first.stdout.strip() != second.stdout.strip()
    box = load_box(SecretRef(env="K"), {"K": f"{first.stdout.strip()},{second.stdout.strip()}"})
    assert box is not None and box.keys == 2
