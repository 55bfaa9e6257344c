from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from provider_gateway.config import Secret, load_settings
from provider_gateway.crypto import KeyRing, SealedSecret, UndecryptableError, load_key_ring


def test_newest_key_encrypts_and_every_key_decrypts() -> None:
    old, new = Secret(Fernet.generate_key().decode()), Secret(Fernet.generate_key().decode())
    token_under_old = KeyRing((old,)).encrypt(b"xoxb-secret")
    ring = KeyRing((new, old))
    assert ring.decrypt(token_under_old) == b"xoxb-secret"
    assert not ring.is_current(token_under_old)
    rotated = ring.rotate(token_under_old)
    assert ring.is_current(rotated)
    assert KeyRing((new,)).decrypt(rotated) == b"xoxb-secret"
    with pytest.raises(UndecryptableError):
        KeyRing((new,)).decrypt(token_under_old)


def test_a_key_is_generated_once_into_the_data_dir_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings({"GATEWAY_DATA_DIR": str(tmp_path / "data")})
    with caplog.at_level(logging.WARNING):
        first = load_key_ring(settings)
    key_file = tmp_path / "data" / "encryption.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "GATEWAY_ENCRYPTION_KEYS is unset" in caplog.text
    token = first.encrypt(b"payload")
    caplog.clear()
    second = load_key_ring(settings)
    assert second.decrypt(token) == b"payload"
    assert "GATEWAY_ENCRYPTION_KEYS is unset" not in caplog.text


def test_a_sealed_secret_decrypts_only_when_revealed() -> None:
    writer = KeyRing((Secret(Fernet.generate_key().decode()),))
    reader = KeyRing((Secret(Fernet.generate_key().decode()),))
    sealed = SealedSecret(writer.encrypt(b"client-secret"), reader)
    assert "client-secret" not in repr(sealed)  # building and showing it needs no key
    with pytest.raises(UndecryptableError):
        sealed.reveal()
    assert SealedSecret(writer.encrypt(b"client-secret"), writer).reveal() == "client-secret"
