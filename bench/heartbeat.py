"""Heartbeat hot-path benchmark against the whole running platform.

Starts the platform as ``make run`` does (embedded PostgreSQL/Redis under a temporary
MOLECULE_HOME, daphne + worker + beat), registers N workspaces, then sends heartbeats from C
concurrent clients for D seconds, and reports throughput, latency percentiles and the web
process's memory. Also measures ``GET /health`` the same way as a baseline for the stack.

    .venv/bin/python bench/heartbeat.py [--workspaces 50] [--clients 8] [--seconds 10]

Traffic goes to 127.0.0.1 only; the run is bounded by --seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule_site.settings")

ADMIN = "bench-admin-token"


async def hammer(base: str, make_request, clients: int, seconds: float) -> list[float]:
    """Send requests from ``clients`` concurrent loops for ``seconds``; return latencies (s)."""
    latencies: list[float] = []
    deadline = time.monotonic() + seconds

    async def loop(index: int):
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            n = 0
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await make_request(client, index, n)
                latencies.append(time.perf_counter() - started)
                if response.status_code != 200:
                    raise RuntimeError(f"unexpected {response.status_code}: {response.text}")
                n += 1

    await asyncio.gather(*(loop(i) for i in range(clients)))
    return latencies


def report(name: str, latencies: list[float], seconds: float) -> str:
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return (
        f"{name:<10} {len(latencies) / seconds:8.0f} req/s   p50 {pick(0.50):6.1f} ms   "
        f"p95 {pick(0.95):6.1f} ms   p99 {pick(0.99):6.1f} ms   mean {statistics.mean(latencies) * 1000:6.1f} ms"
    )


def web_rss_mb(launcher_pid: int) -> float:
    for child in psutil.Process(launcher_pid).children(recursive=True):
        if "daphne" in " ".join(child.cmdline()):
            return child.memory_info().rss / 2**20
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()

    from molecule_site.tests.launch import Launch, free_port  # noqa: E402 - needs sys.path above

    import django

    django.setup()
    with tempfile.TemporaryDirectory() as home:
        launch = Launch(Path(home), free_port(), ADMIN_TOKEN=ADMIN, RATE_LIMIT="100000000")
        try:
            launch.wait_for("Listening on TCP address", timeout=120)
            admin = {"Authorization": f"Bearer {ADMIN}"}
            workspaces: list[tuple[str, str]] = []
            async with httpx.AsyncClient(base_url=launch.url, timeout=30) as api:
                for n in range(args.workspaces):
                    created = (await api.post("/workspaces", headers=admin, json={"name": f"ws{n}", "external": True})).json()
                    workspaces.append((created["id"], created["connection"]["auth_token"]))
                for workspace_id, token in workspaces:
                    await api.post("/registry/register", headers={"Authorization": f"Bearer {token}"}, json={
                        "id": workspace_id, "url": "http://localhost:9/a2a", "agent_card": {"name": workspace_id},
                    })

            async def heartbeat(client, index, n):
                workspace_id, token = workspaces[(index * 7919 + n) % len(workspaces)]
                return await client.post(
                    "/registry/heartbeat", headers={"Authorization": f"Bearer {token}"},
                    json={"workspace_id": workspace_id, "error_rate": 0.0, "active_tasks": n % 2,
                          "uptime_seconds": n, "current_task": f"task {n % 3}"},
                )

            async def health(client, index, n):
                return await client.get("/health")

            print(f"{args.workspaces} workspaces, {args.clients} clients, {args.seconds:g} s per run, 2 cores")
            print(report("health", await hammer(launch.url, health, args.clients, args.seconds), args.seconds))
            print(report("heartbeat", await hammer(launch.url, heartbeat, args.clients, args.seconds), args.seconds))
            print(f"web process RSS after the runs: {web_rss_mb(launch.process.pid):.0f} MiB")
        finally:
            launch.stop()


if __name__ == "__main__":
    asyncio.run(main())
