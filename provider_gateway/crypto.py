"""Encryption key ring for data at rest: Fernet keys, newest first, rotatable."""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from provider_gateway.config import ConfigError, Secret, Settings

log = logging.getLogger(__name__)

GENERATED_KEY_FILE = "encryption.key"


class UndecryptableError(Exception):
    """Stored ciphertext matches none of the configured keys (a key was dropped too early)."""


class KeyRing:
    """Encrypts with the newest key; decrypts with any key of the ring."""

    def __init__(self, keys: tuple[Secret, ...]) -> None:
        if not keys:
            raise ValueError("a key ring needs at least one key")
        self._primary = Fernet(keys[0].reveal())
        self._ring = MultiFernet([Fernet(key.reveal()) for key in keys])
        self._raw = tuple(base64.urlsafe_b64decode(key.reveal()) for key in keys)
        self.size = len(keys)
        # Set when a request met stored data no key decrypts; /readyz then answers 503. Keys
        # only change with a restart, so it stays set until then.
        self.unreadable: str | None = None

    def mark_unreadable(self, reason: str) -> None:
        if self.unreadable is None:
            self.unreadable = reason

    def encrypt(self, plaintext: bytes) -> str:
        return self._ring.encrypt(plaintext).decode("ascii")

    def decrypt(self, token: str) -> bytes:
        try:
            return self._ring.decrypt(token.encode("ascii"))
        except InvalidToken:
            raise UndecryptableError(
                "stored data matches none of GATEWAY_ENCRYPTION_KEYS; "
                "was a key removed before rotate-encryption-key ran?"
            ) from None

    def is_current(self, token: str) -> bool:
        """True when `token` is already encrypted under the newest key."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except InvalidToken:
            return False
        return True

    def rotate(self, token: str) -> str:
        """Re-encrypt `token` under the newest key."""
        try:
            return self._ring.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise UndecryptableError(
                "stored data matches none of GATEWAY_ENCRYPTION_KEYS"
            ) from None

    def derive(self, purpose: bytes) -> tuple[bytes, ...]:
        """A 32-byte key per ring key (newest first) for `purpose`, derived with HKDF-SHA256:
        other uses of the keys (blind indexes) never touch the encryption keys themselves."""
        return tuple(
            HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(raw)
            for raw in self._raw
        )


class SealedSecret:
    """A stored secret that is decrypted only when revealed, so listings never need the key."""

    __slots__ = ("_ciphertext", "_key_ring")

    def __init__(self, ciphertext: str, key_ring: KeyRing) -> None:
        self._ciphertext = ciphertext
        self._key_ring = key_ring

    def reveal(self) -> str:
        return self._key_ring.decrypt(self._ciphertext).decode("utf-8")

    def __repr__(self) -> str:
        return "SealedSecret('**********')"

    __str__ = __repr__


def load_key_ring(settings: Settings) -> KeyRing:
    """The configured keys, or on SQLite a key generated once into the data dir (with a
    warning). A shared database never gets a generated key: each replica would make its own."""
    if settings.encryption_keys:
        return KeyRing(settings.encryption_keys)
    if not settings.is_sqlite:
        raise ConfigError(
            "GATEWAY_ENCRYPTION_KEYS is required with a PostgreSQL database (make a key with: "
            "python -c 'from cryptography.fernet import Fernet; "
            "print(Fernet.generate_key().decode())')"
        )
    return KeyRing((_generated_key(settings.data_dir),))


def _generated_key(data_dir: Path) -> Secret:
    path = data_dir / GENERATED_KEY_FILE
    if path.exists():
        return Secret(path.read_text(encoding="ascii").strip())
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = Fernet.generate_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(key + b"\n")
    log.warning(
        "GATEWAY_ENCRYPTION_KEYS is unset: generated an encryption key into %s; "
        "back it up, or set GATEWAY_ENCRYPTION_KEYS for production",
        path,
    )
    return Secret(key.decode("ascii"))
