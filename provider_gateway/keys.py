"""Generation and hashing of API keys and user-token signing keys."""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

KeyKind = Literal["public", "secret"]
_PREFIX: dict[KeyKind, str] = {"public": "pk_", "secret": "sk_"}


@dataclass(frozen=True)
class SigningKeyPair:
    private_pem: str
    public_pem: str


def new_api_key(kind: KeyKind) -> str:
    return _PREFIX[kind] + secrets.token_urlsafe(32)


# new_api_key makes 43 random characters; a declared key needs at least 32 of them, and enough
# distinct ones that a placeholder ("sk_" + "x" * 32) does not pass for one.
MIN_KEY_RANDOM_CHARS = 32
_MIN_DISTINCT_CHARS = 12
_URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def is_strong_api_key(key: str) -> bool:
    body = key[3:]
    return (
        api_key_kind(key) is not None
        and len(body) >= MIN_KEY_RANDOM_CHARS
        and _URL_SAFE.match(body) is not None
        and len(set(body)) >= _MIN_DISTINCT_CHARS
    )


def api_key_kind(key: str) -> KeyKind | None:
    for kind, prefix in _PREFIX.items():
        if key.startswith(prefix):
            return kind
    return None


def hash_api_key(key: str) -> str:
    """SHA-256 is enough: API keys carry 256 random bits, so there is nothing to brute-force."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hint(key: str) -> str:
    return f"{key[:3]}...{key[-4:]}"


def new_signing_key() -> SigningKeyPair:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return SigningKeyPair(private_pem, public_pem_of(private))


def public_pem_of(private: rsa.RSAPrivateKey) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
