"""channels-redis, with a connection pool that waits and a way to see a forgotten membership.

- channels-redis builds redis-py's ConnectionPool, which raises MaxConnectionsError as soon as
  more commands are in flight than it has connections (redis-py 8: 100 per event loop), as
  when hundreds of tabs reconnect at once after a deploy. Its BlockingConnectionPool has the
  command wait up to `timeout` seconds for a free connection instead. Settings:
  CHANNEL_LAYER_MAX_CONNECTIONS, CHANNEL_LAYER_POOL_TIMEOUT_SECONDS.
- `group_has`: whether Redis still lists a channel in a group. After a FLUSHDB (or a Redis
  restart without persistence) the groups are gone while the sockets stay open; the consumer
  asks on the browser's ping and joins again.
"""

from __future__ import annotations

from typing import Any

from channels_redis.core import RedisChannelLayer as _RedisChannelLayer
from redis.asyncio import BlockingConnectionPool


class RedisChannelLayer(_RedisChannelLayer):
    def create_pool(self, index: int) -> Any:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and other shapes: as channels-redis builds them
            return super().create_pool(index)
        return BlockingConnectionPool.from_url(host.pop("address"), **host)

    async def group_has(self, group: str, channel: str) -> bool:
        assert self.require_valid_group_name(group), "Group name not valid"
        connection = self.connection(self.consistent_hash(group))
        return await connection.zscore(self._group_key(group), channel) is not None
