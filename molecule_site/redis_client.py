"""Redis clients for the platform's own keys (not the channel layer): one pool per process for
sync code, one per event loop for async code. Every call is bounded by a socket timeout."""

from __future__ import annotations

import asyncio
import weakref
from functools import lru_cache

import redis
import redis.asyncio as aioredis
from django.conf import settings

SOCKET_TIMEOUT_SECONDS = 5
ASYNC_POOL_MAX_CONNECTIONS = 32


@lru_cache(maxsize=1)
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, decode_responses=True, socket_timeout=SOCKET_TIMEOUT_SECONDS)


@lru_cache(maxsize=1)
def get_binary_redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL, socket_timeout=SOCKET_TIMEOUT_SECONDS)


_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def get_async_redis() -> aioredis.Redis:
    """The running loop's client; its pool is bounded and blocks (briefly) when all are busy."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            settings.REDIS_URL, decode_responses=True, max_connections=ASYNC_POOL_MAX_CONNECTIONS,
            timeout=SOCKET_TIMEOUT_SECONDS, socket_timeout=SOCKET_TIMEOUT_SECONDS,
            socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        )
        client = _async_clients[loop] = aioredis.Redis(connection_pool=pool)
    return client
