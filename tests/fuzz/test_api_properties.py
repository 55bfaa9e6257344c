"""The /v1/ API over arbitrary path values, query strings, bodies and credentials: never a
5xx, and every 4xx in Knock's error body, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp.test_utils import TestClient
from hypothesis import event, given
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
    signed_tokens,
)
from tests.support import World, tenant_uri

TEAM_GUID = "00000000-0000-4000-8000-000000000000"  # the fake Graph's first team
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
values = st.one_of(NEAR_MISSES, any_text, st.just(TEAM_GUID))
# The query names each route reads (anything else is ignored, but sent now and then too).
SLACK_OPTIONS = ["limit", "cursor", "types", "exclude_archived", "team_id"]
TEAMS_OPTIONS = ["$top", "$filter", "$select", "$skiptoken"]
ROUTE_QUERY_NAMES = {
    "slack": [
        *(f"query_options[{name}]" for name in SLACK_OPTIONS),
        *(f"query_options.{name}" for name in SLACK_OPTIONS),
    ],
    "ms-teams": [
        "team_id",
        *(f"query_options[{name}]" for name in TEAMS_OPTIONS),
        *(f"query_options.{name}" for name in TEAMS_OPTIONS),
    ],
    "/v1/users": ["page_size", "after", "before", "order", "include[]"],
    "/v1/audit_events": [
        "collection",
        "object_id",
        "user_id",
        "channel_id",
        "target",
        "action",
        "starting_at",
        "ending_at",
        "page_size",
        "after",
    ],
}


def _cursor(prefix: str, number: str) -> str:
    return base64.urlsafe_b64encode(f"{prefix}{number}".encode()).decode().rstrip("=")


_numbers = st.one_of(
    st.sampled_from(["²", "٣", "0", "1", "100", "101", "1" * 30, " 5", "+5", "-1", "1_0"]),
    st.integers().map(str),
)
_cursors = st.builds(_cursor, st.sampled_from(["audit:", "user:", "", "x:"]), _numbers)
_moments = st.one_of(
    st.sampled_from(["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "2026-02-30"]),
    st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
)
_VALUES_BY_NAME = {
    "page_size": _numbers,
    "after": _cursors,
    "before": _cursors,
    "starting_at": _moments,
    "ending_at": _moments,
    "query_options[limit]": _numbers,
    "query_options.limit": _numbers,
    "query_options[$top]": _numbers,
    "query_options.$top": _numbers,
}


def _values_for(name: str) -> st.SearchStrategy[str]:
    """What parses as the value `name` takes, nearly or not, then anything."""
    specific = _VALUES_BY_NAME.get(name)
    return values if specific is None else st.one_of(specific, specific, values)


def _names(template: str) -> list[str]:
    for key, names in ROUTE_QUERY_NAMES.items():
        if f"/{key}/" in template or template == key:
            return names
    return ["page_size", "after"]


def _reference(key: str) -> st.SearchStrategy[dict[str, str]]:
    """A tenant reference in either form real clients send, honest or not."""
    honest = {"collection": "$tenants", "object_id": CONNECTED}
    return st.one_of(
        st.just({key: json.dumps(honest)}),
        st.just({f"{key}[collection]": "$tenants", f"{key}[object_id]": CONNECTED}),
        object_reference().map(lambda reference: {key: json.dumps(reference)}),
        st.one_of(deep_json, json_text).map(lambda raw: {key: raw}),
    )


def _honest_query(template: str) -> dict[str, str]:
    reference = json.dumps({"collection": "$tenants", "object_id": CONNECTED})
    if "/slack/" in template:
        return {"access_token_object": reference}
    if "/ms-teams/" in template:
        return {"ms_teams_tenant_object": reference, "team_id": TEAM_GUID}
    return {}


def queries(template: str) -> st.SearchStrategy[dict[str, str]]:
    """The route's own query names with near-misses and hostile values, its tenant reference
    (for provider routes), and now and then a name it does not read."""
    reference: st.SearchStrategy[dict[str, str]] = st.just({})
    if "/slack/" in template:
        reference = _reference("access_token_object")
    elif "/ms-teams/" in template:
        reference = _reference("ms_teams_tenant_object")
    names = st.one_of(st.sampled_from(_names(template)), st.sampled_from(_names(template)))
    pairs = st.one_of(
        names.flatmap(lambda name: st.tuples(st.just(name), _values_for(name))),
        st.tuples(any_text, values),
    )
    named = st.lists(pairs, max_size=3).map(dict)
    return st.tuples(st.one_of(reference, reference, st.just({})), named).map(
        lambda parts: {**parts[0], **parts[1]}
    )


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


GRANTS = {
    grant: [{}]
    for grant in (
        "slack/channels_read",
        "ms_teams/channels_read",
        "channel_data/read",
        "channel_data/write",
    )
}


def _honest_credentials(world: World) -> st.SearchStrategy[dict[str, str]]:
    """A secret key, or a public key whose user token is granted everything on the tenant."""
    public = st.builds(
        lambda: world.public_headers(world.user_token(grants={tenant_uri(CONNECTED): GRANTS}))
    )
    return st.one_of(st.just(world.secret_headers()), st.just(world.secret_headers()), public)


def _hostile_credentials(world: World) -> st.SearchStrategy[dict[str, str]]:
    """The public key (every browser has it) with forged or malformed user tokens, tokens the
    environment's key signed over hostile headers and claims, and keys that are not keys."""
    signed = signed_tokens(world.signing_key_pem)
    token = st.one_of(signed, signed, signed.map(lambda t: t[:-2] + "AA"), any_text)
    public = token.map(lambda t: world.public_headers(t))
    return st.one_of(
        public,
        public,
        public,
        any_text.map(lambda key: {"Authorization": f"Bearer {key}"}),
        st.just({}),
    )


def _segment(value: str) -> str:
    return quote(value, safe="$")


async def _send(
    client: TestClient,
    world: World,
    data: st.DataObject,
    route: tuple[str, str],
    credentials: st.SearchStrategy[dict[str, str]],
    *,
    hostile_request: bool = True,
) -> None:
    """One request to `route` with drawn path values, query, body and credentials: below 500,
    and a 4xx is Knock's error body. Without `hostile_request`, only the credentials vary."""
    method, template = route
    own = [world.teams.id if "/ms-teams/" in template else world.slack.id]
    pick = (lambda known: st.sampled_from(known) | values) if hostile_request else st.sampled_from
    path = template.format(
        channel_id=_segment(data.draw(pick([*own, str(uuid.uuid4())]))),
        collection=_segment(data.draw(pick(["$tenants"]))),
        object_id=_segment(data.draw(pick([CONNECTED]))),
        user_id=_segment(data.draw(pick(["user-1"]))),
    )
    query = data.draw(queries(template) if hostile_request else st.just(_honest_query(template)))
    headers = data.draw(credentials)
    headers = {k: v for k, v in headers.items() if v.isascii() and v.isprintable()}
    if method == "PUT" and data.draw(st.booleans()):
        headers["Idempotency-Key"] = data.draw(
            st.one_of(st.uuids().map(str), st.text("ab", max_size=3))
        )
    body = data.draw(bodies) if method == "PUT" else None
    url = f"{path}?{urlencode(query)}" if query else path
    if len(url) > MAX_URL_BYTES or any(len(v) > MAX_URL_BYTES for v in headers.values()):
        event("too long for aiohttp's parser: not sent")
        return
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


@scaled(20)
@given(data=st.data())
async def test_no_route_answers_5xx_and_every_4xx_is_knocks_error_body(
    client: TestClient, world: World, data: st.DataObject
) -> None:
    """Each example sends one request to every route, so every route gets its share."""
    for route in ROUTES:
        await _send(client, world, data, route, _honest_credentials(world))


@scaled(80)
@given(data=st.data())
async def test_hostile_credentials_are_refused_never_5xx(
    client: TestClient, world: World, data: st.DataObject
) -> None:
    route = data.draw(st.sampled_from(ROUTES))
    await _send(client, world, data, route, _hostile_credentials(world), hostile_request=False)
