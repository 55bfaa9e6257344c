"""What the fuzz tests found, pinned: each of these answered 500 before its fix."""

from __future__ import annotations

import base64
import json
import time

import pytest
from aiohttp.test_utils import TestClient

from tests.fuzz.conftest import CONNECTED
from tests.fuzz.strategies import jws
from tests.slack.conftest import TEAM
from tests.slack.test_events import sign
from tests.support import World, posted_message, tenant_uri


def _cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "crit", [None, 5, [{}], [["alg"]]], ids=["null", "number", "object", "list"]
)
async def test_a_user_token_with_a_malformed_crit_header_is_401(
    client: TestClient, world: World, crit: object
) -> None:
    """joserfc iterates `crit` before checking its type: a TypeError, so a 500, for anyone
    who holds the public key (it is in every browser), signature or not."""
    token = jws(world.signing_key_pem, {"alg": "RS256", "crit": crit}, {"sub": "u"})
    response = await client.get(
        f"/v1/users/u/channel_data/{world.slack.id}", headers=world.public_headers(token)
    )
    assert response.status == 401
    assert (await response.json())["code"] == "invalid_user_token"


async def test_a_malformed_user_token_in_a_callback_state_is_auth_failed(
    client: TestClient, world: World
) -> None:
    token = jws(world.signing_key_pem, {"alg": "RS256", "crit": None}, {"sub": "u"})
    state = {
        "access_token_object": {"collection": "$tenants", "object_id": CONNECTED},
        "channel_id": world.slack.id,
        "public_key": world.public_key,
        "user_token": token,
    }
    response = await client.get(
        "/providers/slack/authenticate", params={"state": json.dumps(state), "code": "c"}
    )
    assert response.status == 400
    message = posted_message(await response.text())
    assert (message["type"], message["reason"]) == ("authFailed", "invalid_user_token")


async def test_a_signed_grant_that_is_not_a_uri_is_401(client: TestClient, world: World) -> None:
    """urlsplit("http://[") raises ValueError; a signer's mistake is a bad token, not a 500."""
    grants = {"http://[": {"channel_data/read": [{}]}, tenant_uri(CONNECTED): {}}
    token = world.user_token(grants=grants)
    response = await client.get(
        f"/v1/objects/$tenants/{CONNECTED}/channel_data/{world.slack.id}",
        headers=world.public_headers(token),
    )
    assert response.status == 401
    assert (await response.json())["code"] == "invalid_user_token"


@pytest.mark.parametrize("path", ["/v1/users", "/v1/audit_events"])
@pytest.mark.parametrize("page_size", ["²", "٣", "1" * 40, "+5", " 5"])
async def test_a_page_size_not_in_ascii_digits_is_422(
    client: TestClient, world: World, path: str, page_size: str
) -> None:
    """str.isdigit() accepts "²", which int() refuses."""
    response = await client.get(
        path, params={"page_size": page_size}, headers=world.secret_headers()
    )
    assert response.status == 422, await response.text()
    assert (await response.json())["errors"][0]["field"] == "page_size"


@pytest.mark.parametrize(
    ("path", "cursor"),
    [
        ("/v1/audit_events", _cursor("audit:" + "9" * 30)),
        ("/v1/audit_events", _cursor("audit:2147483648")),
        ("/v1/audit_events", _cursor("audit:-1")),
        ("/v1/users", _cursor("user:" + "9" * 18)),
        ("/v1/users", _cursor("user:2147483648")),
    ],
)
async def test_a_cursor_past_any_row_id_is_422(
    client: TestClient, world: World, path: str, cursor: str
) -> None:
    """Ids are int4 on PostgreSQL: a bigger number reached asyncpg (DataError) or SQLite
    (OverflowError) as a 500."""
    response = await client.get(path, params={"after": cursor}, headers=world.secret_headers())
    assert response.status == 422, await response.text()
    assert (await response.json())["errors"][0]["field"] == "after"


@pytest.mark.parametrize("path", ["/v1/users", "/v1/audit_events"])
async def test_the_largest_row_id_is_still_a_cursor(
    client: TestClient, world: World, path: str
) -> None:
    prefix = "audit:" if "audit" in path else "user:"
    response = await client.get(
        path, params={"after": _cursor(f"{prefix}2147483647")}, headers=world.secret_headers()
    )
    assert response.status == 200, await response.text()


@pytest.mark.parametrize("name", ["starting_at", "ending_at"])
@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
async def test_an_audit_bound_outside_utc_time_is_422(
    client: TestClient, world: World, name: str, moment: str
) -> None:
    """Converting either to UTC overflowed datetime (OverflowError, a 500)."""
    response = await client.get(
        "/v1/audit_events", params={name: moment}, headers=world.secret_headers()
    )
    assert response.status == 422, await response.text()
    assert (await response.json())["errors"][0]["field"] == name


@pytest.mark.parametrize("signed", [False, True], ids=["unsigned", "signed"])
async def test_a_slack_event_body_that_is_not_utf8_is_401(
    client: TestClient, world: World, signed: bool
) -> None:
    """slack-sdk decoded the body to verify it: UnicodeDecodeError, a 500 for anyone who sent
    a current timestamp, no secret needed."""
    body = b'{"type": "url_verification", "challenge": "\xaf"}'
    headers = sign(body, int(time.time()))
    if not signed:
        headers["X-Slack-Signature"] = "v0=" + "0" * 64
    response = await client.post("/providers/slack/events", data=body, headers=headers)
    assert response.status == 401, await response.text()
    assert (await response.json())["code"] == "invalid_signature"


@pytest.mark.parametrize("timestamp", ["abc", "1e3", "", "1" * 5000])
async def test_a_slack_event_timestamp_that_is_not_an_integer_is_401(
    client: TestClient, world: World, timestamp: str
) -> None:
    """slack-sdk calls int() on it: ValueError, a 500 for anyone, no secret needed."""
    body = b'{"type": "url_verification", "challenge": "c"}'
    headers = {**sign(body, int(time.time())), "X-Slack-Request-Timestamp": timestamp}
    response = await client.post("/providers/slack/events", data=body, headers=headers)
    assert response.status == 401, await response.text()


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "event_callback", "event": {"type": "app_uninstalled"}, "api_app_id": []},
        {"type": "event_callback", "event": {"type": "app_uninstalled"}, "api_app_id": {}},
        {"type": "event_callback", "event": {"type": "tokens_revoked", "tokens": {"bot": 5}}},
        {"type": "event_callback", "event": {"type": "tokens_revoked", "tokens": {"bot": 1.5}}},
    ],
    ids=["app-id-list", "app-id-object", "bot-number", "bot-float"],
)
async def test_a_signed_slack_event_with_wrong_typed_fields_changes_nothing(
    client: TestClient, world: World, payload: dict[str, object]
) -> None:
    """A list as api_app_id was unhashable in a set test, a number as tokens.bot was
    iterated: TypeErrors, so 500s, to whoever holds the signing secret (Slack retries those)."""
    body = json.dumps({**payload, "team_id": TEAM}).encode()
    response = await client.post(
        "/providers/slack/events", data=body, headers=sign(body, int(time.time()))
    )
    assert response.status == 200, await response.text()
    assert await response.json() == {"ok": True}
    data = await client.get(
        f"/v1/objects/$tenants/{CONNECTED}/channel_data/{world.slack.id}",
        headers=world.secret_headers(),
    )
    assert "token" in (await data.json())["data"]
