"""A channel's credentials changed by one process (the CLI) reach another within
CHANNEL_CACHE_SECONDS: a replica does not keep using an old secret for long."""

from __future__ import annotations

import asyncio
import time

from provider_gateway.config import Secret, Settings
from provider_gateway.gateway import Gateway, open_gateway
from provider_gateway.storage.channels import CHANNEL_CACHE_SECONDS


async def test_an_updated_secret_reaches_another_replica_within_the_cache_time(
    gateway: Gateway, settings: Settings
) -> None:
    channel = await gateway.channels.add(
        provider="slack", client_id="1.1", client_secret=Secret("old-secret"), actor="test"
    )
    cached = await gateway.channels.get(channel.id)  # this replica now holds it
    assert cached is not None
    assert cached.client_secret.reveal() == "old-secret"

    async with open_gateway(settings, run_migrations=False) as cli:
        await cli.channels.update(
            channel, client_secret=Secret("new-secret"), app_id="A1", actor="cli"
        )
    updated_at = time.monotonic()

    while True:
        seen = await gateway.channels.get(channel.id)
        assert seen is not None
        if seen.client_secret.reveal() == "new-secret":
            break
        assert time.monotonic() - updated_at < CHANNEL_CACHE_SECONDS + 1
        await asyncio.sleep(0.2)
    assert (seen.client_id, seen.app_id) == ("1.1", "A1")


async def test_a_removed_channel_disappears_from_another_replica(
    gateway: Gateway, settings: Settings
) -> None:
    from provider_gateway.storage.connections import Connections

    channel = await gateway.channels.add(
        provider="slack", client_id="2.2", client_secret=Secret("s"), actor="test"
    )
    assert await gateway.channels.get(channel.id) is not None
    async with open_gateway(settings, run_migrations=False) as cli:
        await Connections(cli.engine, cli.key_ring).remove_channel(
            channel, force=False, actor="cli"
        )
    removed_at = time.monotonic()
    while await gateway.channels.get(channel.id) is not None:
        assert time.monotonic() - removed_at < CHANNEL_CACHE_SECONDS + 1
        await asyncio.sleep(0.2)
