"""``GET /workspaces/:id/terminal`` (spec §18): who may open a shell, the answers when none can be
opened, and a real shell over a real server.

The handshake tests drive the real ASGI app (``molecule_site.asgi``: Channels routing, the
session middleware, the consumer) with the real ``none`` provisioner, on real Postgres and
Redis, in a scope that offers the WebSocket Denial Response extension as uvicorn does. The last
tests launch the whole platform with the local provisioner and talk to it over a real socket.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psutil
import pytest
import websockets
from asgiref.sync import async_to_sync
from channels.testing import ApplicationCommunicator
from django.conf import settings
from django.test import Client

from molecule_site.asgi import application
from molecule_site.tests.launch import platform_on_fresh_database, run_async, wait_until
from registry.tokens import token_mint
from workspaces import terminal
from workspaces.models import Workspace
from workspaces.terminal_consumer import MAX_DIMENSION, resize_request

ADMIN = "terminal-tests-admin-token"
DOCKER_MISSING = {"error": "Docker not available"}


@pytest.fixture(autouse=True)
def _secure_mode(settings):
    """Outside dev mode, as installs run: ADMIN_TOKEN is always set there."""
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = ADMIN


def _headers(*, caller=None, token=None, origin=None, host="testserver", cookie=None):
    headers = [(b"host", host.encode())]
    if origin:
        headers.append((b"origin", origin.encode()))
    if caller is not None:
        headers.append((b"x-workspace-id", str(caller).encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    return headers


def handshake(workspace_id, *, denial=True, subprotocols=(), **kwargs):
    """What the app answers a terminal handshake: ``("close", None)``, ``(status, body)`` for a
    denial response, or ``("accept", subprotocol, close)`` for one accepted and then closed."""
    path = f"/workspaces/{workspace_id}/terminal"
    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": path,
        "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": _headers(**kwargs),
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "subprotocols": list(subprotocols),
        "extensions": {"websocket.http.response": {}} if denial else {},
    }

    async def run():
        app = ApplicationCommunicator(application, scope)
        await app.send_input({"type": "websocket.connect"})
        first = await app.receive_output(timeout=10)
        if first["type"] == "websocket.http.response.start":
            body = await app.receive_output(timeout=5)
            assert body["type"] == "websocket.http.response.body"
            assert (b"content-type", b"application/json; charset=utf-8") in first["headers"]
            answer = (first["status"], json.loads(body["body"]))
        elif first["type"] == "websocket.accept":
            closed = await app.receive_output(timeout=5)
            answer = ("accept", first.get("subprotocol"), closed)
        else:
            answer = (first["type"].rsplit(".", 1)[-1], None)
        await app.send_input({"type": "websocket.disconnect", "code": 1000})
        await app.wait(timeout=10)
        return answer

    return async_to_sync(run)()


@pytest.fixture
def tree(db):
    """Root A with children B and C; C has child E. X is another root."""
    a = Workspace.objects.create(name="A")
    b = Workspace.objects.create(name="B", parent=a)
    c = Workspace.objects.create(name="C", parent=a)
    e = Workspace.objects.create(name="E", parent=c)
    x = Workspace.objects.create(name="X")
    return {ws.name: ws for ws in (a, b, c, e, x)}


def session_cookie(user) -> str:
    browser = Client()
    browser.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"


# --- resize messages ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "expected"), [
    ('{"type":"resize","cols":120,"rows":40}', (120, 40)),
    ('{"type":"resize","cols":1,"rows":1000}', (1, 1000)),
    ('{"type":"resize","cols":0,"rows":40}', False),
    ('{"type":"resize","cols":1001,"rows":40}', False),
    ('{"type":"resize","cols":80.5,"rows":40}', False),
    ('{"type":"resize","cols":true,"rows":40}', False),
    ('{"type":"resize","cols":"80","rows":"24"}', False),
    ('{"type":"resize"}', False),
    ('{"type":"other","cols":80,"rows":24}', None),
    ('{"not json', None),
    ("ls -la\r", None),
    ("[1, 2]", None),
])
def test_only_a_resize_object_with_integer_sizes_in_range_is_a_resize(text, expected):
    assert resize_request(text) == expected
    assert MAX_DIMENSION == 1000


# --- the canvas tab's fragment -------------------------------------------------------------------------

@pytest.mark.django_db
def test_the_terminal_tab_renders_a_frame_for_this_workspace_and_opens_nothing(operator_client):
    workspace = Workspace.objects.create(name="<Shell & co>", status="online")
    response = operator_client.get(f"/canvas/panel/{workspace.id}/terminal/", HTTP_X_MOLECULE_FRAGMENT="1")
    assert response.status_code == 200
    page = response.content.decode()
    assert f'data-terminal-path="/workspaces/{workspace.id}/terminal"' in page
    assert 'aria-label="Shell of &lt;Shell &amp; co&gt;"' in page
    assert 'role="status"' in page and "Connecting…" in page
    assert terminal.slots.used == 0  # the page connects; rendering the tab starts no shell


# --- the handshake: who may open a shell ---------------------------------------------------------------

@pytest.mark.django_db(transaction=True)
def test_without_credentials_outside_dev_mode_the_answer_is_401_admin_auth_required(tree):
    assert handshake(tree["A"].id) == (401, {"error": "admin auth required"})
    assert handshake(tree["A"].id, token="not-the-admin-token") == (401, {"error": "admin auth required"})


@pytest.mark.django_db(transaction=True)
def test_in_dev_mode_anyone_reaches_the_provisioner_as_in_the_original(tree, settings):
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None
    assert handshake(tree["A"].id) == (503, DOCKER_MISSING)


@pytest.mark.django_db(transaction=True)
def test_an_operator_reaches_the_provisioner_which_without_docker_answers_503(tree):
    assert handshake(tree["A"].id, token=ADMIN) == (503, DOCKER_MISSING)


@pytest.mark.django_db(transaction=True)
def test_a_staff_session_from_the_same_origin_is_an_operator_and_other_sessions_are_not(tree, django_user_model):
    staff = django_user_model.objects.create_user("ops", password="x" * 12, is_staff=True)
    plain = django_user_model.objects.create_user("plain", password="x" * 12)
    same = {"origin": "http://molecule.example", "host": "molecule.example"}
    assert handshake(tree["A"].id, cookie=session_cookie(staff), **same) == (503, DOCKER_MISSING)
    assert handshake(tree["A"].id, cookie=session_cookie(plain), **same) == (401, {"error": "admin auth required"})
    # Another site riding the operator's cookie (cross-site WebSocket hijacking).
    evil = {"origin": "http://evil.example", "host": "molecule.example"}
    assert handshake(tree["A"].id, cookie=session_cookie(staff), **evil) == (403, {"error": "origin not allowed"})
    assert handshake(tree["A"].id, token=ADMIN, **evil) == (403, {"error": "origin not allowed"})


@pytest.mark.django_db(transaction=True)
def test_a_workspace_caller_must_present_its_own_token(tree):
    _, a_token = token_mint(workspace=tree["A"])
    token_mint(workspace=tree["B"])
    invalid = (401, {"error": "invalid token for claimed workspace"})
    assert handshake(tree["A"].id, caller=tree["B"].id) == invalid
    assert handshake(tree["A"].id, caller=tree["B"].id, token="not-a-token") == invalid
    assert handshake(tree["A"].id, caller=tree["B"].id, token=a_token) == invalid  # A's token is not B's
    assert handshake(tree["A"].id, caller=tree["B"].id, token=ADMIN) == invalid  # the caller's own, as in the original
    assert handshake(tree["A"].id, caller="not-a-uuid", token=a_token) == invalid


@pytest.mark.django_db(transaction=True)
def test_a_workspace_caller_reaches_only_workspaces_it_may_communicate_with(tree):
    _, b_token = token_mint(workspace=tree["B"])
    denied = (403, {"error": "not authorized to access this workspace's terminal"})
    assert handshake(tree["A"].id, caller=tree["B"].id, token=b_token) == (503, DOCKER_MISSING)  # parent
    assert handshake(tree["B"].id, caller=tree["B"].id, token=b_token) == (503, DOCKER_MISSING)  # itself
    assert handshake(tree["C"].id, caller=tree["B"].id, token=b_token) == (503, DOCKER_MISSING)  # sibling
    assert handshake(tree["E"].id, caller=tree["B"].id, token=b_token) == denied  # nephew
    assert handshake(tree["X"].id, caller=tree["B"].id, token=b_token) == denied  # another tree
    # A workspace that does not exist is not one it may talk to: 403, not an existence oracle.
    assert handshake(uuid.uuid4(), caller=tree["B"].id, token=b_token) == denied


@pytest.mark.django_db(transaction=True)
def test_an_unknown_malformed_or_removed_workspace_is_404_for_an_operator(tree):
    removed = Workspace.objects.create(name="Gone", status="removed")
    not_found = (404, {"error": "workspace not found"})
    assert handshake(uuid.uuid4(), token=ADMIN) == not_found
    assert handshake("not-a-uuid", token=ADMIN) == not_found
    assert handshake(removed.id, token=ADMIN) == not_found


@pytest.mark.django_db(transaction=True)
def test_past_the_session_limit_the_answer_is_503_too_many_sessions(tree, monkeypatch):
    monkeypatch.setattr(terminal.slots, "limit", 0)
    assert handshake(tree["A"].id, token=ADMIN) == (503, {"error": "too many terminal sessions"})
    assert terminal.slots.used == 0


@pytest.mark.django_db(transaction=True)
def test_a_refused_open_gives_its_session_slot_back(tree):
    for _ in range(terminal.MAX_SESSIONS + 3):
        assert handshake(tree["A"].id, token=ADMIN) == (503, DOCKER_MISSING)
    assert terminal.slots.used == 0


@pytest.mark.django_db(transaction=True)
def test_a_server_without_the_denial_extension_gets_a_close_before_accept(tree):
    assert handshake(tree["A"].id, denial=False) == ("close", None)
    assert handshake(tree["A"].id, denial=False, token=ADMIN) == ("close", None)


@pytest.mark.django_db(transaction=True)
def test_a_client_offering_the_canvas_subprotocol_is_told_why_in_the_close_frame(tree):
    """Browsers cannot read a refused handshake's status: the canvas learns it in-band."""
    canvas = ["molecule-terminal"]
    assert handshake(tree["A"].id, token=ADMIN, subprotocols=canvas) == (
        "accept", "molecule-terminal", {"type": "websocket.close", "code": 4503, "reason": "Docker not available"})
    assert handshake(uuid.uuid4(), token=ADMIN, subprotocols=canvas)[2] == {
        "type": "websocket.close", "code": 4404, "reason": "workspace not found"}
    assert handshake(tree["A"].id, subprotocols=canvas)[2]["code"] == 4401
    # Another subprotocol is not ours: the HTTP answer, as for any client.
    assert handshake(tree["A"].id, token=ADMIN, subprotocols=["other"]) == (503, DOCKER_MISSING)


# --- the whole platform, over a real socket -----------------------------------------------------------------

ECHO_TIMEOUT = 90


@pytest.fixture(scope="module")
def platform():
    home = Path(tempfile.mkdtemp(prefix="molecule-terminal-"))
    home.chmod(0o755)  # local runtimes' uids traverse it
    try:
        with platform_on_fresh_database(home, redis_db=9, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="local",
                                        RATE_LIMIT="1000000", WEB_CONCURRENCY="1") as launch:
            yield launch
    finally:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def api(platform):
    with httpx.Client(base_url=platform.url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30) as client:
        yield client


def _ws_url(platform, workspace_id) -> str:
    return f"ws://127.0.0.1:{platform.port}/workspaces/{workspace_id}/terminal"


class Shell:
    """A terminal client over the real socket: frames in, frames out."""

    def __init__(self, connection):
        self.connection = connection
        self.screen = b""

    async def send(self, data: bytes | str):
        await self.connection.send(data)

    async def expect(self, pattern: str, timeout: float = 15) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.screen.decode(errors="replace"))
            if found:
                return found
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {pattern!r} in {self.screen[-500:]!r}"
            try:
                frame = await asyncio.wait_for(self.connection.recv(), remaining)
            except TimeoutError:
                continue
            assert isinstance(frame, bytes), "output comes as binary frames"
            self.screen += frame


@pytest.mark.slow
def test_over_the_real_server_a_refusal_is_an_http_status_with_the_json_body(platform, api):
    workspace = api.post("/workspaces", json={"name": "Ext", "external": True}).json()["id"]

    async def refused(**kwargs):
        with pytest.raises(websockets.InvalidStatus) as caught:
            async with websockets.connect(_ws_url(platform, workspace), open_timeout=10, **kwargs):
                pass
        response = caught.value.response
        return response.status_code, json.loads(response.body)

    async def scenario():
        return [
            await refused(),
            await refused(additional_headers={"Authorization": f"Bearer {ADMIN}", "Origin": "http://evil.example"}),
            await refused(additional_headers={"X-Workspace-ID": workspace, "Authorization": "Bearer nope"}),
        ]

    assert run_async(scenario) == [
        (401, {"error": "admin auth required"}),
        (403, {"error": "origin not allowed"}),
        (401, {"error": "invalid token for claimed workspace"}),
    ]


@pytest.mark.slow
def test_a_local_workspace_terminal_runs_commands_resizes_and_closes_with_1000_on_exit(platform, api):
    """Needs ``LocalProcessProvisioner.exec_terminal`` (a PtySession in the runtime's private dir)."""
    created = api.post("/workspaces", json={"name": "Shell", "runtime": "echo"})
    assert created.status_code == 201, created.text
    workspace = created.json()["id"]
    wait_until(lambda: api.get(f"/workspaces/{workspace}").json()["status"] == "online",
               timeout=ECHO_TIMEOUT, what="the echo runtime to come online")

    async def scenario():
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with websockets.connect(_ws_url(platform, workspace), additional_headers=headers, open_timeout=20) as conn:
            shell = Shell(conn)
            await shell.send(b"echo hello-$((6*7))\r")
            await shell.expect(r"hello-42")
            await shell.send(json.dumps({"type": "resize", "cols": 120, "rows": 40}))
            await shell.send(b"stty size; pwd; id -u\r")
            await shell.expect(r"\b40 120\b")
            await shell.send(json.dumps({"type": "resize", "cols": 5000, "rows": 40}))  # ignored
            await shell.send("stty size\r")  # a text frame is keystrokes too
            await shell.expect(r"40 120[\s\S]*40 120")
            await shell.send(b"exit\r")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(conn.recv(), 15)
            return shell.screen.decode(errors="replace"), closed.value.rcvd.code

    async def hang_up():
        """A client that goes away: its shell is hung up. Then one that sends too big a frame."""
        headers = {"Authorization": f"Bearer {ADMIN}"}
        async with websockets.connect(_ws_url(platform, workspace), additional_headers=headers, open_timeout=20) as conn:
            shell = Shell(conn)
            await shell.send(b"echo shell-pid=$$\r")
            pid = int((await shell.expect(r"shell-pid=(\d+)")).group(1))
        async with websockets.connect(_ws_url(platform, workspace), additional_headers=headers, open_timeout=20,
                                      max_size=None) as conn:
            await conn.send(b"x" * (64 * 1024 + 1))
            with pytest.raises(websockets.ConnectionClosed) as closed:
                while True:
                    await asyncio.wait_for(conn.recv(), 15)
        return pid, closed.value.rcvd.code

    screen, code = run_async(scenario)
    assert code == 1000
    assert "/private" in screen  # the runtime's own directory
    pid, too_big = run_async(hang_up)
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
               timeout=10, what="the abandoned shell to be hung up")
    assert too_big == 1009
    opened = wait_until(lambda: [e for e in _events(api, workspace) if e["event_type"] == "TERMINAL_OPENED"],
                        what="the TERMINAL_OPENED event")
    assert opened[0]["payload"] == {"by": "admin"}


def _events(api, workspace_id) -> list[dict]:
    response = api.get(f"/events/{workspace_id}")
    assert response.status_code == 200, response.text
    return response.json()
