"""GET /v1/audit_events and `provider-gateway audit`: filters, pagination, no secrets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp.test_utils import TestClient

from provider_gateway.web.appkeys import GATEWAY
from tests.conftest import KEY_A
from tests.support import World, object_uri


async def _write(client: TestClient, world: World, object_id: str, channel: str = "C1") -> None:
    response = await client.put(
        f"/v1/objects/projects/{object_id}/channel_data/{world.slack.id}",
        json={
            "data": {
                "connections": [{"channel_id": channel}],
                "token": {"access_token": "xoxb-audit-secret"},
            }
        },
        headers=world.secret_headers(),
    )
    assert response.status == 200


async def test_entries_filters_and_pagination(client: TestClient, world: World) -> None:
    for index in range(7):
        await _write(client, world, f"p{index}")
    await client.delete(
        f"/v1/objects/projects/p0/channel_data/{world.slack.id}", headers=world.secret_headers()
    )

    seen: list[int] = []
    after = None
    for _ in range(10):
        params = {
            "page_size": "3",
            "action": "channel_data.set",
            **({"after": after} if after else {}),
        }
        page = await (
            await client.get("/v1/audit_events", params=params, headers=world.secret_headers())
        ).json()
        seen.extend(entry["id"] for entry in page["entries"])
        after = page["page_info"]["after"]
        if after is None:
            break
    assert len(seen) == 7
    assert len(set(seen)) == 7
    assert seen == sorted(seen, reverse=True)

    by_object = await client.get(
        "/v1/audit_events",
        params={"collection": "projects", "object_id": "p0"},
        headers=world.secret_headers(),
    )
    entries = (await by_object.json())["entries"]
    assert [entry["action"] for entry in entries] == ["channel_data.unset", "channel_data.set"]
    assert entries[1]["target"] == "objects/projects/p0"
    assert entries[1]["channel_id"] == world.slack.id
    assert entries[1]["actor"].startswith("secret_key:sk_...")
    assert "xoxb" not in await by_object.text()

    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    empty = await client.get(
        "/v1/audit_events", params={"starting_at": future}, headers=world.secret_headers()
    )
    assert (await empty.json())["entries"] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recent = await client.get(
        "/v1/audit_events",
        params={"starting_at": past, "channel_id": world.slack.id},
        headers=world.secret_headers(),
    )
    actions = [entry["action"] for entry in (await recent.json())["entries"]]
    assert sorted(set(actions)) == ["channel.created", "channel_data.set", "channel_data.unset"]
    assert len(actions) == 9


async def test_only_this_environment_and_only_secret_keys(client: TestClient, world: World) -> None:
    from tests.support import seed_world

    other = await seed_world(client.app[GATEWAY])
    await _write(client, world, "mine")
    theirs = await (await client.get("/v1/audit_events", headers=other.secret_headers())).json()
    assert all(entry["target"] != "objects/projects/mine" for entry in theirs["entries"])

    token = world.user_token(grants={object_uri("projects", "mine"): {"channel_data/read": [{}]}})
    refused = await client.get("/v1/audit_events", headers=world.public_headers(token))
    assert refused.status == 403


async def test_bad_parameters_are_422(client: TestClient, world: World) -> None:
    for params, field in (
        ({"after": "not-a-cursor"}, "after"),
        ({"page_size": "0"}, "page_size"),
        ({"starting_at": "yesterday"}, "starting_at"),
        ({"collection": "projects"}, "object_id"),
    ):
        response = await client.get(
            "/v1/audit_events", params=params, headers=world.secret_headers()
        )
        assert response.status == 422
        assert (await response.json())["errors"][0]["field"] == field


def test_cli_audit(tmp_path: Path, database_url: str) -> None:
    env = {
        **os.environ,
        "GATEWAY_DATA_DIR": str(tmp_path / "data"),
        "GATEWAY_DATABASE_URL": database_url,
        "GATEWAY_ENCRYPTION_KEYS": KEY_A,  # required with PostgreSQL
        "GATEWAY_LOG_FORMAT": "text",
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "provider_gateway", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    assert run("environments", "create", "audited").returncode == 0
    assert run("keys", "create", "--environment", "audited").returncode == 0
    result = run("audit", "--environment", "audited", "--action", "api_keys.created")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)
    assert [entry["action"] for entry in entries] == ["api_keys.created"]
    assert "sk_" in entries[0]["details"]["secret_key"]  # a hint, never the key
    assert len(entries[0]["details"]["secret_key"]) < 12
    bad = run("audit", "--since", "soon")
    assert bad.returncode == 1
    assert "--since" in bad.stderr
