"""The async request path (issue 9): every middleware of spec §1 still applies to the hot paths
served on the event loop, nothing there hops to a thread, and a datastore with no free
connection answers 503 after a bounded wait.

Requests go through Django's ``AsyncClient``, i.e. the async handler with the middleware chain
in async mode, as under the ASGI server.
"""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from asgiref import sync as asgiref_sync
from asgiref.sync import async_to_sync
from django.db import connections
from django.test import AsyncClient, Client
from prometheus_client import REGISTRY
from psycopg_pool import PoolTimeout

from molecule_site import adb, asgi
from registry.tests.a2a_server import a2a_server  # noqa: F401 - fixture
from registry.tokens import token_mint
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

ORIGIN = "http://localhost:3000"
BUSY = {"error": "platform datastore busy — retry shortly", "code": "platform_busy", "retry_after": 1}


@pytest.fixture
def limited(settings):
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = None
    settings.RATE_LIMIT = 2
    return settings


@pytest.fixture
def beating():
    """A workspace with a live token, and the heartbeat request it sends."""
    workspace = Workspace.objects.create(name="Dev Lead", status=WorkspaceStatus.ONLINE)
    _, token = token_mint(workspace=workspace)
    body = json.dumps({"workspace_id": str(workspace.id), "active_tasks": 0})
    return workspace, {"data": body, "content_type": "application/json", "headers": {"Authorization": f"Bearer {token}"}}


def run(coroutine_function):
    return async_to_sync(coroutine_function)()


def test_async_heartbeat_is_rate_limited_with_the_specs_429(limited, beating):
    _, request = beating

    async def scenario():
        client = AsyncClient()
        return [await client.post("/registry/heartbeat", **request) for _ in range(3)]

    first, second, third = run(scenario)
    assert (first.status_code, second.status_code) == (200, 200)
    assert first["X-RateLimit-Limit"] == "2" and first["X-RateLimit-Remaining"] == "1"
    assert third.status_code == 429
    assert json.loads(third.content)["error"] == "rate limit exceeded"
    assert int(third["Retry-After"]) >= 1
    assert third["X-Content-Type-Options"] == "nosniff"  # the 429 carries the security headers too


def test_async_heartbeat_carries_security_and_cors_headers(limited, beating):
    _, request = beating

    async def scenario():
        headers = {**request["headers"], "Origin": ORIGIN}
        return await AsyncClient().post("/registry/heartbeat", **{**request, "headers": headers})

    response = run(scenario)
    assert response.content == b'{"status":"ok"}'
    assert response["Content-Security-Policy"] == "default-src 'self'"
    assert response["X-Frame-Options"] == "DENY"
    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Access-Control-Allow-Credentials"] == "true"


def test_async_cors_preflight_is_answered_before_the_view(limited):
    async def scenario():
        return await AsyncClient().options("/registry/heartbeat", headers={
            "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        })

    response = run(scenario)
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in response["Access-Control-Allow-Methods"]


def _requests_counted(path: str, method: str, status: str) -> float:
    return REGISTRY.get_sample_value("molecule_http_requests_total", {"method": method, "path": path, "status": status}) or 0


def test_async_paths_are_counted_under_their_route_template(limited, beating, a2a_server, settings):  # noqa: F811
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    _, request = beating
    agent = Workspace.objects.create(name="Agent", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    beats_before = _requests_counted("/registry/heartbeat", "POST", "200")
    calls_before = _requests_counted("/workspaces/:workspace_id/a2a", "POST", "200")

    async def scenario():
        client = AsyncClient()
        await client.post("/registry/heartbeat", **request)
        return await client.post(
            f"/workspaces/{agent.id}/a2a", data=json.dumps({"method": "message/send", "params": {}}),
            content_type="application/json", headers={"Origin": ORIGIN},
        )

    settings.ADMIN_TOKEN = None
    settings.DEV_MODE = True  # the canvas caller without credentials, as the original allows in dev mode
    answer = run(scenario)
    assert answer.status_code == 200
    assert json.loads(answer.content)["result"]["echo"]["method"] == "message/send"
    assert answer["X-Content-Type-Options"] == "nosniff"
    assert answer["Access-Control-Allow-Origin"] == ORIGIN
    assert _requests_counted("/registry/heartbeat", "POST", "200") == beats_before + 1
    assert _requests_counted("/workspaces/:workspace_id/a2a", "POST", "200") == calls_before + 1


def test_the_async_proxy_path_is_rate_limited(limited, a2a_server, settings):  # noqa: F811
    settings.A2A_ALLOW_PRIVATE_TARGETS = True
    agent = Workspace.objects.create(name="Agent", status=WorkspaceStatus.ONLINE, url=a2a_server.url("echo"))
    body = json.dumps({"method": "message/send", "params": {}})

    async def scenario():
        client = AsyncClient()
        return [
            await client.post(f"/workspaces/{agent.id}/a2a", data=body, content_type="application/json")
            for _ in range(3)
        ]

    answers = run(scenario)
    assert [a.status_code for a in answers][2] == 429
    assert answers[2]["X-RateLimit-Remaining"] == "0"


def test_the_heartbeat_never_leaves_the_event_loop(limited, beating, monkeypatch):
    """Through the ASGI application itself: no signal receiver, middleware or view of the hot
    path runs in a thread; the only hop left is Django's ``response.close()`` after the answer
    went out."""
    workspace, request = beating
    hops = []
    real_call = asgiref_sync.SyncToAsync.__call__

    def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return real_call(self, *args, **kwargs)

    body = request["data"].encode()
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": "/registry/heartbeat", "raw_path": b"/registry/heartbeat", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"),
                    (b"authorization", request["headers"]["Authorization"].encode()),
                    (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8080),
    }

    async def scenario():
        inbox = [{"type": "http.request", "body": body, "more_body": False}]
        sent = []

        async def receive():
            if inbox:
                return inbox.pop()
            await asyncio.sleep(3600)  # the client stays connected

        async def send(message):
            sent.append(message)

        await asgi.application(scope, receive, send)
        return sent

    asgi.release_connections_in_middleware()  # what importing the module did; test clients undo it
    monkeypatch.setattr(asgiref_sync.SyncToAsync, "__call__", counting)
    sent = run(scenario)
    assert sent[0]["status"] == 200 and sent[1]["body"] == b'{"status":"ok"}'
    assert [hop for hop in hops if "close" not in hop] == []


def test_a_busy_async_pool_answers_503_after_its_timeout(limited, beating, settings):
    settings.DB_POOL_TIMEOUT_SECONDS = 1
    _, request = beating

    async def scenario():
        async with adb.dedicated_pool(max_size=1):
            async with adb.connection():  # the only connection, held
                return await asyncio.wait_for(AsyncClient().post("/registry/heartbeat", **request), timeout=30)

    response = run(scenario)
    assert response.status_code == 503
    assert json.loads(response.content) == BUSY
    assert response["Retry-After"] == "1"


def test_a_busy_orm_pool_answers_503_on_sync_routes(settings):
    """Every ORM connection of this process is taken: a request waits DB_POOL_TIMEOUT_SECONDS
    (5 s by default) for one, then gets the same 503 instead of a 500 or a hang."""
    pool = connections["default"].pool
    held = []
    answers = []

    def request():
        try:
            answers.append(Client().get("/workspaces"))
        finally:
            connections.close_all()

    settings.DEV_MODE = True  # the list is open in dev mode: the ORM is all it waits for
    try:
        while True:
            try:
                held.append(pool.getconn(timeout=0.5))
            except PoolTimeout:
                break
        worker = threading.Thread(target=request)
        worker.start()
        worker.join(60)
    finally:
        for conn in held:
            pool.putconn(conn)
    assert held, "the pool had connections to take"
    assert not worker.is_alive()
    assert answers[0].status_code == 503
    assert json.loads(answers[0].content) == BUSY
