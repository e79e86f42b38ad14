"""The event bus: every state change is announced through :func:`emit`, once, after commit.

Persisted kinds (spec §15 "P") become a ``StructureEvent`` row; every event is published to the
``events`` group of the Channels layer (Redis pub/sub), where each ``/ws`` consumer decides
whether its client may see it. Nothing is written or sent when the surrounding transaction rolls
back. Async hot paths use :func:`aemit` once their statements have committed: the same row and
the same frame, without leaving the event loop.

Publishing is best effort: with Redis down the row is still written and the request still
succeeds (clients re-read the snapshot when they reconnect).
"""

from __future__ import annotations

import json
import logging
import uuid
from functools import partial

import redis
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from activity.models import StructureEvent
from molecule_site import adb
from molecule_site.channel_layer import group_publication, publish_sync
from molecule_site.wire import rfc3339

log = logging.getLogger(__name__)

EVENTS_GROUP = "events"
CONSUMER_MESSAGE_TYPE = "event.message"


def emit(
    event_type: str,
    workspace_id,
    payload: dict | None = None,
    *,
    persist: bool = True,
    agent_id=None,
    target_id=None,
) -> None:
    """Announce ``event_type`` for ``workspace_id`` once the current transaction commits."""
    transaction.on_commit(
        partial(_deliver, event_type, workspace_id, payload or {}, persist, agent_id, target_id), robust=True
    )


def _message(event_type: str, workspace_id, moment, payload: dict) -> dict:
    """What the ``/ws`` consumers receive: the frame serialised once (not once per client), and
    its workspace id for their hierarchy filter."""
    frame = {
        "event": event_type,
        "workspace_id": str(workspace_id) if workspace_id else "",
        "timestamp": rfc3339(moment),
        "payload": payload,
    }
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False, default=str)
    return {"type": CONSUMER_MESSAGE_TYPE, "workspace_id": frame["workspace_id"], "text": text}


def _deliver(event_type, workspace_id, payload, persist, agent_id, target_id) -> None:
    moment = timezone.now()
    if persist:
        event = StructureEvent.objects.create(
            event_type=event_type, workspace_id=workspace_id or None, agent_id=agent_id, target_id=target_id,
            payload=payload,
        )
        moment = event.created_at
    message = _message(event_type, workspace_id, moment, payload)
    try:
        publish_sync(EVENTS_GROUP, message)
    except redis.RedisError:
        log.warning("could not publish %s for workspace %s", event_type, workspace_id)


_INSERT_EVENT_SQL = """
INSERT INTO structure_events (id, event_type, workspace_id, agent_id, target_id, payload, created_at)
VALUES (%s, %s, %s, %s, %s, %s::jsonb, clock_timestamp())
RETURNING created_at
"""


async def aemit(
    event_type: str,
    workspace_id,
    payload: dict | None = None,
    *,
    persist: bool = True,
    agent_id=None,
    target_id=None,
) -> None:
    """:func:`emit` for async code, called once the state change has committed."""
    payload = payload or {}
    moment = timezone.now()
    if persist:
        row = await adb.fetchone(
            _INSERT_EVENT_SQL,
            [uuid.uuid4(), event_type, workspace_id or None, agent_id, target_id,
             json.dumps(payload, separators=(",", ":"), default=str)],
        )
        moment = row[0]
    message = _message(event_type, workspace_id, moment, payload)
    try:
        await get_channel_layer().group_send(EVENTS_GROUP, message)
    except (redis.RedisError, OSError):
        log.warning("could not publish %s for workspace %s", event_type, workspace_id)


def broadcast_publication(event_type: str, workspace_id, payload: dict) -> tuple[str, bytes]:
    """A broadcast-only event (never persisted) as ``(channel, bytes)`` for a Redis pipeline the
    caller sends itself, right after its state change committed."""
    return group_publication(EVENTS_GROUP, _message(event_type, workspace_id, timezone.now(), payload))


__all__ = ["emit", "aemit", "broadcast_publication", "EVENTS_GROUP", "CONSUMER_MESSAGE_TYPE"]
