"""`provider-gateway demo` as a newcomer runs it: a subprocess, driven over HTTP like a browser.

Both install flows go through the bundled simulators' consent screens (and, for Teams, the
admin's sign-in) and the gateway's real callbacks; the page's config is read from `/` as the
page's script reads it.
"""

from __future__ import annotations

import html
import json
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.demo_process import console_script, running_demo
from tests.support import posted_message

TENANT = {"object_id": "acme-demo", "collection": "$tenants"}
SLACK_TENANT = {
    "access_token_object[object_id]": "acme-demo",
    "access_token_object[collection]": "$tenants",
}
TEAMS_TENANT = {
    "ms_teams_tenant_object[object_id]": "acme-demo",
    "ms_teams_tenant_object[collection]": "$tenants",
}


@dataclass
class Demo:
    url: str
    banner: str
    secret_key: str
    config: dict[str, Any]

    def public_headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.config['public_key']}",
            "X-Knock-User-Token": self.config["user_token"],
        }

    def secret_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}

    def channel_data_path(self, channel_id: str) -> str:
        return f"{self.url}/v1/objects/$tenants/acme-demo/channel_data/{channel_id}"


@pytest.fixture(scope="module")
def demo_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with running_demo(tmp_path_factory.mktemp("demo")) as (url, banner):
        yield url, banner


@pytest.fixture
async def demo(demo_process: tuple[str, str]) -> Demo:
    url, banner = demo_process
    secret = re.search(r"secret key\s+(sk_\S+)", banner)
    assert secret, banner
    async with aiohttp.ClientSession() as session, session.get(f"{url}/") as page:
        assert page.status == 200
        text = await page.text()
    assert "Connect to Slack" in text
    assert "Connect to Microsoft Teams" in text
    match = re.search(r'<script type="application/json" id="demo-config">(.*?)</script>', text)
    assert match, text
    return Demo(url, banner, secret.group(1), json.loads(match.group(1)))


def test_the_banner_names_the_url_and_the_keys_it_created(
    demo_process: tuple[str, str],
) -> None:
    url, banner = demo_process
    assert f"Open {url}/" in banner
    for label in ("public key        pk_", "secret key        sk_", "user token        ey"):
        assert label in banner


async def _consent(session: aiohttp.ClientSession, url: str, decision: str) -> str:
    """Open a simulator's consent screen, press a button; returns where it redirects."""
    async with session.get(url) as screen:
        assert screen.status == 200, await screen.text()
        form = await screen.text()
    state = re.search(r'name="state" value="([^"]*)"', form)
    assert state, form
    async with session.post(
        url,
        data={"state": html.unescape(state.group(1)), "decision": decision},
        allow_redirects=False,
    ) as chosen:
        assert chosen.status == 302
        return chosen.headers["Location"]


async def _callback(
    session: aiohttp.ClientSession, location: str, status: int = 200
) -> dict[str, Any]:
    async with session.get(location, allow_redirects=False) as page:
        assert page.status == status
        return posted_message(await page.text())


async def _json(response: aiohttp.ClientResponse, status: int = 200) -> Any:
    assert response.status == status, await response.text()
    return await response.json()


async def _disconnect(
    session: aiohttp.ClientSession,
    demo: Demo,
    provider_api: str,
    tenant: dict[str, str],
    not_set: str,
) -> None:
    """revoke_access as the page's Disconnect calls it; auth_check then says "not set"."""
    headers = demo.public_headers()
    async with session.put(f"{provider_api}/revoke_access", params=tenant, headers=headers) as r:
        assert await _json(r) == "ok"
    async with session.get(f"{provider_api}/auth_check", params=tenant, headers=headers) as r:
        assert (await _json(r, 403))["message"] == not_set


def _slack_authorize_url(demo: Demo, nonce: str) -> str:
    state = {
        "nonce": nonce,
        "redirect_url": f"{demo.url}/",
        "access_token_object": TENANT,
        "channel_id": demo.config["slack"]["channel_id"],
        "public_key": demo.config["public_key"],
        "user_token": demo.config["user_token"],
    }
    query = {
        "state": json.dumps(state),
        "client_id": demo.config["slack"]["client_id"],
        "scope": demo.config["slack"]["scope"],
    }
    return str(aiohttp.client.URL(demo.config["slack"]["authorize_url"]).with_query(query))


async def test_slack_connect_pick_two_channels_and_disconnect(demo: Demo) -> None:
    slack = f"{demo.url}/v1/providers/slack/{demo.config['slack']['channel_id']}"
    stored_at = demo.channel_data_path(demo.config["slack"]["channel_id"])
    headers = demo.public_headers()
    async with aiohttp.ClientSession() as session:
        nonce = str(uuid.uuid4())
        location = await _consent(session, _slack_authorize_url(demo, nonce), "allow")
        assert location.startswith(f"{demo.url}/providers/slack/authenticate?")
        assert await _callback(session, location) == {"type": "authComplete", "nonce": nonce}

        async with session.get(f"{slack}/auth_check", params=SLACK_TENANT, headers=headers) as r:
            # The simulator grants what the page asks for: no missing_scopes.
            assert await _json(r) == {"connection": {"ok": True}}
        params = {
            **SLACK_TENANT,
            "query_options[limit]": "200",
            "query_options[types]": "private_channel,public_channel",
        }
        async with session.get(f"{slack}/channels", params=params, headers=headers) as r:
            listing = await _json(r)
        names = {channel["name"]: channel["id"] for channel in listing["slack_channels"]}
        assert {"general", "alerts", "leadership", "payments-oncall"} <= set(names)
        picked = [{"channel_id": names["alerts"]}, {"channel_id": names["leadership"]}]
        async with session.put(
            stored_at, json={"data": {"connections": picked}}, headers=headers
        ) as r:
            assert (await _json(r))["data"]["connections"] == picked

        async with session.get(stored_at, headers=demo.secret_headers()) as r:
            stored = (await _json(r))["data"]
        assert stored["connections"] == picked
        assert stored["token"]["access_token"].startswith("xoxb-demo-")

        await _disconnect(session, demo, slack, SLACK_TENANT, "Access token not set.")
        async with session.get(stored_at, headers=demo.secret_headers()) as r:
            assert not (await _json(r))["data"].get("token")


def _curl(line: str) -> Any:
    """Run a banner line as printed, through a shell, as someone pasting it would."""
    ran = subprocess.run(
        ["bash", "-c", line], capture_output=True, text=True, timeout=30, check=True
    )
    return json.loads(ran.stdout)


async def test_the_printed_curl_lines_run_as_they_are(demo: Demo) -> None:
    lines = [line.strip() for line in demo.banner.splitlines() if line.strip().startswith("curl")]
    assert all(line.startswith("curl -g -H 'Authorization: Bearer sk_") for line in lines)
    by_kind = {
        re.sub(r".*/v1/(?:providers/)?([^/]+)/[^/]+/([a-z_]+)['?].*", r"\1 \2", line): line
        for line in lines
    }
    slack = f"{demo.url}/v1/providers/slack/{demo.config['slack']['channel_id']}"
    async with aiohttp.ClientSession() as session:
        nonce = str(uuid.uuid4())
        location = await _consent(session, _slack_authorize_url(demo, nonce), "allow")
        assert (await _callback(session, location))["type"] == "authComplete"
        try:
            assert _curl(by_kind["slack auth_check"]) == {"connection": {"ok": True}}
            listed = _curl(by_kind["slack channels"])
            assert len(listed["slack_channels"]) == 5
            assert listed["next_cursor"]
            assert _curl(by_kind["ms-teams auth_check"])["message"] == (
                "Microsoft Teams tenant ID not set."
            )
            assert _curl(by_kind["ms-teams teams"])["status"] == 403
            [channel_data] = [line for line in lines if "/channel_data/" in line]
            assert _curl(channel_data)["data"]["token"]["access_token"].startswith("xoxb-")
        finally:
            await _disconnect(session, demo, slack, SLACK_TENANT, "Access token not set.")


async def test_a_cancelled_slack_consent_fails_and_stores_nothing(demo: Demo) -> None:
    other_tenant = {**TENANT, "object_id": "cancelled-tenant"}
    async with aiohttp.ClientSession() as session:
        nonce = str(uuid.uuid4())
        url = _slack_authorize_url(demo, nonce).replace("acme-demo", other_tenant["object_id"])
        location = await _consent(session, url, "cancel")
        message = await _callback(session, location, 400)
        assert message["type"] == "authFailed"
        assert message["nonce"] == nonce
        path = demo.channel_data_path(demo.config["slack"]["channel_id"])
        async with session.get(
            path.replace("acme-demo", "cancelled-tenant"), headers=demo.secret_headers()
        ) as r:
            assert r.status == 404


async def test_teams_consent_pick_two_channels_and_disconnect(demo: Demo) -> None:
    teams = f"{demo.url}/v1/providers/ms-teams/{demo.config['teams']['channel_id']}"
    stored_at = demo.channel_data_path(demo.config["teams"]["channel_id"])
    headers = demo.public_headers()
    state = {
        "redirect_url": f"{demo.url}/",
        "ms_teams_tenant_object": TENANT,
        "channel_id": demo.config["teams"]["channel_id"],
        "public_key": demo.config["public_key"],
        "user_token": demo.config["user_token"],
    }
    consent_url = aiohttp.client.URL(demo.config["teams"]["consent_url"]).with_query(
        state=json.dumps(state),
        client_id=demo.config["teams"]["client_id"],
        redirect_uri=demo.config["teams"]["redirect_uri"],
    )
    async with aiohttp.ClientSession() as session:
        location = await _consent(session, str(consent_url), "allow")
        assert "admin_consent=True" in location
        # The gateway stores nothing yet: it sends the popup to the admin's sign-in, on the
        # simulator's browser-facing site, which comes straight back with a code.
        async with session.get(location, allow_redirects=False) as consented:
            assert consented.status == 302, await consented.text()
            sign_in = aiohttp.client.URL(consented.headers["Location"])
        simulator = aiohttp.client.URL(demo.config["teams"]["consent_url"]).origin()
        assert sign_in.origin() == simulator
        assert sign_in.path.endswith("/oauth2/v2.0/authorize")
        assert sign_in.query["redirect_uri"] == demo.config["teams"]["redirect_uri"]
        async with session.get(sign_in, allow_redirects=False) as signed_in:
            assert signed_in.status == 302, await signed_in.text()
            back = signed_in.headers["Location"]
        assert back.startswith(f"{demo.config['teams']['redirect_uri']}?code=")
        assert await _callback(session, back) == {"type": "authComplete"}

        async with session.get(f"{teams}/auth_check", params=TEAMS_TENANT, headers=headers) as r:
            connection = (await _json(r))["connection"]
        # The simulator's app tokens carry both roles: no missing_permissions.
        assert set(connection) == {"ok", "ms_teams_tenant_id"}
        assert connection["ok"] is True
        found: list[dict[str, Any]] = []
        params: dict[str, str] = dict(TEAMS_TENANT)
        while True:  # the simulator pages by two: the skip token must round-trip
            async with session.get(f"{teams}/teams", params=params, headers=headers) as r:
                page = await _json(r)
            found += page["ms_teams_teams"]
            if not page["skip_token"]:
                break
            params = {**TEAMS_TENANT, "query_options[$skiptoken]": page["skip_token"]}
        by_name = {team["displayName"]: team["id"] for team in found}
        assert sorted(by_name) == ["Engineering", "Leadership", "Support"]
        engineering = by_name["Engineering"]
        async with session.get(
            f"{teams}/channels", params={**TEAMS_TENANT, "team_id": engineering}, headers=headers
        ) as r:
            channels = {c["displayName"]: c["id"] for c in (await _json(r))["ms_teams_channels"]}
        assert sorted(channels) == ["Deploys", "General", "On-call"]
        picked = [
            {"ms_teams_team_id": engineering, "ms_teams_channel_id": channels["Deploys"]},
            {"ms_teams_team_id": engineering, "ms_teams_channel_id": channels["On-call"]},
        ]
        async with session.put(
            stored_at, json={"data": {"connections": picked}}, headers=headers
        ) as r:
            await _json(r)
        async with session.get(stored_at, headers=demo.secret_headers()) as r:
            stored = (await _json(r))["data"]
        assert stored["connections"] == picked
        assert re.fullmatch(r"[0-9a-f-]{36}", stored["ms_teams_tenant_id"])

        await _disconnect(session, demo, teams, TEAMS_TENANT, "Microsoft Teams tenant ID not set.")
        async with session.get(stored_at, headers=demo.secret_headers()) as r:
            assert not (await _json(r))["data"].get("ms_teams_tenant_id")


async def test_the_page_and_its_script_are_served_with_a_strict_policy(demo: Demo) -> None:
    async with aiohttp.ClientSession() as session:
        for path, kind in (("/", "text/html"), ("/demo/page.js", "text/javascript")):
            async with session.get(f"{demo.url}{path}") as response:
                assert response.status == 200
                assert response.content_type == kind
                assert "script-src 'self'" in response.headers["Content-Security-Policy"]


async def test_the_page_refuses_a_rebound_host_name(demo: Demo) -> None:
    """A site that points its own DNS name at 127.0.0.1 must not read the page's user token."""
    async with aiohttp.ClientSession() as session:
        for host in ("evil.example", f"evil.example:{demo.url.rsplit(':', 1)[1]}"):
            for path in ("/", "/demo/page.js"):
                async with session.get(f"{demo.url}{path}", headers={"Host": host}) as response:
                    assert response.status == 421
                    assert "eyJ" not in await response.text()


def test_a_taken_port_is_one_line_naming_another(tmp_path: Path) -> None:
    executable = console_script()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run(
            [executable, "demo", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=tmp_path,
            check=False,
        )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"provider-gateway: error: cannot listen on 127.0.0.1:{port} (Address already in use); "
        f"try --port {port + 1}"
    )
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == []
