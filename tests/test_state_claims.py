"""One-time OAuth states are known by their content, and keep no id in clear."""

from __future__ import annotations

import json
import time

from joserfc import jwt
from joserfc.jwk import RSAKey

from provider_gateway.models import Recipient
from provider_gateway.state_claims import (
    owner_digest,
    state_key,
    state_material,
    user_token_id,
)
from tests.state_variants import reencoded_token

KEY = RSAKey.generate_key(2048)
TENANT = Recipient.object("$tenants", "acme")
ENTRA_TENANT = "6f8c1d2e-0000-4a6b-9c1d-2e3f4a5b6c7d"


def _token(**claims: object) -> str:
    now = int(time.time())
    return jwt.encode({"alg": "RS256"}, {"sub": "u1", "iat": now, "exp": now + 60, **claims}, KEY)


def test_a_re_encoded_token_has_the_same_id() -> None:
    token = _token()
    padded = token + "=="
    assert reencoded_token(token) != token
    assert user_token_id(reencoded_token(token)) == user_token_id(token)
    assert user_token_id(padded) == user_token_id(token)
    assert user_token_id(_token()) != user_token_id(_token(sub="u2"))


def test_a_token_with_a_jti_is_known_by_it() -> None:
    assert user_token_id(_token(jti="abc")) == "jti:abc"
    assert user_token_id(_token(jti="abc", sub="other")) == "jti:abc"
    assert user_token_id("not a jwt").startswith("raw:")
    assert user_token_id(None) == ""


def test_the_key_depends_on_channel_tenant_nonce_and_token_only() -> None:
    token = _token()
    base = state_material("slack", "ch1", TENANT, "n1", token)
    assert state_material("slack", "ch1", TENANT, "n1", reencoded_token(token)) == base
    for other in (
        state_material("ms-teams", "ch1", TENANT, "n1", token),
        state_material("slack", "ch2", TENANT, "n1", token),
        state_material("slack", "ch1", Recipient.object("$tenants", "beta"), "n1", token),
        state_material("slack", "ch1", Recipient.object("projects", "acme"), "n1", token),
        state_material("slack", "ch1", TENANT, "n2", token),
        state_material("slack", "ch1", TENANT, "n1", _token(sub="u2")),
    ):
        assert state_key("slack", other) != state_key("slack", base)


def test_key_and_owner_hold_no_id_in_clear() -> None:
    token = _token()
    material = state_material("ms-teams", "ch1", TENANT, None, token)
    key, owner = state_key("ms-teams", material), owner_digest(material, ENTRA_TENANT)
    for text in (key, owner):
        for secret in ("acme", "ch1", ENTRA_TENANT, ENTRA_TENANT.replace("-", ""), token):
            assert secret not in text
    # The owner digest is keyed by the state: the same tenant id reads differently elsewhere.
    other = state_material("ms-teams", "ch1", TENANT, None, _token(sub="u2"))
    assert owner_digest(other, ENTRA_TENANT) != owner
    assert json.loads(material)[-1].startswith("sig:")
