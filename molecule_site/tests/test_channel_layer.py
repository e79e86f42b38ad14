"""The channel layer (molecule_site.channel_layer) on the real Redis: one PUBLISH reaches every
member of a group in this process, each client's queue is bounded, and a client that falls
behind is told to go instead of stalling the others."""

from __future__ import annotations

import asyncio

import pytest
from django.conf import settings
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from molecule_site.asgi import application
from molecule_site.channel_layer import OVERFLOW_TYPE

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

GROUP = "layer-test"


def test_a_client_that_falls_behind_is_told_to_go_and_the_others_still_get_everything(settings):
    capacity = settings.CHANNEL_LAYERS["default"]["CONFIG"]["capacity"]

    async def scenario():
        layer = get_channel_layer()
        slow, fast = await layer.new_channel(), await layer.new_channel()
        await layer.group_add(GROUP, slow)
        await layer.group_add(GROUP, fast)
        received = []

        async def keep_up():
            while len(received) < capacity + 10:
                received.append((await layer.receive(fast))["n"])

        reader = asyncio.ensure_future(keep_up())
        for n in range(capacity + 10):
            await layer.group_send(GROUP, {"type": "event.message", "n": n})
            await asyncio.sleep(0)  # let the subscription hand each one over
        await asyncio.wait_for(reader, timeout=30)
        first_for_slow = await asyncio.wait_for(layer.receive(slow), timeout=5)
        nothing_more = layer._get_layer().channels[slow].qsize()
        await layer.group_discard(GROUP, slow)
        await layer.group_discard(GROUP, fast)
        return received, first_for_slow, nothing_more

    received, first_for_slow, nothing_more = async_to_sync(scenario)()
    assert received == list(range(capacity + 10))  # the client that kept up missed nothing
    assert first_for_slow == {"type": OVERFLOW_TYPE}  # the other's backlog replaced by the notice
    assert nothing_more == 0


def test_the_events_consumer_closes_an_overflowing_client_with_1013():
    async def scenario():
        client = WebsocketCommunicator(
            application, "/ws", headers=[(b"authorization", f"Bearer {settings.ADMIN_TOKEN}".encode())]
        )
        connected, _ = await client.connect(timeout=10)
        assert connected
        layer = get_channel_layer()
        consumer_channels = [name for name in layer._get_layer().channels if name.startswith("asgi")]
        await layer.send(consumer_channels[-1], {"type": OVERFLOW_TYPE})
        closed = await client.receive_output(timeout=10)
        await client.wait()
        return closed

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 1013}
