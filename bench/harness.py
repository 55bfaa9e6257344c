"""Shared set-up for the benchmarks: the fake Slack and a gateway, served on loopback."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.fernet import Fernet
from yarl import URL

from bench.fake_slack import FakeSlack
from provider_gateway.app import RUNNER_OPTIONS, create_app
from provider_gateway.config import Secret, load_settings
from provider_gateway.gateway import Gateway
from provider_gateway.models import Channel
from provider_gateway.web.appkeys import GATEWAY

TEAM = "T0BENCH"
TENANT = json.dumps({"collection": "$tenants", "object_id": "bench"})


@dataclass
class World:
    """One environment with its secret key and a Slack channel (events enabled)."""

    environment_id: str
    secret_key: str
    slack: Channel

    def secret_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.secret_key}"}


SIGNING_SECRET = "bench-signing-secret-0123456789abcdef"  # noqa: S105 - a throwaway for the fake


async def seed_world(gateway: Gateway, name: str) -> World:
    environment = await gateway.environments.create(name, actor="bench")
    issued = await gateway.credentials.issue(environment, actor="bench")
    slack = await gateway.channels.add(
        provider="slack",
        client_id="1111.2222",
        client_secret=Secret("bench-client-secret"),
        app_id="A0BENCH",
        environment_id=environment.id,
        signing_secret=Secret(SIGNING_SECRET),
        actor="bench",
    )
    return World(environment.id, issued.secret_key, slack)


async def drop_redis_prefix(redis_url: str, prefix: str) -> None:
    """Remove every key a benchmark wrote under its own prefix."""
    import redis.asyncio as redis

    client = redis.Redis.from_url(redis_url)
    try:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@dataclass
class Bench:
    gateway_url: str
    slack: FakeSlack
    world: World

    def channels_url(self, **options: str) -> str:
        query = {
            "access_token_object": TENANT,
            **{f"query_options[{k}]": v for k, v in options.items()},
        }
        path = f"{self.gateway_url}/v1/providers/slack/{self.world.slack.id}/channels"
        return str(URL(path).with_query(query))


async def serve(app: web.Application, **runner_options: Any) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, **runner_options)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, f"http://127.0.0.1:{port}"


@asynccontextmanager
async def gateway(
    *,
    channels: int = 200,
    cache_ttl: int = 600,
    redis_url: str | None = None,
    replicas: int = 1,
    rate_limits: str | None = None,
    pacing: bool = True,
) -> AsyncIterator[list[Bench]]:
    """A fake Slack workspace and `replicas` gateways on one SQLite file (and Redis if given).

    `rate_limits` None: the gateway's default limits for callers (secret keys, which the
    benches use, are not limited); `pacing` False turns
    upstream pacing off (for measures of the gateway's own costs, not Slack's rules)."""
    slack = FakeSlack()
    slack_runner, slack_url = await serve(slack.app, access_log=None)
    slack.api_url = f"{slack_url}/api/"
    slack.add_workspace(TEAM, channels)
    with tempfile.TemporaryDirectory() as data_dir:
        env = {
            "GATEWAY_DATA_DIR": data_dir,
            "GATEWAY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "SLACK_API_URL": slack.api_url,
            "GATEWAY_CACHE_TTL_SECONDS": str(cache_ttl),
            "GATEWAY_UPSTREAM_PACING": "on" if pacing else "off",
            "GATEWAY_LOG_LEVEL": "error",
        }
        if rate_limits is not None:
            env["GATEWAY_RATE_LIMITS"] = rate_limits
        if redis_url:
            env |= {
                "GATEWAY_REDIS_URL": redis_url,
                "GATEWAY_REDIS_PREFIX": f"bench-{time.time_ns()}",
            }
        settings = load_settings(env)
        runners, benches = [], []
        for index in range(replicas):
            app = create_app(settings)
            runner, url = await serve(app, **RUNNER_OPTIONS)  # exactly as `serve` runs it
            runners.append(runner)
            if index == 0:
                world = await seed_world(app[GATEWAY], "bench")
                token = slack.mint_token(TEAM)
                async with aiohttp.ClientSession() as session:
                    await session.put(
                        f"{url}/v1/objects/$tenants/bench/channel_data/{world.slack.id}",
                        json={"data": {"token": {"access_token": token}}},
                        headers=world.secret_headers(),
                    )
            benches.append(Bench(url, slack, world))
        try:
            yield benches
        finally:
            for runner in runners:
                await runner.cleanup()
            await slack_runner.cleanup()
            if redis_url:
                await drop_redis_prefix(redis_url, env["GATEWAY_REDIS_PREFIX"])


async def throughput(
    fetch: Callable[[aiohttp.ClientSession], Awaitable[None]], requests: int, concurrency: int
) -> float:
    """Requests per second for `requests` calls of `fetch`, `concurrency` at a time."""
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        for _ in range(min(200, requests)):  # warm connections and caches
            await fetch(session)
        remaining = requests

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await fetch(session)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return requests / (time.perf_counter() - started)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(samples: list[float]) -> float:
    return statistics.median(samples)
