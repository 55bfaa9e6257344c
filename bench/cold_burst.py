"""Upstream calls for 100 concurrent cold requests for the same page (target: 1 per page),
in one process, and across two replicas sharing Redis when TEST_REDIS_URL / --redis is given.

    .venv/bin/python -m bench.cold_burst [--redis redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp

from bench.harness import gateway


async def burst(redis_url: str | None, replicas: int, requests: int) -> tuple[int, int]:
    async with gateway(channels=600, redis_url=redis_url, replicas=replicas) as benches:
        headers = benches[0].world.secret_headers()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def one(index: int, cursor: str | None) -> dict[str, object]:
                options = {"limit": "200", **({"cursor": cursor} if cursor else {})}
                url = benches[index % replicas].channels_url(**options)
                async with session.get(url, headers=headers) as response:
                    assert response.status == 200, await response.text()
                    page: dict[str, object] = await response.json()
                    return page

            cursor, pages = None, 0
            while True:
                results = await asyncio.gather(*(one(i, cursor) for i in range(requests)))
                pages += 1
                cursor = results[0]["next_cursor"]  # type: ignore[assignment]
                if not cursor:
                    break
        return benches[0].slack.calls_to("conversations.list"), pages


async def main(redis_url: str | None, requests: int) -> None:
    calls, pages = await burst(None, 1, requests)
    print(
        f"cold burst, one process: {calls / pages:.2f} upstream calls per page "
        f"({calls} calls for {pages} pages x {requests} concurrent requests)"
    )
    if redis_url:
        calls, pages = await burst(redis_url, 2, requests)
        print(
            f"cold burst, two replicas on Redis: {calls / pages:.2f} upstream calls per page "
            f"({calls} calls for {pages} pages x {requests} concurrent requests)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--redis")
    parser.add_argument("--requests", type=int, default=100)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.redis, arguments.requests))
