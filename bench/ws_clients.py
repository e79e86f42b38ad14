"""N ``/ws`` clients in one asyncio process, driven by ``bench/load.py`` over stdin/stdout.

A process of its own so the clients do not share a GIL with the orchestrator. Every client
timestamps the first frame whose ``payload.name`` is a given ``bench-ws-…`` name (the
orchestrator names the events it triggers so): ``time.monotonic()`` against the orchestrator's
trigger time, and ``time.time()`` against the frame's own ``timestamp`` (when the platform
recorded the event; same machine, same clock).

    python bench/ws_clients.py ws://127.0.0.1:PORT/ws N

Protocol, one JSON object per stdout line:

- once every connect attempt is over: ``{"connected", "failed", "errors", "connect_seconds"}``
- stdin ``collect NAME T0 TIMEOUT``: wait until every open client has NAME or TIMEOUT seconds
  passed, then ``{"name", "latencies_ms", "since_emit_ms", "open"}`` (arrival − T0, and arrival −
  the frame's timestamp, for each client that got it)
- stdin ``close``: ``{"open_at_close", "dropped", "drop_close_codes"}`` (``dropped``: clients
  whose connection ended before ``close``), then exit.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from datetime import datetime
from collections import Counter, defaultdict

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

MARKER = "bench-ws-"
CONNECTS_IN_FLIGHT = 50


class Clients:
    def __init__(self, url: str, count: int):
        self.url = url
        self.count = count
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.errors: Counter = Counter()
        self.sockets = []
        self.readers: list[asyncio.Task] = []
        self.open = 0
        self.dropped: Counter = Counter()  # close code of each connection that ended before ``close``
        self.closing = False

    async def connect_all(self) -> dict:
        started = time.monotonic()
        gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT)

        async def one():
            async with gate:
                try:
                    return await connect(
                        self.url, ping_interval=None, open_timeout=120, close_timeout=5, max_queue=None
                    )
                except Exception as exc:  # noqa: BLE001 - every failure is counted and reported
                    self.errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                    return None

        self.sockets = [ws for ws in await asyncio.gather(*(one() for _ in range(self.count))) if ws is not None]
        self.open = len(self.sockets)
        self.readers = [asyncio.create_task(self.read(ws)) for ws in self.sockets]
        return {"connected": self.open, "failed": self.count - self.open, "errors": dict(self.errors),
                "connect_seconds": round(time.monotonic() - started, 3)}

    async def read(self, ws) -> None:
        seen = set()  # one event may announce the same name in several frames: the first one counts
        try:
            async for message in ws:
                arrived = time.monotonic()  # before any parsing, so only the receive path is timed
                arrived_wall = time.time()
                if MARKER in message:
                    frame = json.loads(message)
                    name = (frame.get("payload") or {}).get("name", "")
                    if name.startswith(MARKER) and name not in seen:
                        seen.add(name)
                        # The frame's timestamp is when the platform recorded the event (same clock).
                        emitted = datetime.fromisoformat(frame["timestamp"]).timestamp()
                        self.arrivals[name].append((arrived, arrived_wall - emitted))
        except ConnectionClosed:
            pass
        self.open -= 1
        if not self.closing:
            self.dropped[str(ws.close_code)] += 1

    async def collect(self, name: str, t0: float, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while len(self.arrivals[name]) < self.open and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        latencies = [round((t - t0) * 1000, 3) for t, _ in self.arrivals[name]]
        since_emit = [round(delay * 1000, 3) for _, delay in self.arrivals[name]]
        return {"name": name, "latencies_ms": latencies, "since_emit_ms": since_emit, "open": self.open}

    async def close(self) -> dict:
        result = {"open_at_close": self.open, "dropped": sum(self.dropped.values()),
                  "drop_close_codes": dict(self.dropped)}
        self.closing = True
        await asyncio.gather(*(ws.close() for ws in self.sockets), return_exceptions=True)
        await asyncio.gather(*self.readers, return_exceptions=True)
        return result


def emit(obj: dict) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def main(url: str, count: int) -> None:
    clients = Clients(url, count)
    emit(await clients.connect_all())
    while True:
        line = (await asyncio.to_thread(sys.stdin.readline)).split()
        if not line or line[0] == "close":
            emit(await clients.close())
            return
        if line[0] == "collect":
            emit(await clients.collect(line[1], float(line[2]), float(line[3])))


if __name__ == "__main__":
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
