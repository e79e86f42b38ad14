"""The floor for ``bench/load.py``: the heartbeat's own SQL and Redis work behind a raw ASGI app.

No framework, no middleware: what is left of ``POST /registry/heartbeat`` when everything but its
essential I/O is taken away, on the same PostgreSQL and Redis as the platform under test. The
platform's figures are reported as ratios to this one.

- ``POST /registry/heartbeat`` (``Authorization: Bearer <token>``, ``{"workspace_id": …}``): the
  rate-limit INCR+EXPIRE pipeline, the platform's token-check statement, its heartbeat statement,
  the liveness EXPIRE+DEL pipeline and one PUBLISH of an event frame; answers ``{"status":"ok"}``.
- ``GET /health``: ``{"status":"ok"}`` with no I/O at all.

The SQL text is imported from ``registry.services`` so the floor runs exactly the statements the
platform runs. Served by uvicorn; ``DATABASE_URL`` and ``REDIS_URL`` come from the environment.
"""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import django
import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule_site.settings")
django.setup()

from django.conf import settings  # noqa: E402 - needs django.setup()

from raw_asgi import answer, read_body  # noqa: E402 - bench/ is on the path when uvicorn loads this file
from registry import services  # noqa: E402
from registry.selectors import token_digest  # noqa: E402

try:
    _HEARTBEAT_SQL = services._HEARTBEAT_SQL
    # The heartbeat's token check is bound to the workspace: ``{bound}`` takes TOKEN_BOUND_CLAUSE.
    TOKEN_CHECK_SQL = services.TOKEN_VALIDATE_SQL.format(bound=getattr(services, "TOKEN_BOUND_CLAUSE", ""))
except AttributeError as exc:
    raise SystemExit(f"floor: registry.services must expose its heartbeat SQL as module constants ({exc})") from None
if TOKEN_CHECK_SQL.count("%s") != 2:
    raise SystemExit(f"floor: the token check must take (digest, workspace id), got:\n{TOKEN_CHECK_SQL}")

POOL_SIZE = 8
RATE_WINDOW_SECONDS = 60
EVENTS_CHANNEL = "bench-floor-events"
OK = b'{"status":"ok"}'

_state: dict = {}


async def _startup() -> None:
    pool = AsyncConnectionPool(
        os.environ["DATABASE_URL"], min_size=POOL_SIZE, max_size=POOL_SIZE, open=False,
        kwargs={"autocommit": True, "application_name": "bench-floor"},
    )
    await pool.open(wait=True)
    _state["pool"] = pool
    _state["redis"] = aioredis.Redis.from_url(os.environ["REDIS_URL"])
    await _state["redis"].ping()
    print(f"floor worker {os.getpid()} ready", flush=True)


async def _shutdown() -> None:
    await _state["pool"].close()
    await _state["redis"].aclose()


def _bearer(scope) -> str:
    for name, value in scope["headers"]:
        if name == b"authorization" and value.startswith(b"Bearer "):
            return value[7:].decode().strip()
    return ""


async def _heartbeat(scope, receive, send) -> None:
    data = json.loads(await read_body(receive))
    workspace_id = uuid.UUID(data["workspace_id"])
    red = _state["redis"]

    rate_key = f"ratelimit:{scope['client'][0]}:{int(time.time() // RATE_WINDOW_SECONDS)}"
    pipe = red.pipeline(transaction=False)
    pipe.incr(rate_key)
    pipe.expire(rate_key, RATE_WINDOW_SECONDS)
    await pipe.execute()

    now = datetime.now(timezone.utc)
    async with _state["pool"].connection() as conn:
        cursor = await conn.execute(TOKEN_CHECK_SQL, (token_digest(_bearer(scope)), workspace_id))
        if await cursor.fetchone() is None:
            await answer(send, 401, b'{"error":"invalid workspace auth token"}')
            return
        cursor = await conn.execute(_HEARTBEAT_SQL, [
            now, now + timedelta(seconds=settings.LIVENESS_TTL_SECONDS), float(data.get("error_rate") or 0), "",
            data.get("active_tasks") or 0, data.get("uptime_seconds") or 0, data.get("current_task") or "",
            None, now, workspace_id, workspace_id,
        ])
        await cursor.fetchone()

    pipe = red.pipeline(transaction=True)
    pipe.expire(f"ws:{workspace_id}", settings.LIVENESS_TTL_SECONDS)
    pipe.delete(f"ws:{workspace_id}:runtime")
    load_key = f"ws:{workspace_id}:load"  # the canvas sparkline's sample, as the platform records it
    pipe.lpush(load_key, f"{int(now.timestamp())}:{data.get('active_tasks') or 0}")
    pipe.ltrim(load_key, 0, 29)
    pipe.expire(load_key, 900)
    await pipe.execute()
    payload = {"active_tasks": data.get("active_tasks") or 0, "uptime_seconds": data.get("uptime_seconds") or 0}
    frame = {"event": "WORKSPACE_HEARTBEAT", "workspace_id": str(workspace_id), "timestamp": now.isoformat(),
             "payload": payload}
    await red.publish(EVENTS_CHANNEL, json.dumps(frame, separators=(",", ":")))
    await answer(send, 200, OK)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await _startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await _shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    route = (scope["method"], scope["path"])
    if route == ("POST", "/registry/heartbeat"):
        await _heartbeat(scope, receive, send)
    elif route == ("GET", "/health"):
        await answer(send, 200, OK)
    else:
        await answer(send, 404, b'{"error":"not found"}')
