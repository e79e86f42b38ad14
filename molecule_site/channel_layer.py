"""The Channels layer: channels-redis' pub/sub layer with a bounded queue per client.

Why pub/sub rather than the list-based ``RedisChannelLayer``: that layer keeps one Redis list per
consumer and ``group_send`` writes the message into every member's list (1,000 canvases = 1,000
writes per event, in one Lua call that blocks Redis), and every idle consumer holds a blocking
``BZPOPMIN`` whose read redis-py 8 times out after 5 s, closing idle WebSockets with 1011. Here
an event is one ``PUBLISH``; each web process holds one subscription and copies the frame into
the local queues of its own clients.

The original platform gives each client a send buffer of 256 frames and drops frames for a full
one. A dropped frame silently desynchronises a canvas, so here a client whose queue is full is
told to go (:data:`OVERFLOW_TYPE`, the consumer closes with 1013 "try again later") and its
queue is emptied: it reconnects and re-reads the snapshot, and nobody else waits for it.
"""

from __future__ import annotations

import asyncio
import logging

from channels.layers import get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer, RedisPubSubLoopLayer, RedisSingleShardConnection
from channels_redis.utils import _wrap_close, decode_hosts

from molecule_site.redis_client import get_binary_redis

log = logging.getLogger(__name__)

DEFAULT_CAPACITY = 256
OVERFLOW_TYPE = "layer.overflow"


class _BoundedShard(RedisSingleShardConnection):
    async def _do_receiving(self):
        """Upstream's receive loop, yielding after every message: several publications arrive in
        one socket read, and without a yield none of the consumers would run until the whole
        batch had been queued, so a burst longer than the queues would evict every client."""
        while True:
            try:
                if self._pubsub and self._pubsub.subscribed:
                    message = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
                    self._receive_message(message)
                    await asyncio.sleep(0)
                else:
                    await asyncio.sleep(0.1)
            except (asyncio.CancelledError, asyncio.TimeoutError, GeneratorExit):
                raise
            except BaseException:
                log.exception("channel layer: receive failed; retrying in 1 s")
                await asyncio.sleep(1)

    def _receive_message(self, message):
        if message is None:
            return
        name = message["channel"]
        if isinstance(name, bytes):
            name = name.decode()
        layer = self.channel_layer
        # Decoded once per publication, not once per client (channels-redis decodes in receive()).
        if name in layer.channels:
            layer.deliver(name, layer.channel_layer.deserialize(message["data"]))
        elif name in layer.groups:
            decoded = layer.channel_layer.deserialize(message["data"])
            for channel_name in tuple(layer.groups[name]):
                layer.deliver(channel_name, decoded)


class _BoundedLoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *, capacity: int = DEFAULT_CAPACITY, **kwargs):
        super().__init__(hosts, **kwargs)
        self.capacity = capacity
        self._shards = [_BoundedShard(host, self) for host in decode_hosts(hosts)]
        self._evicted: set[str] = set()

    async def _subscribe_to_channel(self, channel):
        # One slot more than the capacity so the overflow notice always fits.
        self.channels[channel] = asyncio.Queue(maxsize=self.capacity + 1)
        await self._get_shard(channel).subscribe(channel)

    def deliver(self, channel: str, message: dict) -> None:
        queue = self.channels.get(channel)
        if queue is None:
            self._evicted.discard(channel)
            return
        if channel in self._evicted:
            return  # told to go; nothing more until it has
        if queue.qsize() < self.capacity:
            queue.put_nowait(dict(message))  # each consumer its own copy, as if decoded for it
            return
        log.warning("ws: client %s fell %d frames behind; disconnecting it", channel, self.capacity)
        self._evicted.add(channel)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait({"type": OVERFLOW_TYPE})

    async def receive(self, channel):
        """channels-redis' receive, on queues that already hold decoded messages."""
        if channel not in self.channels:
            await self._subscribe_to_channel(channel)
        queue = self.channels[channel]
        try:
            return await queue.get()
        except (asyncio.CancelledError, asyncio.TimeoutError, GeneratorExit):
            # As upstream: a cancelled receive means the consumer is going away.
            if channel in self.channels:
                del self.channels[channel]
                try:
                    await self._get_shard(channel).unsubscribe(channel)
                except BaseException:
                    log.exception("could not unsubscribe channel %s", channel)
            raise

    async def group_discard(self, group, channel):
        self._evicted.discard(channel)
        await super().group_discard(group, channel)


class BoundedPubSubChannelLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose per-channel queues hold at most ``capacity`` frames."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        try:
            return self._layers[loop]
        except KeyError:
            layer = _BoundedLoopLayer(*self._args, **self._kwargs, channel_layer=self)
            self._layers[loop] = layer
            _wrap_close(self, loop)
            return layer


def group_channel_name(group: str, prefix: str = "asgi") -> str:
    """The Redis pub/sub channel the layer uses for ``group`` (channels-redis' naming)."""
    return f"{prefix}__group__{group}"


def group_publication(group: str, message: dict) -> tuple[str, bytes]:
    """``(channel, bytes)`` that, PUBLISHed to Redis, is ``group_send(group, message)``; lets a
    caller add an event to a Redis pipeline it sends anyway (the heartbeat does)."""
    return group_channel_name(group), get_channel_layer().serialize(message)


def publish_sync(group: str, message: dict) -> None:
    """``group_send`` for sync code without an event loop of its own (Celery tasks, commands).

    ``async_to_sync(group_send)`` would open a layer, a Redis connection and an event loop per
    call there; one PUBLISH on the process's Redis pool carries the same bytes.
    """
    get_binary_redis().publish(*group_publication(group, message))


_FAILED = object()


async def dispatch_in_order(sources, dispatch) -> None:
    """channels' ``await_many_dispatch`` without a new task and an ``asyncio.wait`` per message.

    One reader per source hands its messages over a one-slot queue, so messages are dispatched
    one at a time in arrival order, and a reader waits while a message is being handled: the
    layer's bounded queue keeps filling for a client that cannot keep up (see the layer above).
    Ends with the first exception of a handler or a source (``StopConsumer`` included).
    """
    inbox: asyncio.Queue = asyncio.Queue(maxsize=1)

    async def read(source):
        try:
            while True:
                await inbox.put(await source())
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the dispatching loop
            await inbox.put((_FAILED, exc))

    readers = [asyncio.ensure_future(read(source)) for source in sources]
    try:
        while True:
            message = await inbox.get()
            if isinstance(message, tuple) and message and message[0] is _FAILED:
                raise message[1]
            await dispatch(message)
    finally:
        for reader in readers:
            reader.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
