"""The /v1/ API over arbitrary path values, query strings, bodies and credentials: never a
5xx, and every 4xx in Knock's error body, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from hypothesis import assume, event, given
from hypothesis import strategies as st
from yarl import URL

from tests.fuzz.conftest import CONNECTED, TENANT_ID
from tests.fuzz.strategies import (
    any_text,
    deep_json,
    json_text,
    json_values,
    object_reference,
    scaled,
)
from tests.support import World, tenant_uri

MAX_URL_BYTES = 7500  # aiohttp's parser refuses a request line over 8190 bytes before us

ROUTES = [
    ("GET", "/v1/providers/slack/{channel_id}/auth_check"),
    ("GET", "/v1/providers/slack/{channel_id}/channels"),
    ("PUT", "/v1/providers/slack/{channel_id}/revoke_access"),
    ("GET", "/v1/providers/ms-teams/{channel_id}/auth_check"),
    ("GET", "/v1/providers/ms-teams/{channel_id}/teams"),
    ("GET", "/v1/providers/ms-teams/{channel_id}/channels"),
    ("PUT", "/v1/providers/ms-teams/{channel_id}/revoke_access"),
    ("GET", "/v1/objects/{collection}/{object_id}/channel_data/{channel_id}"),
    ("PUT", "/v1/objects/{collection}/{object_id}/channel_data/{channel_id}"),
    ("DELETE", "/v1/objects/{collection}/{object_id}/channel_data/{channel_id}"),
    ("GET", "/v1/users/{user_id}/channel_data/{channel_id}"),
    ("PUT", "/v1/users/{user_id}/channel_data/{channel_id}"),
    ("DELETE", "/v1/users/{user_id}/channel_data/{channel_id}"),
    ("GET", "/v1/users/{user_id}"),
    ("PUT", "/v1/users/{user_id}"),
    ("DELETE", "/v1/users/{user_id}"),
    ("GET", "/v1/users"),
    ("GET", "/v1/audit_events"),
]
# Values that parse as numbers, cursors and timestamps only nearly: Unicode digits that
# str.isdigit() accepts and int() refuses, cursors past a 64-bit id, dates at the ends of time.
NEAR_MISSES = st.sampled_from(
    [
        "²",
        "٣",
        "1" * 30,
        "-1",
        "0",
        "1000",
        base64.urlsafe_b64encode(b"audit:" + b"9" * 30).decode(),
        base64.urlsafe_b64encode(b"audit:-1").decode(),
        base64.urlsafe_b64encode(b"user:" + b"9" * 18).decode(),
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "2026-02-30",
        "asc",
        "desc",
    ]
)
values = st.one_of(any_text, NEAR_MISSES)
QUERY_NAMES = [
    "access_token_object",
    "access_token_object[collection]",
    "access_token_object[object_id]",
    "ms_teams_tenant_object",
    "ms_teams_tenant_object[collection]",
    "ms_teams_tenant_object[object_id]",
    "query_options[limit]",
    "query_options.limit",
    "query_options[cursor]",
    "query_options[types]",
    "query_options[exclude_archived]",
    "query_options[team_id]",
    "query_options[$top]",
    "query_options[$filter]",
    "query_options[$skiptoken]",
    "team_id",
    "page_size",
    "after",
    "before",
    "order",
    "include[]",
    "target",
    "collection",
    "object_id",
    "user_id",
    "channel_id",
    "action",
    "starting_at",
    "ending_at",
]


def _reference(key: str) -> st.SearchStrategy[dict[str, str]]:
    """A tenant reference in either form real clients send, honest or not."""
    honest = {"collection": "$tenants", "object_id": CONNECTED}
    return st.one_of(
        st.just({key: json.dumps(honest)}),
        st.just({f"{key}[collection]": "$tenants", f"{key}[object_id]": CONNECTED}),
        object_reference().map(lambda reference: {key: json.dumps(reference)}),
        st.one_of(deep_json, json_text).map(lambda raw: {key: raw}),
    )


queries = st.tuples(
    st.one_of(_reference("access_token_object"), st.just({})),
    st.one_of(_reference("ms_teams_tenant_object"), st.just({})),
    st.dictionaries(
        st.one_of(st.sampled_from(QUERY_NAMES), any_text),
        st.one_of(
            values, st.just(str(uuid.UUID(int=0))), st.just("00000000-0000-4000-8000-000000000000")
        ),
        max_size=4,
    ),
).map(lambda parts: {**parts[0], **parts[1], **parts[2]})

channel_data_bodies = st.fixed_dictionaries(
    {},
    optional={
        "connections": st.one_of(
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "channel_id": json_values,
                        "incoming_webhook": json_values,
                        "user_id": json_values,
                        "ms_teams_channel_id": json_values,
                        "ms_teams_team_id": json_values,
                    },
                ),
                max_size=3,
            ),
            json_values,
        ),
        "token": st.one_of(st.fixed_dictionaries({"access_token": json_values}), json_values),
        "ms_teams_tenant_id": st.one_of(st.just(TENANT_ID), json_values),
    },
)
user_bodies = st.fixed_dictionaries(
    {},
    optional={
        "name": json_values,
        "email": json_values,
        "phone_number": json_values,
        "avatar": json_values,
        "locale": json_values,
        "timezone": st.one_of(st.just("Europe/Paris"), json_values),
        "channel_data": json_values,
        "preferences": json_values,
        "created_at": json_values,
    },
)
bodies = st.one_of(
    channel_data_bodies.map(lambda data: json.dumps({"data": data})),
    user_bodies.map(json.dumps),
    json_text,
    st.binary(max_size=64),
    st.none(),
)


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


def _credentials(world: World) -> st.SearchStrategy[dict[str, str]]:
    grants = {
        tenant_uri(CONNECTED): {
            "slack/channels_read": [{}],
            "ms_teams/channels_read": [{}],
            "channel_data/read": [{}],
            "channel_data/write": [{}],
        }
    }
    granted = st.builds(lambda: world.user_token(grants=grants))
    header = st.one_of(
        st.just({"alg": "RS256", "typ": "JWT"}),
        st.fixed_dictionaries({"alg": st.just("RS256")}, optional={"crit": json_values}),
        st.dictionaries(st.sampled_from(["alg", "typ", "kid", "crit", "jku"]), json_values),
    )
    claims = st.one_of(
        st.fixed_dictionaries(
            {"sub": st.one_of(st.just("user-1"), json_values), "exp": st.just(2_000_000_000)},
            optional={
                "grants": st.one_of(
                    st.dictionaries(
                        st.one_of(st.sampled_from(["http://[", "//x/v1/users/%"]), any_text),
                        json_values,
                        max_size=2,
                    ),
                    json_values,
                ),
                "iat": json_values,
                "jti": json_values,
            },
        ),
        st.dictionaries(st.sampled_from(["sub", "exp", "iat", "nbf", "grants"]), json_values),
        json_values,
    )
    hostile = st.builds(lambda h, c: jws(world.signing_key_pem, h, c), header, claims)
    token = st.one_of(granted, hostile, hostile.map(lambda t: t[:-2] + "AA"), any_text)
    return st.one_of(
        st.just({"Authorization": f"Bearer {world.secret_key}"}),
        st.just({"Authorization": f"Bearer {world.secret_key}"}),
        token.map(
            lambda t: {"Authorization": f"Bearer {world.public_key}", "X-Knock-User-Token": t}
        ),
        any_text.map(lambda key: {"Authorization": f"Bearer {key}"}),
        st.just({}),
    )


def _segment(value: str) -> str:
    return quote(value, safe="$")


@scaled(150)
@given(data=st.data())
async def test_the_api_never_answers_5xx_and_every_4xx_is_knocks_error_body(
    client: TestClient, world: World, data: st.DataObject
) -> None:
    method, template = data.draw(st.sampled_from(ROUTES))
    channel_id = st.one_of(
        st.sampled_from([world.slack.id, world.teams.id, str(uuid.uuid4())]), values
    )
    path = template.format(
        channel_id=_segment(data.draw(channel_id)),
        collection=_segment(data.draw(st.one_of(st.just("$tenants"), values))),
        object_id=_segment(data.draw(st.one_of(st.just(CONNECTED), values))),
        user_id=_segment(data.draw(st.one_of(st.just("user-1"), values))),
    )
    query = data.draw(queries)
    headers = data.draw(_credentials(world))
    headers = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
    if method == "PUT" and data.draw(st.booleans()):
        headers["Idempotency-Key"] = data.draw(
            st.one_of(st.uuids().map(str), st.text("ab", max_size=3))
        )
    body = data.draw(bodies) if method == "PUT" else None
    url = f"{path}?{urlencode(query)}" if query else path
    assume(len(url) <= MAX_URL_BYTES)
    assume(all(len(value) <= MAX_URL_BYTES for value in headers.values()))
    response = await client.request(
        method,
        URL(url, encoded=True),
        data=body.encode() if isinstance(body, str) else body,
        headers={**headers, "Content-Type": "application/json"} if body is not None else headers,
    )
    text = await response.text()
    assert response.status < 500, (method, url, response.status, text[:500])
    event(f"{method} {template} {response.status}")
    if response.status >= 400:
        error: dict[str, Any] = json.loads(text)
        assert {"code", "message", "status", "type"} <= set(error), text
        assert error["status"] == response.status
