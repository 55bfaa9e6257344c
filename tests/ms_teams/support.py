"""Helpers for the Teams tests."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

import aiohttp
from aiohttp.test_utils import TestClient
from yarl import URL

from tests.fakes.microsoft import FakeMicrosoft
from tests.support import World


async def connect_tenant(
    client: TestClient, world: World, tenant_id: str, tenant: str = "acme"
) -> None:
    """Store a tenant's Entra tenant id the way an operator may: through the channel data API."""
    response = await client.put(
        f"/v1/objects/$tenants/{tenant}/channel_data/{world.teams.id}",
        json={"data": {"ms_teams_tenant_id": tenant_id, "connections": []}},
        headers=world.secret_headers(),
    )
    assert response.status == 200, await response.text()


CALLBACK = "/providers/ms-teams/authenticate"


@dataclass
class Popup:
    """TeamsKit's popup as a browser drives it: the consent redirect reaches the gateway's
    callback, which sends it to Entra's sign-in (the fake, over TLS), which sends it back."""

    client: TestClient
    fake: FakeMicrosoft
    tls: ssl.SSLContext

    async def consent(self, **params: str) -> tuple[int, str]:
        """The whole flow from Entra's consent redirect with `params`; the last page."""
        first = await self.client.get(CALLBACK, params=params, allow_redirects=False)
        if first.status != 302:
            return first.status, await first.text()
        status, answer = await self.sign_in(first.headers["Location"])
        if status != 302:
            return status, answer  # Entra's own page: the popup never came back
        return await self.land(answer)

    async def sign_in(self, location: str) -> tuple[int, str]:
        """Open Entra's sign-in; (302, where it redirects) or (status, its page)."""
        assert location.startswith(f"{self.fake.login_url}/"), location
        async with (
            aiohttp.ClientSession() as session,
            session.get(location, ssl=self.tls, allow_redirects=False) as response,
        ):
            if response.status == 302:
                return 302, response.headers["Location"]
            return response.status, await response.text()

    async def land(self, url: str) -> tuple[int, str]:
        """The callback page at `url` (where Entra redirected the popup)."""
        assert URL(url).path == CALLBACK, url
        async with self.client.session.get(url, allow_redirects=False) as response:
            return response.status, await response.text()
