"""Cached Slack `channels` throughput against a bare aiohttp JSON handler (target >= 0.5x
in-process, >= 0.7x with Redis).

Baseline and gateway runs alternate for a few rounds and the median ratio is printed, so a
moment of noise on a shared machine moves one round, not the figure. The gateway runs at its
defaults (upstream pacing on, caller rate limits as configured by default: a secret-key
backend, as here, is not limited).

.venv/bin/python -m bench.cached_channels [--requests N] [--concurrency C] [--rounds R]
    [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import json

import aiohttp
from aiohttp import web

from bench.harness import gateway, median, serve, throughput


async def main(requests: int, concurrency: int, rounds: int, redis_url: str | None) -> None:
    async with gateway(channels=200, redis_url=redis_url) as (bench,):
        url = bench.channels_url(limit="200")
        headers = bench.world.secret_headers()
        async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as first:
            body = await first.read()  # the very page the gateway serves, for the baseline
        assert json.loads(body)["slack_channels"], body[:200]

        async def bare(_request: web.Request) -> web.Response:
            return web.Response(body=body, content_type="application/json")

        baseline_app = web.Application()
        baseline_app.router.add_get("/channels", bare)
        baseline_runner, baseline_url = await serve(baseline_app, access_log=None)

        async def via_gateway(session: aiohttp.ClientSession) -> None:
            async with session.get(url, headers=headers) as response:
                assert response.status == 200
                await response.read()

        async def via_bare(session: aiohttp.ClientSession) -> None:
            async with session.get(f"{baseline_url}/channels", headers=headers) as response:
                await response.read()

        calls_before = bench.slack.calls_to("conversations.list")
        ratios, baselines, gateways = [], [], []
        for _ in range(rounds):
            baselines.append(await throughput(via_bare, requests, concurrency))
            gateways.append(await throughput(via_gateway, requests, concurrency))
            ratios.append(gateways[-1] / baselines[-1])
        assert bench.slack.calls_to("conversations.list") == calls_before  # all cache hits
        await baseline_runner.cleanup()
    print(
        f"cached channels: {median(ratios):.2f}x bare aiohttp, median of {rounds} rounds "
        f"(range {min(ratios):.2f}-{max(ratios):.2f}x; {median(gateways):,.0f} vs "
        f"{median(baselines):,.0f} requests/s; {requests} requests per run, "
        f"concurrency {concurrency}, {len(body):,} byte page"
        f"{', Redis' if redis_url else ', in-process'})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.concurrency, arguments.rounds, arguments.redis))
