"""What makes an OAuth state "the same state" when it comes back: its content, not its text.

A state is JSON the browser carries, so a trailing space, reordered keys or `\\u`-escapes
give new text for the same authorization attempt. The one-time record is therefore keyed on
the normalised content: provider, channel, tenant object, the component's nonce, and an id of
the user token that survives re-encoding. Neither the key nor its owner holds an id in clear.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json

from provider_gateway.models import Provider, Recipient


def state_material(
    provider: Provider,
    channel_id: str,
    tenant: Recipient,
    nonce: str | None,
    user_token: str | None,
) -> bytes:
    """The canonical bytes one authorization attempt is known by."""
    fields = [
        provider,
        channel_id,
        tenant.kind,
        tenant.collection,
        tenant.id,
        nonce or "",
        user_token_id(user_token),
    ]
    return json.dumps(fields, separators=(",", ":"), ensure_ascii=True).encode()


def state_key(provider: Provider, material: bytes) -> str:
    """The record's name: a digest (the material holds a signed token's id, so it cannot be
    guessed and confirmed), unkeyed so that rotating the key ring never re-opens a used state."""
    return f"oauth-state:{provider}:" + hashlib.sha256(b"key\0" + material).hexdigest()


def owner_digest(material: bytes, owner: str) -> str:
    """The owner (an Entra tenant id, which anyone can look up for a domain) as an HMAC keyed
    by the state's own material: whoever reads Redis cannot test a guessed tenant id."""
    key = hashlib.sha256(b"owner\0" + material).digest()
    return hmac.new(key, owner.encode(), hashlib.sha256).hexdigest()


def user_token_id(token: str | None) -> str:
    """An id of a (verified) user token that does not change when it is re-encoded: its `jti`
    if it has one, else a digest of its signature's bytes (base64url has several spellings of
    the same bytes: unused trailing bits, padding)."""
    if not token:
        return ""
    parts = token.split(".")
    if len(parts) == 3:
        jti = _jti(parts[1])
        if jti is not None:
            return "jti:" + jti
        signature = _decode(parts[2])
        if signature:
            return "sig:" + hashlib.sha256(signature).hexdigest()
    return "raw:" + hashlib.sha256(token.encode()).hexdigest()


def _jti(payload: str) -> str | None:
    try:
        claims = json.loads(_decode(payload) or b"")
    except ValueError:
        return None
    jti = claims.get("jti") if isinstance(claims, dict) else None
    return jti if isinstance(jti, str) and jti else None


def _decode(segment: str) -> bytes | None:
    text = segment.rstrip("=")
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return None
