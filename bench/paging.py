"""`knockapi` auto-paging a large Slack workspace through the gateway at its default settings.

The fake Slack holds conversations.list to tier 2 (20 calls in any 60 s per workspace, 429
beyond) and injects a 429 (`Retry-After: 1`) every Nth call on top. The SDK pages with its
defaults (2 retries honouring Retry-After). Target: 0 client errors, every channel exactly
once, no 429 from Slack's rule; time and upstream calls reported.

    .venv/bin/python -m bench.paging [--channels 20000] [--limit 1000] [--inject-every 7]
        [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio
import time

import httpx
from knockapi import APIError, AsyncKnock

from bench.harness import TENANT, gateway


async def main(channels: int, limit: int, inject_every: int, redis_url: str | None) -> None:
    # rate_limits=None, cache TTL 60: the gateway's defaults, pacing included.
    async with gateway(channels=channels, cache_ttl=60, redis_url=redis_url, rate_limits=None) as (
        bench,
    ):
        bench.slack.tier2_per_minute = 20
        bench.slack.inject_429_every = inject_every
        answers: list[int] = []

        async def record(response: httpx.Response) -> None:
            answers.append(response.status_code)

        seen: list[str] = []
        errors: list[str] = []
        started = time.perf_counter()
        async with (
            httpx.AsyncClient(event_hooks={"response": [record]}, timeout=60) as http,
            AsyncKnock(
                api_key=bench.world.secret_key, base_url=bench.gateway_url, http_client=http
            ) as knock,
        ):
            try:
                async for channel in knock.providers.slack.list_channels(
                    bench.world.slack.id, access_token_object=TENANT, query_options={"limit": limit}
                ):
                    seen.append(channel.id)
            except APIError as error:  # what a backend would see: paging stops
                errors.append(f"{type(error).__name__}: {error}")
        elapsed = time.perf_counter() - started
        slack = bench.slack
    pages = -(-channels // limit)
    print(
        f"paging: {len(errors)} client errors, {len(set(seen)):,} of {channels:,} channels "
        f"({len(seen) - len(set(seen))} repeated) in {elapsed:.1f} s; "
        f"{slack.calls_to('conversations.list')} upstream calls for {pages} pages of {limit} "
        f"({slack.injected_429s} injected 429s, {slack.rule_429s} 429s for breaking tier 2); "
        f"{answers.count(429)} gateway 429s retried by the SDK, {len(answers)} requests"
        f"{' (Redis)' if redis_url else ''}"
    )
    for error in errors:
        print(f"  {error}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, default=20_000)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--inject-every", type=int, default=7)
    parser.add_argument("--redis")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.channels, arguments.limit, arguments.inject_every, arguments.redis))
