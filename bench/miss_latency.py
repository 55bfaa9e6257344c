"""Latency the gateway adds on a cache miss, against calling the fake Slack directly.

Target: at most 2 ms added at p50.

    .venv/bin/python -m bench.miss_latency [--requests N]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import aiohttp

from bench.harness import TEAM, gateway, median, percentile


async def main(requests: int) -> None:
    # Every request is a miss for one workspace: pacing off, or Slack's tier 2 would space them
    # 4 s apart. This measures what the gateway adds to a call, not Slack's rules.
    async with gateway(channels=200, cache_ttl=0, pacing=False) as (bench,):
        url = bench.channels_url(limit="200")
        headers = bench.world.secret_headers()
        token = bench.slack.mint_token(TEAM)
        direct_url = f"{bench.slack.api_url}conversations.list"
        form = {
            "limit": "200",
            "exclude_archived": "true",
            "types": "public_channel,private_channel",
        }
        direct, through = [], []
        async with aiohttp.ClientSession() as session:
            for index in range(requests + 50):
                started = time.perf_counter()
                async with session.post(
                    direct_url, data=form, headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    await response.read()
                middle = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    assert response.status == 200
                    await response.read()
                ended = time.perf_counter()
                if index >= 50:  # warm-up excluded
                    direct.append((middle - started) * 1000)
                    through.append((ended - middle) * 1000)
    added_p50 = median(through) - median(direct)
    added_p99 = percentile(through, 0.99) - percentile(direct, 0.99)
    print(
        f"miss latency: {median(through) / median(direct):.2f}x calling Slack directly at p50 "
        f"(added {added_p50:.2f} ms p50, {added_p99:.2f} ms p99; "
        f"direct {median(direct):.2f} ms, through the gateway {median(through):.2f} ms, "
        f"{requests} sequential requests)"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=1000)
    asyncio.run(main(parser.parse_args().requests))
