"""redis-py's async RedisCluster, made safe for a burst of commands on a client that has not
(or no longer has) its map of the cluster. Imported only in Cluster mode."""

from __future__ import annotations

from typing import Any

from redis.asyncio.cluster import RedisCluster


class MappedRedisCluster(RedisCluster):
    """Loads the slot map before a command whenever the client has none.

    redis-py 8.1 picks a command's node before it loads the map: while there is none (a new
    client, or one that reset itself after errors), concurrent commands all go to one node,
    which answers MOVED; every fifth MOVED makes the client close every connection, in use
    or not, and drop the map again. A burst of requests on a fresh replica spun in that loop
    (tests/shared, the cluster runs). `initialize` is locked and does nothing once mapped.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self.get_default_node() is None:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)
