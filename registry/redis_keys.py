"""The Redis keys the original platform keeps per workspace (spec §3.2).

Redis is a cache here: losing these keys only means a workspace re-registers on its next beat.
"""

from __future__ import annotations

import logging

import redis

from molecule_site.redis_client import get_async_redis, get_redis

log = logging.getLogger(__name__)

URL_TTL_SECONDS = 300
# Recent load (active tasks per heartbeat) for the canvas's sparklines: the newest LOAD_SAMPLES
# beats, dropped LOAD_TTL_SECONDS after the last one (a silent workspace has no recent load).
LOAD_SAMPLES = 30
LOAD_TTL_SECONDS = 15 * 60


def liveness_key(workspace_id) -> str:
    return f"ws:{workspace_id}"


def url_key(workspace_id) -> str:
    return f"ws:{workspace_id}:url"


def internal_url_key(workspace_id) -> str:
    return f"ws:{workspace_id}:internal_url"


def load_key(workspace_id) -> str:
    """A list of ``"<unix seconds>:<active tasks>"``, newest first (LPUSH + LTRIM per beat)."""
    return f"ws:{workspace_id}:load"


def cache_url(workspace_id, url: str) -> None:
    try:
        get_redis().set(url_key(workspace_id), url, ex=URL_TTL_SECONDS)
    except redis.RedisError:
        log.warning("could not cache the URL of workspace %s", workspace_id)


async def acache_url(workspace_id, url: str) -> None:
    try:
        await get_async_redis().set(url_key(workspace_id), url, ex=URL_TTL_SECONDS)
    except (redis.RedisError, OSError):
        log.warning("could not cache the URL of workspace %s", workspace_id)


def clear_workspace_keys(workspace_ids) -> None:
    """Delete the liveness, URL and load keys of every given workspace (best effort)."""
    keys = [
        key for wid in workspace_ids
        for key in (liveness_key(wid), url_key(wid), internal_url_key(wid), load_key(wid))
    ]
    if not keys:
        return
    try:
        get_redis().delete(*keys)
    except redis.RedisError:
        log.warning("could not clear Redis keys of %d workspace(s)", len(workspace_ids))
