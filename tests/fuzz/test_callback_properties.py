"""The OAuth callbacks (and Slack's events endpoint) over arbitrary query strings: deep JSON,
NUL bytes, huge values, re-encoded and tampered states. Whatever arrives, the answer is below
500, and a callback page posts authComplete or authFailed, never a traceback."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp.test_utils import TestClient
from hypothesis import assume, event, given
from hypothesis import strategies as st
from yarl import URL

from tests.conftest import ALLOWED_ORIGIN
from tests.fakes.slack import FakeSlack
from tests.fuzz.conftest import CONNECTED, TENANT_ID
from tests.fuzz.strategies import (
    any_text,
    json_text,
    json_values,
    scaled,
    signed_tokens,
    state_documents,
)
from tests.ms_teams.support import Popup
from tests.slack.conftest import TEAM
from tests.slack.test_events import sign
from tests.state_variants import STATE_VARIANTS
from tests.support import World, posted_message, tenant_uri

SLACK_CALLBACK = "/providers/slack/authenticate"
TEAMS_CALLBACK = "/providers/ms-teams/authenticate"


def _component_state(world: World, reference_key: str, channel_id: str) -> dict[str, Any]:
    grant = (
        "slack/channels_read"
        if reference_key == "access_token_object"
        else ("ms_teams/channels_read")
    )
    return {
        "nonce": str(uuid.uuid4()),
        "redirect_url": f"{ALLOWED_ORIGIN}/settings",
        reference_key: {"object_id": CONNECTED, "collection": "$tenants"},
        "channel_id": channel_id,
        "public_key": world.public_key,
        "user_token": world.user_token(grants={tenant_uri(CONNECTED): {grant: [{}]}}),
    }


def _tampered_states(world: World, reference_key: str, channel_id: str) -> st.SearchStrategy[str]:
    """A real state (a fresh nonce each time), then re-encoded (the one-time record must see
    through it), one field replaced by anything, or the text cut, padded or doubled."""
    honest = st.builds(lambda: _component_state(world, reference_key, channel_id))

    def tampered(state: dict[str, Any]) -> st.SearchStrategy[str]:
        text = json.dumps(state)
        variant = st.sampled_from(sorted(STATE_VARIANTS)).map(
            lambda name: STATE_VARIANTS[name](text)
        )
        return st.one_of(
            st.just(text),
            variant,
            st.just(text),
            variant,
            st.builds(
                lambda field, value: json.dumps({**state, field: value}),
                st.sampled_from(sorted(state)),
                json_values,
            ),
            signed_tokens(world.signing_key_pem).map(
                lambda token: json.dumps({**state, "user_token": token})
            ),
            st.integers(0, len(text)).map(lambda cut: text[:cut]),
            any_text.map(lambda extra: text + extra),
            st.just(text * 2),
        )

    return honest.flatmap(tampered)


def _callback_params(
    state: st.SearchStrategy[str],
    honest: dict[str, st.SearchStrategy[str]],
    extra: dict[str, st.SearchStrategy[str]],
) -> st.SearchStrategy[dict[str, str]]:
    """As the provider redirects (`honest` beside the state, or an error), then anything."""
    anything = st.fixed_dictionaries(
        {},
        optional={
            "state": st.one_of(state, state_documents("x"), json_text),
            "error": any_text,
            **extra,
        },
    ).flatmap(
        lambda known: st.dictionaries(any_text, any_text, max_size=2).map(
            lambda unknown: {**unknown, **known}
        )
    )
    flow = st.fixed_dictionaries({"state": state, **honest})
    return st.one_of(
        flow, flow, st.fixed_dictionaries({"state": state, "error": any_text}), anything
    )


# aiohttp's parser refuses a request line over 8190 bytes itself (400, text/plain), before
# any of our code runs; the properties are about what reaches the gateway.
MAX_QUERY_BYTES = 7500


async def _assert_callback_page(client: TestClient, path: str, params: dict[str, str]) -> None:
    assume(len(urlencode(params)) <= MAX_QUERY_BYTES)
    response = await client.get(path, params=params, allow_redirects=False)
    page = await response.text()
    assert response.status < 500, (response.status, page[:500])
    assert "Traceback" not in page
    if response.status == 302:  # Teams: on to Entra's sign-in
        event("redirect")
        return
    message = posted_message(page)
    assert message["type"] in {"authComplete", "authFailed"}
    assert (response.status == 200) == (message["type"] == "authComplete")
    event(f"{response.status} {message['type']} {message.get('reason', '')}")


@scaled(80)
@given(data=st.data())
async def test_the_slack_callback_never_answers_5xx(
    client: TestClient, world: World, fake_slack: FakeSlack, data: st.DataObject
) -> None:
    state = _tampered_states(world, "access_token_object", world.slack.id)
    code = st.builds(lambda: fake_slack.issue_code(TEAM))
    params = data.draw(_callback_params(state, {"code": code}, {"code": any_text}))
    await _assert_callback_page(client, SLACK_CALLBACK, params)


@scaled(80)
@given(data=st.data())
async def test_the_teams_callback_never_answers_5xx(
    client: TestClient, world: World, data: st.DataObject
) -> None:
    params = data.draw(
        _callback_params(
            _tampered_states(world, "ms_teams_tenant_object", world.teams.id),
            {"admin_consent": st.just("True"), "tenant": st.just(TENANT_ID)},
            {
                "code": any_text,
                "admin_consent": st.one_of(st.sampled_from(["True", "true", "False"]), any_text),
                "tenant": st.one_of(st.just(TENANT_ID), st.uuids().map(str), any_text),
            },
        )
    )
    await _assert_callback_page(client, TEAMS_CALLBACK, params)


@scaled(40)
@given(data=st.data())
async def test_the_teams_sign_in_hop_never_answers_5xx(
    client: TestClient, world: World, popup: Popup, data: st.DataObject
) -> None:
    """The second hop, after a real first hop: Entra's real answer (a code for our pending
    sign-in) or a forged one, with our state kept, altered, or replaced."""
    state = json.dumps(_component_state(world, "ms_teams_tenant_object", world.teams.id))
    first = await client.get(
        TEAMS_CALLBACK,
        params={"state": state, "admin_consent": "True", "tenant": TENANT_ID},
        allow_redirects=False,
    )
    assert first.status == 302, await first.text()
    signin_state = URL(first.headers["Location"]).query["state"]
    if data.draw(st.booleans()):
        status, landing = await popup.sign_in(first.headers["Location"])
        assert status == 302
        params = dict(URL(landing).query)
    else:
        params = {"state": signin_state, "code": "forged"}
    params["state"] = data.draw(
        st.one_of(
            st.just(params["state"]),
            st.just(signin_state[:-1] + ("A" if signin_state[-1] != "A" else "B")),
            st.from_regex(r"\A[A-Za-z0-9_-]{43}\Z"),
            any_text,
        )
    )
    params.update(
        data.draw(
            st.fixed_dictionaries(
                {}, optional={"code": any_text, "error": any_text, "session_state": any_text}
            )
        )
    )
    await _assert_callback_page(client, TEAMS_CALLBACK, params)


@scaled(40)
@given(
    body=st.one_of(json_text.map(str.encode), st.binary(max_size=256)),
    headers=st.fixed_dictionaries(
        {
            "X-Slack-Signature": st.one_of(st.just("v0=" + "0" * 64), any_text),
            "X-Slack-Request-Timestamp": st.one_of(
                st.just("now"), st.just("now"), st.integers().map(str), any_text
            ),
        },
        optional={
            "Content-Type": st.sampled_from(
                ["application/json", "application/x-www-form-urlencoded", "text/plain"]
            ),
        },
    ),
)
async def test_the_slack_events_endpoint_never_answers_5xx(
    client: TestClient, world: World, body: bytes, headers: dict[str, str]
) -> None:
    """Unsigned (or wrongly signed) requests, inside the time window or not."""
    safe = {k: v for k, v in headers.items() if v.isprintable() and v.isascii()}
    if safe.get("X-Slack-Request-Timestamp") == "now":  # inside Slack's five-minute window
        safe["X-Slack-Request-Timestamp"] = str(int(time.time()))
    response = await client.post("/providers/slack/events", data=body, headers=safe)
    assert response.status < 500, (body[:300], safe, await response.text())
    event(f"status {response.status}")


@scaled(30)
@given(data=st.data())
async def test_a_state_carrying_a_hostile_user_token_is_auth_failed(
    client: TestClient, world: World, fake_slack: FakeSlack, data: st.DataObject
) -> None:
    """The state is the only credential a callback gets: its user token, signed by the
    environment's key over any header and claims, or tampered, must fail cleanly."""
    provider = data.draw(st.sampled_from(["slack", "ms-teams"]))
    slack = provider == "slack"
    state = _component_state(
        world,
        "access_token_object" if slack else "ms_teams_tenant_object",
        world.slack.id if slack else world.teams.id,
    )
    signed = signed_tokens(world.signing_key_pem)
    state["user_token"] = data.draw(st.one_of(signed, signed.map(lambda t: t[:-2] + "AA")))
    params = {"state": json.dumps(state)}
    params.update(
        {"code": fake_slack.issue_code(TEAM)}
        if slack
        else {"admin_consent": "True", "tenant": TENANT_ID}
    )
    await _assert_callback_page(client, SLACK_CALLBACK if slack else TEAMS_CALLBACK, params)


event_payloads = st.fixed_dictionaries(
    {},
    optional={
        "type": st.one_of(st.sampled_from(["event_callback", "url_verification"]), json_values),
        "api_app_id": st.one_of(st.just("A0EVENTS"), json_values),
        "team_id": st.one_of(st.just(TEAM), json_values),
        "enterprise_id": json_values,
        "challenge": json_values,
        "event": st.one_of(
            st.fixed_dictionaries(
                {"type": st.sampled_from(["app_uninstalled", "tokens_revoked"])},
                optional={
                    "tokens": st.one_of(
                        st.fixed_dictionaries({"bot": st.lists(json_values, max_size=3)}),
                        json_values,
                    )
                },
            ),
            json_values,
        ),
    },
)


@scaled(40)
@given(body=st.one_of(event_payloads.map(json.dumps), json_text).map(str.encode) | st.binary())
async def test_a_signed_slack_event_never_answers_5xx(
    client: TestClient, world: World, body: bytes
) -> None:
    """Past the signature check: whatever JSON (or not) a verified request carries."""
    response = await client.post(
        "/providers/slack/events", data=body, headers=sign(body, int(time.time()))
    )
    assert response.status < 500, (body[:300], await response.text())
    event(f"status {response.status}")
