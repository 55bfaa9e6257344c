"""The `provider-gateway demo` page clicked through in Chromium (demo_page.mjs), then the
demo's gateway asked with its secret key what the clicks stored."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from tests.demo_process import running_demo
from tests.e2e.node import run_node


async def test_the_demo_page_connects_picks_and_disconnects(
    tmp_path: Path, output_dir: Path
) -> None:
    with running_demo(tmp_path) as (url, banner):
        run = await run_node(["demo_page.mjs", f"{url}/", str(output_dir)], env={}, limit=120)
        assert run.returncode == 0, run.output
        secret = re.search(r"secret key\s+(sk_\S+)", banner)
        ids = dict(re.findall(r"(Slack|Teams) channel id\s+(\S+)", banner))
        assert secret, banner
        headers = {"Authorization": f"Bearer {secret.group(1)}"}
        stored: dict[str, dict[str, object]] = {}
        async with aiohttp.ClientSession(headers=headers) as session:
            for provider, channel_id in ids.items():
                path = f"{url}/v1/objects/$tenants/acme-demo/channel_data/{channel_id}"
                async with session.get(path) as response:
                    assert response.status == 200
                    stored[provider] = (await response.json())["data"]
    assert stored["Slack"]["connections"] == [
        {"channel_id": "C0DEMO0003"},
        {"channel_id": "C0DEMO0007"},
    ]
    assert "token" not in stored["Slack"], "Disconnect removed the bot token"
    teams = stored["Teams"]["connections"]
    assert isinstance(teams, list)
    assert [c["ms_teams_channel_id"] for c in teams] == [
        "19:00011@thread.tacv2",
        "19:00022@thread.tacv2",
    ]
    assert stored["Teams"]["ms_teams_tenant_id"]
