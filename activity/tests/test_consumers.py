"""``/ws`` (spec §15): handshake rules and topology-filtered delivery, on real Postgres and Redis.

Tests are sync and drive the async communicator through ``async_to_sync``; events are emitted
from sync code (``database_sync_to_async``) so ``emit``'s on-commit send takes the real path.
"""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.db import transaction
from django.test import Client

from activity.events import EVENTS_GROUP, emit
from molecule_site.asgi import application
from molecule_site.channel_layer import group_channel_name
from molecule_site.metrics import WEBSOCKET_CONNECTIONS
from registry.tokens import token_mint
from workspaces.models import Workspace

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

SENTINEL = "TEST_SENTINEL"
ADMIN = "ws-tests-admin-token"


@pytest.fixture(autouse=True)
def _secure_mode(settings):
    """Outside dev mode, as installs run: ADMIN_TOKEN is always set there."""
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = ADMIN


def ws_client(*, workspace=None, token=None, origin=None, host=None, cookie=None, extra=()):
    headers = []
    if host:
        headers.append((b"host", host.encode()))
    if origin:
        headers.append((b"origin", origin.encode()))
    if workspace is not None:
        headers.append((b"x-workspace-id", str(workspace).encode()))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if cookie:
        headers.append((b"cookie", cookie.encode()))
    headers.extend(extra)
    return WebsocketCommunicator(application, "/ws", headers=headers)


@database_sync_to_async
def emit_all(events):
    """Emit ``(event_type, workspace_id)`` pairs in one committed transaction, in order."""
    with transaction.atomic():
        for event_type, workspace_id in events:
            emit(event_type, workspace_id, {"n": event_type}, persist=False)


async def frames_until(communicator, event_type):
    """Every frame received up to and including the one of ``event_type``."""
    frames = []
    while True:
        frame = json.loads(await communicator.receive_from(timeout=10))
        frames.append(frame)
        if frame["event"] == event_type:
            return frames


async def connect(communicator):
    connected, _ = await communicator.connect(timeout=10)
    return connected


@pytest.fixture
def tree():
    """Root A with children B and C; B has child D; C has child E. X → Y is an unrelated tree."""
    a = Workspace.objects.create(name="A")
    b = Workspace.objects.create(name="B", parent=a)
    c = Workspace.objects.create(name="C", parent=a)
    d = Workspace.objects.create(name="D", parent=b)
    e = Workspace.objects.create(name="E", parent=c)
    x = Workspace.objects.create(name="X")
    y = Workspace.objects.create(name="Y", parent=x)
    return {ws.name: ws for ws in (a, b, c, d, e, x, y)}


def every_workspace_then(tree, sentinel_workspace):
    events = [(f"EV_{name}", ws.id) for name, ws in tree.items()]
    events.append(("EV_GLOBAL", ""))
    events.append((SENTINEL, sentinel_workspace.id))
    return events


def test_canvas_client_receives_events_of_every_workspace(tree):
    async def scenario():
        canvas = ws_client(token=ADMIN)
        assert await connect(canvas)
        await emit_all(every_workspace_then(tree, tree["Y"]))
        frames = await frames_until(canvas, SENTINEL)
        await canvas.disconnect()
        return frames

    frames = async_to_sync(scenario)()
    assert [f["event"] for f in frames] == [*(f"EV_{name}" for name in tree), "EV_GLOBAL", SENTINEL]
    assert frames[0]["workspace_id"] == str(tree["A"].id)
    assert frames[0]["payload"] == {"n": "EV_A"}
    assert frames[-2]["workspace_id"] == ""


@pytest.mark.parametrize(
    ("client_name", "visible"),
    [
        ("B", {"A", "B", "C", "D"}),  # parent, self, sibling, child — not nephew E
        ("D", {"A", "B", "D"}),  # ancestors and self — not uncle C, cousin E
        ("E", {"A", "C", "E"}),  # not uncle B, cousin D
        ("A", {"A", "B", "C", "D", "E", "X"}),  # every descendant, and X: all roots are siblings
    ],
)
def test_workspace_client_sees_only_events_it_may_communicate_with(tree, client_name, visible):
    _, token = token_mint(workspace=tree[client_name])

    async def scenario():
        client = ws_client(workspace=tree[client_name].id, token=token)
        assert await connect(client)
        await emit_all(every_workspace_then(tree, tree[client_name]))
        frames = await frames_until(client, SENTINEL)
        assert await client.receive_nothing(timeout=0.3)
        await client.disconnect()
        return frames

    frames = async_to_sync(scenario)()
    seen = [f["event"] for f in frames[:-1]]
    assert seen == [f"EV_{name}" for name in tree if name in visible]
    assert frames[-1]["workspace_id"] == str(tree[client_name].id)


def test_workspace_client_with_wrong_or_missing_token_is_rejected(tree):
    token_mint(workspace=tree["D"])
    _, other_token = token_mint(workspace=tree["E"])

    async def scenario():
        results = []
        for token in (None, other_token, "not-a-token"):
            client = ws_client(workspace=tree["D"].id, token=token)
            results.append(await connect(client))
            await client.disconnect()
        return results

    assert async_to_sync(scenario)() == [False, False, False]


def test_authorization_uses_first_header_and_case_sensitive_bearer(tree):
    _, token = token_mint(workspace=tree["D"])

    async def scenario():
        first_wrong = ws_client(
            workspace=tree["D"].id, extra=[(b"authorization", b"Bearer wrong"), (b"authorization", f"Bearer {token}".encode())]
        )
        lower_bearer = ws_client(workspace=tree["D"].id, extra=[(b"authorization", f"bearer {token}".encode())])
        first_right = ws_client(
            workspace=tree["D"].id, extra=[(b"authorization", f"Bearer {token}".encode()), (b"authorization", b"Bearer x")]
        )
        results = [await connect(first_wrong), await connect(lower_bearer), await connect(first_right)]
        for client in (first_wrong, lower_bearer, first_right):
            await client.disconnect()
        return results

    assert async_to_sync(scenario)() == [False, False, True]


def test_admin_token_is_accepted_for_a_workspace_client(tree, settings):
    settings.ADMIN_TOKEN = "admin-secret"
    token_mint(workspace=tree["D"])

    async def scenario():
        client = ws_client(workspace=tree["D"].id, token="admin-secret")
        assert await connect(client)
        await emit_all([("EV_E", tree["E"].id), (SENTINEL, tree["D"].id)])
        frames = await frames_until(client, SENTINEL)
        await client.disconnect()
        return frames

    # Still filtered as workspace D: the cousin's event is not delivered.
    assert [f["event"] for f in async_to_sync(scenario)()] == [SENTINEL]


def test_workspace_without_live_tokens_may_connect_without_one_in_dev_mode(tree, settings):
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None

    async def scenario():
        client = ws_client(workspace=tree["D"].id)
        assert await connect(client)
        await emit_all([("EV_C", tree["C"].id), ("EV_B", tree["B"].id), (SENTINEL, tree["D"].id)])
        frames = await frames_until(client, SENTINEL)
        await client.disconnect()
        return frames

    assert [f["event"] for f in async_to_sync(scenario)()] == ["EV_B", SENTINEL]


def test_workspace_without_live_tokens_needs_the_admin_token_outside_dev_mode(tree):
    async def scenario():
        results = {}
        for label, token in {"no_token": None, "made_up_token": "x" * 43, "admin_token": ADMIN}.items():
            client = ws_client(workspace=tree["D"].id, token=token)
            results[label] = await connect(client)
            await client.disconnect()
        return results

    assert async_to_sync(scenario)() == {"no_token": False, "made_up_token": False, "admin_token": True}


def test_dev_mode_canvas_client_connects_without_credentials(tree, settings):
    settings.DEV_MODE, settings.ADMIN_TOKEN = True, None

    async def scenario():
        client = ws_client()
        assert await connect(client)
        await emit_all([(SENTINEL, tree["A"].id)])
        frame = json.loads(await client.receive_from(timeout=10))
        await client.disconnect()
        return frame

    assert async_to_sync(scenario)()["event"] == SENTINEL


def test_workspace_id_that_is_not_a_uuid_is_rejected():
    async def scenario():
        client = ws_client(workspace="not-a-uuid")
        connected = await connect(client)
        await client.disconnect()
        return connected

    assert async_to_sync(scenario)() is False


def test_origin_must_be_allowed_or_same_origin(tree, settings):
    settings.CORS_ORIGINS = ["http://localhost:3000"]

    async def scenario():
        results = {}
        for label, kwargs in {
            "allowed": {"origin": "HTTP://LOCALHOST:3000"},
            "same_origin": {"origin": "https://molecule.example:8443", "host": "molecule.example:8443"},
            "same_origin_default_port": {"origin": "https://molecule.example", "host": "molecule.example:443"},
            "evil": {"origin": "http://evil.example", "host": "molecule.example"},
            "other_port": {"origin": "http://localhost:3001"},
            "no_origin": {},
        }.items():
            client = ws_client(**kwargs, token=ADMIN)
            results[label] = await connect(client)
            if results[label]:
                await emit_all([(SENTINEL, tree["A"].id)])
                frame = json.loads(await client.receive_from(timeout=10))
                assert frame["event"] == SENTINEL
            await client.disconnect()
        return results

    assert async_to_sync(scenario)() == {
        "allowed": True,
        "same_origin": True,
        "same_origin_default_port": True,
        "evil": False,
        "other_port": False,
        "no_origin": True,
    }


def test_connection_gauge_follows_accepted_connections():
    async def scenario():
        before = WEBSOCKET_CONNECTIONS._value.get()
        client = ws_client(token=ADMIN)
        assert await connect(client)
        during = WEBSOCKET_CONNECTIONS._value.get()
        rejected = ws_client(origin="http://evil.example", token=ADMIN)
        assert not await connect(rejected)
        after_rejected = WEBSOCKET_CONNECTIONS._value.get()
        await rejected.disconnect()
        await client.disconnect()
        after = WEBSOCKET_CONNECTIONS._value.get()
        return before, during, after_rejected, after

    before, during, after_rejected, after = async_to_sync(scenario)()
    assert during == before + 1
    assert after_rejected == before + 1
    assert after == before


def test_disconnected_client_leaves_the_events_group(redis_client):
    """The process subscribes to the group's pub/sub channel while a member is connected, and
    drops the subscription once the last one leaves."""
    group_channel = group_channel_name(EVENTS_GROUP).encode()

    async def scenario():
        client = ws_client(token=ADMIN)
        assert await connect(client)
        during = dict(redis_client.pubsub_numsub(group_channel))[group_channel]
        await client.disconnect()
        return during, dict(redis_client.pubsub_numsub(group_channel))[group_channel]

    during, after = async_to_sync(scenario)()
    assert (during, after) == (1, 0)


@pytest.mark.parametrize("production", [True, False], ids=["production", "default"])
def test_canvas_client_needs_staff_session_or_admin_token(tree, settings, django_user_model, production):
    settings.IS_PRODUCTION = production
    settings.ADMIN_TOKEN = "admin-secret"
    _, workspace_token = token_mint(workspace=tree["A"])
    plain = django_user_model.objects.create_user("viewer", password="pw")
    staff = django_user_model.objects.create_user("ops", password="pw", is_staff=True)

    def session_cookie(user):
        browser = Client()
        browser.force_login(user)
        return f"{settings.SESSION_COOKIE_NAME}={browser.cookies[settings.SESSION_COOKIE_NAME].value}"

    plain_cookie, staff_cookie = session_cookie(plain), session_cookie(staff)

    async def scenario():
        results = {}
        for label, kwargs in {
            "anonymous": {},
            "workspace_token": {"token": workspace_token},
            "wrong_admin": {"token": "admin-secreT"},
            "non_staff_session": {"cookie": plain_cookie},
            "admin_token": {"token": "admin-secret"},
            "staff_session": {"cookie": staff_cookie},
        }.items():
            client = ws_client(**kwargs)
            results[label] = await connect(client)
            if results[label]:
                await emit_all([("EV_E", tree["E"].id), (SENTINEL, tree["X"].id)])
                frames = await frames_until(client, SENTINEL)
                assert [f["event"] for f in frames] == ["EV_E", SENTINEL]
            await client.disconnect()
        return results

    assert async_to_sync(scenario)() == {
        "anonymous": False,
        "workspace_token": False,
        "wrong_admin": False,
        "non_staff_session": False,
        "admin_token": True,
        "staff_session": True,
    }


def test_client_messages_are_ignored(tree):
    async def scenario():
        client = ws_client(token=ADMIN)
        assert await connect(client)
        await client.send_to(text_data='{"event":"WORKSPACE_REMOVED"}')
        assert await client.receive_nothing(timeout=0.3)
        await emit_all([(SENTINEL, tree["A"].id)])
        frame = json.loads(await client.receive_from(timeout=10))
        await client.disconnect()
        return frame

    assert async_to_sync(scenario)()["event"] == SENTINEL
