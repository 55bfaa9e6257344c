"""Hostile input for the property tests: text with NUL and control characters, values past
every length limit, JSON nested past the depth limit, and re-encodings of a real state."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import settings
from hypothesis import strategies as st


def scaled(examples: int) -> settings:
    """`examples` in the suite; the explore profile's count when exploring."""
    current = settings.default
    if os.environ.get("HYPOTHESIS_PROFILE", "suite") != "suite":
        return settings(current)
    return settings(current, max_examples=examples)


# Characters a browser or SDK can put in a query string, plus the ones that hurt: NUL, line
# breaks, C1 controls, surrogates' neighbours, and the JSON and bracket punctuation our
# parsers split on.
_HOSTILE_CHARACTERS = st.sampled_from(
    ["\x00", "\n", "\r", "\t", "\x7f", "\x85", "\u2028", "\ufeff", "[", "]", "{", "}", '"', "\\"]
)
hostile_text = st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.one_of(st.characters(codec="utf-8"), _HOSTILE_CHARACTERS), max_size=80),
    st.sampled_from(["", " ", "null", "true", "[]", "{}", "0", "-1", "1e999", "NaN", "$tenants"]),
)
# Just past the limits that matter: 255 (ids), 4096 (state fields), 8 KiB (a whole state).
huge_text = st.sampled_from([255, 256, 4096, 4097, 8192, 8193]).flatmap(
    lambda size: st.sampled_from(["x", "\x00", "é", "["]).map(lambda char: char * size)
)
any_text = st.one_of(hostile_text, huge_text)


def _deep(depth: int, opener: str) -> str:
    closer = {"[": "]", '{"a":': "}"}[opener]
    return opener * depth + "1" + closer * depth


deep_json = st.builds(
    _deep, st.sampled_from([31, 32, 33, 100, 1200, 3000]), st.sampled_from(["[", '{"a":'])
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | any_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
json_text = st.one_of(json_values.map(json.dumps), deep_json, any_text)


def object_reference(values: st.SearchStrategy[Any] = json_values) -> st.SearchStrategy[Any]:
    """`{"collection": …, "object_id": …}` with arbitrary field values, or anything at all."""
    return st.one_of(
        st.fixed_dictionaries({"collection": values, "object_id": values}),
        st.fixed_dictionaries({"collection": st.just("$tenants"), "object_id": values}),
        values,
    )


def state_documents(reference_key: str) -> st.SearchStrategy[str]:
    """A component state as JSON text: each field absent, wrong-typed or hostile."""
    fields = st.fixed_dictionaries(
        {},
        optional={
            "nonce": json_values,
            "redirect_url": st.one_of(json_values, st.just("http://app.example.test/x")),
            reference_key: object_reference(),
            "channel_id": json_values,
            "public_key": json_values,
            "user_token": json_values,
            "branch_slug": json_values,
        },
    )
    return st.one_of(fields.map(json.dumps), json_text)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jws(signing_key_pem: str, header: object, claims: object) -> str:
    """A JWS with any header and claims, signed with the environment's own key: what a
    customer's backend may sign by mistake (or a caller forge, unsigned)."""
    key = serialization.load_pem_private_key(signing_key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    signature = key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{_b64(signature)}"


def signed_tokens(signing_key_pem: str) -> st.SearchStrategy[str]:
    """User tokens the environment's own key signed over hostile headers and claims."""
    header = st.one_of(
        st.just({"alg": "RS256", "typ": "JWT"}),
        st.fixed_dictionaries({"alg": st.just("RS256"), "crit": json_values}),
        st.dictionaries(st.sampled_from(["alg", "typ", "kid", "crit", "jku"]), json_values),
    )
    grant_uris = st.one_of(st.sampled_from(["http://[", "//x/v1/users/%"]), any_text)
    claims = st.one_of(
        st.fixed_dictionaries(
            {"sub": st.one_of(st.just("user-1"), json_values), "exp": st.just(2_000_000_000)},
            optional={
                "grants": st.one_of(
                    st.dictionaries(grant_uris, json_values, max_size=2), json_values
                ),
                "iat": json_values,
                "jti": json_values,
            },
        ),
        st.dictionaries(st.sampled_from(["sub", "exp", "iat", "nbf", "grants"]), json_values),
        json_values,
    )
    return st.builds(lambda h, c: jws(signing_key_pem, h, c), header, claims)
