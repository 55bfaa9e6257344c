"""Resident memory after many cached `channels` requests, against after the warm-up
(a leak shows as a growing ratio).

    .venv/bin/python -m bench.rss [--requests 100000] [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import resource

import aiohttp

from bench.harness import gateway, throughput


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(requests: int, redis_url: str | None) -> None:
    async with gateway(channels=200, redis_url=redis_url) as (bench,):
        url = bench.channels_url(limit="200")
        headers = bench.world.secret_headers()

        async def fetch(session: aiohttp.ClientSession) -> None:
            async with session.get(url, headers=headers) as response:
                assert response.status == 200
                await response.read()

        await throughput(fetch, 2000, 32)
        gc.collect()
        warm = rss_mb()
        rps = await throughput(fetch, requests, 32)
        gc.collect()
        after = rss_mb()
    print(
        f"RSS: {after / warm:.2f}x after {requests:,} requests vs after warm-up "
        f"({after:.1f} MB vs {warm:.1f} MB; gateway, fake Slack and client in one process; "
        f"{rps:,.0f} requests/s{', Redis' if redis_url else ', in-process'})"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--redis")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.redis))
