"""Request and event latency at 100,000 tenants against the same measures at 100 tenants.

Gateways on PostgreSQL (by default) and the fake Slack on loopback. Tenants are half Slack
(a bot token each, its own workspace), half Teams (an Entra tenant id each), bulk-inserted as
the channel data store writes them (encrypted, blind-indexed). Two gateways, each on its own
database, hold the baseline and the full number of tenants; every measure alternates between
them call by call (so a busy moment on a shared machine lands on both) and is printed as
ratios (target <= 1.2x; the Slack event <= 20 ms p50). Requests go to as many distinct
tenants at both sizes (spread over the whole table at the full size). Then database bytes per
tenant, and the time `rotate-encryption-key` takes over every row of the full database.

    .venv/bin/python -m bench.scale [--tenants 100000] [--baseline 100] [--samples 300]
        [--database postgresql|sqlite]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
from cryptography.fernet import Fernet
from sqlalchemy import text
from yarl import URL

from bench.fake_slack import FakeSlack
from bench.harness import SIGNING_SECRET, World, median, percentile, seed_world, serve
from provider_gateway.app import RUNNER_OPTIONS, create_app
from provider_gateway.config import Secret, Settings, load_settings
from provider_gateway.gateway import Gateway, open_gateway
from provider_gateway.storage.blind_index import BlindIndex
from provider_gateway.storage.clock import utcnow
from provider_gateway.storage.rotation import rotate_encryption_key
from provider_gateway.storage.schema import channel_data
from provider_gateway.web.appkeys import GATEWAY

ADMIN_POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
INSERT_BATCH = 5000
# A measure makes one call; it returns its own timing (seconds) when only part of it counts.
Measure = Callable[[aiohttp.ClientSession, int], Awaitable[float | None]]


@dataclass
class Scale:
    url: str
    world: World
    gateway: Gateway
    teams_channel_id: str
    slack: FakeSlack
    tenants: int = 0
    active: tuple[int, ...] = ()

    def activate(self, count: int) -> None:
        """Requests go to `count` Slack tenants spread over the whole table (even numbers
        are Slack, odd ones Teams): the same number at both sizes, so in-process memos are
        as warm at 100 tenants as at 100,000, and the difference is what the rows cost."""
        slack_tenants = max(1, self.tenants // 2)
        self.active = tuple(2 * (i * slack_tenants // count) for i in range(count))

    def slack_tenant(self) -> int:
        return random.choice(self.active)

    async def add_tenants(self, upto: int) -> None:
        index, now = BlindIndex(self.gateway.key_ring), utcnow()
        for start in range(self.tenants, upto, INSERT_BATCH):
            rows = []
            for number in range(start, min(upto, start + INSERT_BATCH)):
                payload = _payload(number, self.slack)
                rows.append(
                    {
                        "environment_id": self.world.environment_id,
                        "channel_id": self.world.slack.id
                        if number % 2 == 0
                        else self.teams_channel_id,
                        "recipient_kind": "object",
                        "collection": "$tenants",
                        "recipient_id": f"tenant-{number}",
                        "payload_encrypted": self.gateway.key_ring.encrypt(
                            json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
                        ),
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                        **index.columns(payload),
                    }
                )
            async with self.gateway.engine.begin() as connection:
                await connection.execute(channel_data.insert(), rows)
        self.tenants = upto
        async with self.gateway.engine.connect() as connection:
            if connection.dialect.name == "postgresql":
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.execute(text("ANALYZE channel_data"))


def _payload(number: int, slack: FakeSlack) -> dict[str, Any]:
    if number % 2:
        return {"ms_teams_tenant_id": str(uuid.UUID(int=number)), "connections": []}
    team_id = _team(number)
    return {
        "token": {
            "access_token": slack.mint_token(team_id),
            "team_id": team_id,
            "team_name": f"Workspace {number}",
            "bot_user_id": "U0BOT",
            "app_id": "A0BENCH",
            "scope": "channels:read,groups:read,chat:write",
        },
        "connections": [],
    }


def _team(number: int) -> str:
    return f"T{number:07d}"


def _tenant(number: int) -> str:
    return json.dumps({"collection": "$tenants", "object_id": f"tenant-{number}"})


def measures(scale: Scale) -> dict[str, Measure]:
    headers = scale.world.secret_headers()
    providers = f"{scale.url}/v1/providers/slack/{scale.world.slack.id}"
    warm: list[int] = []

    async def get(session: aiohttp.ClientSession, url: URL) -> None:
        async with session.get(url, headers=headers) as response:
            assert response.status == 200, await response.text()
            await response.read()

    async def auth_check(session: aiohttp.ClientSession, _: int) -> None:
        tenant = _tenant(scale.slack_tenant())
        await get(session, URL(f"{providers}/auth_check").with_query(access_token_object=tenant))

    async def cached_channels(session: aiohttp.ClientSession, sample: int) -> None:
        if not warm:  # the same 20 tenants, listed once before the samples
            warm.extend(scale.slack_tenant() for _ in range(20))
            for number in warm:
                await get(session, _channels_url(providers, number, 0, 200))
        await get(session, _channels_url(providers, warm[sample % len(warm)], 0, 200))

    async def uncached_channels(session: aiohttp.ClientSession, _: int) -> None:
        # A page nobody asked for yet (offset and limit are part of the cache key): a miss.
        offset, limit = random.randrange(20), random.randrange(1, 1000)
        await get(session, _channels_url(providers, scale.slack_tenant(), offset, limit))

    async def put_channel_data(session: aiohttp.ClientSession, sample: int) -> None:
        number = scale.slack_tenant()
        await _put_token(session, scale, number, connections=[{"channel_id": f"C{sample}"}])

    async def app_uninstalled(session: aiohttp.ClientSession, _: int) -> float:
        number = scale.slack_tenant()
        body = json.dumps(
            {
                "type": "event_callback",
                "api_app_id": "A0BENCH",
                "team_id": _team(number),
                "event": {"type": "app_uninstalled"},
                "event_id": f"Ev{uuid.uuid4().hex[:10]}",
            }
        ).encode()
        started = time.perf_counter()
        async with session.post(
            f"{scale.url}/providers/slack/events", data=body, headers=_signed(body)
        ) as response:
            assert response.status == 200, await response.text()
        elapsed = time.perf_counter() - started
        await _put_token(session, scale, number, connections=[])  # reinstall: not measured
        return elapsed

    return {
        "auth_check": auth_check,
        "channels (cached)": cached_channels,
        "channels (uncached)": uncached_channels,
        "channel data PUT": put_channel_data,
        "Slack app_uninstalled": app_uninstalled,
    }


def _channels_url(providers: str, number: int, offset: int, limit: int) -> URL:
    query = {"access_token_object": _tenant(number), "query_options[limit]": str(limit)}
    if offset:
        query["query_options[cursor]"] = base64.b64encode(str(offset).encode()).decode()
    return URL(f"{providers}/channels").with_query(query)


async def _put_token(
    session: aiohttp.ClientSession, scale: Scale, number: int, connections: list[Any]
) -> None:
    token = _payload(number, scale.slack)["token"]
    async with session.put(
        f"{scale.url}/v1/objects/$tenants/tenant-{number}/channel_data/{scale.world.slack.id}",
        json={"data": {"token": token, "connections": connections}},
        headers=scale.world.secret_headers(),
    ) as response:
        assert response.status == 200, await response.text()


def _signed(body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    base = b"v0:" + timestamp.encode() + b":" + body
    digest = hmac.new(SIGNING_SECRET.encode(), base, hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": "application/json",
    }


async def sample(small: Measure, large: Measure, samples: int) -> tuple[list[float], ...]:
    """Milliseconds per call at each size, sequential, the two sizes taking turns (so a busy
    moment on a shared machine lands on both), after a short warm-up."""
    timings: tuple[list[float], list[float]] = ([], [])
    async with aiohttp.ClientSession() as session:
        for number in range(-min(20, samples), samples):
            for measure, into in ((small, timings[0]), (large, timings[1])):
                started = time.perf_counter()
                own = await measure(session, number)
                elapsed = own if own is not None else time.perf_counter() - started
                if number >= 0:
                    into.append(elapsed * 1000)
    return timings


async def database_bytes_per_tenant(scale: Scale) -> float:
    async with scale.gateway.engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            size = await connection.scalar(text("SELECT pg_total_relation_size('channel_data')"))
        else:
            pages = await connection.scalar(
                text("SELECT sum(pgsize) FROM dbstat WHERE name LIKE '%channel_data%'")
            )
            size = pages
    return float(size or 0) / max(1, scale.tenants)


@asynccontextmanager
async def database(kind: str) -> AsyncIterator[str]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/gateway.db"
        return
    name = f"gateway_bench_{uuid.uuid4().hex[:10]}"
    admin = await asyncpg.connect(ADMIN_POSTGRES_URL)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield f"{ADMIN_POSTGRES_URL.rsplit('/', 1)[0]}/{name}"
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


@asynccontextmanager
async def stack(
    kind: str, slack: FakeSlack, key: str
) -> AsyncIterator[tuple[Scale, dict[str, str]]]:
    """A gateway on its own database, with an environment, a Slack and a Teams channel."""
    async with database(kind) as database_url:
        with tempfile.TemporaryDirectory() as data_dir:
            env = {
                "GATEWAY_DATA_DIR": data_dir,
                "GATEWAY_DATABASE_URL": database_url,
                "GATEWAY_ENCRYPTION_KEYS": key,
                "SLACK_API_URL": slack.api_url,
                "GATEWAY_CACHE_TTL_SECONDS": "600",
                # Uncached listings hit a few tenants many times: pacing (Slack's tier 2)
                # would space them seconds apart; this measures what rows cost, not that.
                "GATEWAY_UPSTREAM_PACING": "off",
                "GATEWAY_LOG_LEVEL": "error",
            }
            app = create_app(load_settings(env))
            runner, url = await serve(app, **RUNNER_OPTIONS)
            try:
                gateway = app[GATEWAY]
                world = await seed_world(gateway, "bench")
                teams = await gateway.channels.add(
                    provider="ms-teams",
                    client_id=str(uuid.uuid4()),
                    client_secret=Secret("bench-graph-secret"),
                    environment_id=world.environment_id,
                    actor="bench",
                )
                yield Scale(url, world, gateway, teams.id, slack), env
            finally:
                await runner.cleanup()


async def main(tenants: int, baseline: int, samples: int, kind: str) -> None:
    slack = FakeSlack()
    slack_runner, slack_url = await serve(slack.app, access_log=None)
    slack.api_url = f"{slack_url}/api/"
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    figures: dict[str, tuple[list[float], ...]] = {}
    async with (
        stack(kind, slack, old_key) as (small, _),
        stack(kind, slack, old_key) as (large, env),
    ):
        await small.add_tenants(baseline)
        await large.add_tenants(tenants)
        for scale in (small, large):
            scale.activate(max(1, baseline // 2))
        small_measures, large_measures = measures(small), measures(large)
        for name, measure in large_measures.items():
            figures[name] = await sample(small_measures[name], measure, samples)
        per_tenant = await database_bytes_per_tenant(large)
        # Rotation over every row of the large database, the old key still in the ring.
        rotated = await _rotation(
            load_settings({**env, "GATEWAY_ENCRYPTION_KEYS": f"{new_key},{old_key}"})
        )
    await slack_runner.cleanup()
    _report(figures, baseline, tenants, kind, per_tenant, rotated)


async def _rotation(settings: Settings) -> tuple[int, float]:
    async with open_gateway(settings, run_migrations=False) as gateway:
        report = await rotate_encryption_key(gateway.engine, gateway.key_ring, actor="bench")
    return report.rotated, report.seconds


def _report(
    figures: dict[str, tuple[list[float], ...]],
    baseline: int,
    tenants: int,
    kind: str,
    per_tenant: float,
    rotated: tuple[int, float],
) -> None:
    worst = max(median(large) / median(small) for small, large in figures.values())
    event = median(figures["Slack app_uninstalled"][1])
    print(
        f"scale: {tenants:,} vs {baseline:,} tenants on {kind}: worst p50 ratio {worst:.2f}x "
        f"(target <= 1.2x); Slack event p50 {event:.2f} ms (target <= 20 ms)"
    )
    for name, (small, large) in figures.items():
        p50, p99 = median(large) / median(small), percentile(large, 0.99) / percentile(small, 0.99)
        print(
            f"  {name:<22} p50 {p50:.2f}x, p99 {p99:.2f}x "
            f"({median(large):.2f} vs {median(small):.2f} ms p50, "
            f"{percentile(large, 0.99):.2f} vs {percentile(small, 0.99):.2f} ms p99)"
        )
    count, seconds = rotated
    print(f"database: {per_tenant:,.0f} bytes per tenant (channel_data with its indexes)")
    print(
        f"rotate-encryption-key: {count:,} rows in {seconds:.1f} s "
        f"({count / seconds if seconds else 0:,.0f} rows/s)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tenants", type=int, default=100_000)
    parser.add_argument("--baseline", type=int, default=100)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.tenants, arguments.baseline, arguments.samples, arguments.database))
