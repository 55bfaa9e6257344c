"""/metrics after real traffic: requests by route, upstream calls, cache, installs, 429s."""

from __future__ import annotations

import json
import re

from aiohttp.test_utils import TestClient

from tests.fakes.slack import FakeSlack
from tests.slack.conftest import TEAM
from tests.slack.support import install_token
from tests.slack.test_oauth import slackkit_state
from tests.support import World

TENANT = json.dumps({"collection": "$tenants", "object_id": "acme"})


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and line.split(" ")[0] != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(key) == value for key, value in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_metrics_after_traffic(
    client: TestClient, world: World, fake_slack: FakeSlack
) -> None:
    await install_token(client, world, fake_slack.mint_token(TEAM))
    for _ in range(3):
        response = await client.get(
            f"/v1/providers/slack/{world.slack.id}/channels",
            params={"access_token_object": TENANT},
            headers=world.secret_headers(),
        )
        assert response.status == 200
    await client.get("/v1/nothing", headers=world.secret_headers())
    await client.get(
        "/providers/slack/authenticate",
        params={"code": fake_slack.issue_code(TEAM), "state": slackkit_state(world, tenant="beta")},
    )
    await client.get("/providers/slack/authenticate", params={"error": "access_denied"})

    response = await client.get("/metrics")
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    channels_route = "/v1/providers/slack/{channel_id}/channels"
    assert (
        sample(
            text, "gateway_http_requests_total", route=channels_route, method="GET", status="200"
        )
        == 3
    )
    assert sample(text, "gateway_http_requests_total", route="unmatched", status="404") == 1
    assert sample(text, "gateway_http_request_duration_seconds_count", route=channels_route) == 3
    assert (
        sample(
            text,
            "gateway_upstream_calls_total",
            provider="slack",
            method="conversations.list",
            status="200",
        )
        == 1
    )
    assert sample(text, "gateway_listing_cache_total", result="hit") == 2
    assert sample(text, "gateway_listing_cache_total", result="miss") == 1
    assert sample(text, "gateway_oauth_installs_total", provider="slack", outcome="installed") == 1
    assert (
        sample(text, "gateway_oauth_installs_total", provider="slack", outcome="access_denied") == 1
    )
    assert "gateway_rate_limited_total" in text
    assert "xoxb" not in text


def _series(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


async def test_hostile_label_values_do_not_grow_metrics(client: TestClient, world: World) -> None:
    """Every `error=` value of a callback became an outcome series, and every method the HTTP
    parser accepts (WebDAV's included) a method series."""
    odd_methods = ["PROPFIND", "MKCOL", "PURGE", "LOCK", "REPORT", "SEARCH", "UNLOCK"]
    for provider in ("slack", "ms-teams"):
        await client.get(f"/providers/{provider}/authenticate", params={"error": "warmup"})
    await client.request("COPY", "/nowhere")
    await client.get("/metrics")  # the scrape itself is a route with series of its own
    before = _series(await (await client.get("/metrics")).text())
    for index in range(300):
        for provider in ("slack", "ms-teams"):
            await client.get(f"/providers/{provider}/authenticate", params={"error": f"e_{index}"})
        await client.request(odd_methods[index % len(odd_methods)], "/nowhere")
    text = await (await client.get("/metrics")).text()
    assert _series(text) == before
    assert "e_1" not in text
    assert not [method for method in odd_methods if method in text]
    assert sample(text, "gateway_oauth_installs_total", outcome="provider_error") >= 300
    assert sample(text, "gateway_http_requests_total", method="other") >= 301


async def test_a_standard_provider_error_is_still_named(client: TestClient) -> None:
    response = await client.get("/providers/slack/authenticate", params={"error": "evil<b>"})
    assert '"reason": "provider_error"' in await response.text()
    response = await client.get(
        "/providers/ms-teams/authenticate", params={"error": "consent_required"}
    )
    assert '"reason": "consent_required"' in await response.text()
