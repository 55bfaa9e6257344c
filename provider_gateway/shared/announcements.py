"""Key changes announced to every replica over Redis pub/sub (one node, TLS or Sentinel).

A writer stores a key and publishes its name in one script, so the two happen together or not
at all. Each replica holds one subscription; the listener learns when it is subscribed (from
then on it hears every announcement), of each announced key, and that the connection is alive.
A subscription that breaks is never resumed silently: `listen` raises, and the listener must
forget what it learnt through it before subscribing again.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

# KEYS[1] the key; ARGV: value, ttl (ms), channel, the key's name without the prefix.
# A user whose ACL refuses the channel still writes (pcall): its replicas cannot subscribe
# either, so they read every generation from Redis. Answers 0 when not announced.
SET_AND_PUBLISH = """
redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2])
local published = redis.pcall('publish', ARGV[3], ARGV[4])
if type(published) == 'table' and published.err then return 0 end
return 1
"""
# With nothing to read, ping this often; with no answer at all for SILENCE_LIMIT, give up.
PING_EVERY_SECONDS = 1.0
SILENCE_LIMIT_SECONDS = 3.0


class Listener(Protocol):
    def subscribed(self) -> None: ...  # every announcement from now on will be heard
    def changed(self, key: str) -> None: ...  # `key` (without the prefix) was written
    def alive(self) -> None: ...  # the subscription answered: nothing was missed so far


def channel_name(prefix: str) -> str:
    return f"{prefix}:announcements"


async def listen(client: Any, prefix: str, listener: Listener) -> None:
    """Runs until the subscription fails (the error propagates) or the task is cancelled."""
    from redis.asyncio.retry import Retry
    from redis.backoff import NoBackoff

    pubsub = client.pubsub()
    retry = None
    try:
        await pubsub.connect()
        # redis-py reconnects and resubscribes on its own after a dropped connection, which
        # would hide the announcements lost meanwhile: here a drop ends the subscription.
        retry, pubsub.connection.retry = pubsub.connection.retry, Retry(NoBackoff(), 0)
        await pubsub.subscribe(channel_name(prefix))
        await _read(pubsub, listener)
    finally:
        if retry is not None and pubsub.connection is not None:
            pubsub.connection.retry = retry  # it goes back to the pool for commands
        await _close(pubsub)


async def _read(pubsub: Any, listener: Listener) -> None:
    last_heard = time.monotonic()
    while True:
        message = await pubsub.get_message(timeout=PING_EVERY_SECONDS)
        now = time.monotonic()
        if message is None:
            if now - last_heard > SILENCE_LIMIT_SECONDS:
                raise TimeoutError("the subscription stopped answering")
            await pubsub.ping()
            continue
        last_heard = now
        kind = message["type"]
        if kind == "message":
            listener.changed(bytes(message["data"]).decode())
        elif kind == "subscribe":
            listener.subscribed()
        elif kind == "pong":
            listener.alive()
        else:  # an unsubscribe we did not ask for: the subscription is over
            raise ConnectionError(f"unexpected {kind!r} on the announcement channel")


async def _close(pubsub: Any) -> None:
    try:
        await pubsub.aclose()
    except Exception:  # closing a connection that already failed: nothing to do
        return
