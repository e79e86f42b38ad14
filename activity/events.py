"""The event bus: every state change is announced through :func:`emit`, once, after commit.

Persisted kinds (spec §15 "P") become a ``StructureEvent`` row; every event is fanned out over
the Channels Redis layer to the ``events`` group, where each ``/ws`` consumer decides whether its
client may see it. Nothing is written or sent when the surrounding transaction rolls back.
"""

from __future__ import annotations

import logging
from functools import partial

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.utils import timezone

from activity.models import StructureEvent
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


def _deliver(event_type, workspace_id, payload, persist, agent_id, target_id) -> None:
    moment = timezone.now()
    if persist:
        event = StructureEvent.objects.create(
            event_type=event_type, workspace_id=workspace_id or None, agent_id=agent_id, target_id=target_id,
            payload=payload,
        )
        moment = event.created_at
    frame = {
        "event": event_type,
        "workspace_id": str(workspace_id) if workspace_id else "",
        "timestamp": rfc3339(moment),
        "payload": payload,
    }
    async_to_sync(get_channel_layer().group_send)(EVENTS_GROUP, {"type": CONSUMER_MESSAGE_TYPE, "frame": frame})
