"""The busy-target A2A queue (spec §8.4 "Queue drain", §19 "A2A queue").

When the proxy finds a target busy (its agent timed out, hung up or reset the connection) it
stores the normalised request here and answers 202 ``queued``. A heartbeat reporting spare
capacity calls :func:`registry.a2a_drain.schedule_drain`, which queues the Celery task that
re-sends ONE item (highest priority, oldest first) through the proxy. This module is the
queue's storage, below the proxy; the drain sits above it.

The heartbeat is the hot path, so it must not cost a database query or a Celery message for
the (usual) workspace with nothing queued: :func:`enqueue` raises a Redis flag
``ws:{id}:a2a_queued``, the heartbeat reads it in the Redis round trip it makes anyway
(``registry.services``), and only while it is up (or when Redis cannot tell) is the task
queued. A drain that finds nothing left lowers it. The flag is a hint: rows live in
PostgreSQL, and if Redis is wiped the flag comes back with the next enqueue for that workspace.
"""

from __future__ import annotations

import logging

import redis
from django.db import IntegrityError, transaction
from django.utils import timezone

from molecule_site.redis_client import get_redis
from registry.models import A2AQueueItem, A2AQueueStatus

log = logging.getLogger(__name__)

DEFAULT_PRIORITY = 50
# The flag outlives any sane queue wait; admin drop-stale expires rows after an hour by default.
QUEUED_FLAG_TTL_SECONDS = 24 * 3600


def queued_flag_key(workspace_id) -> str:
    return f"ws:{workspace_id}:a2a_queued"


def _raise_flag(workspace_id) -> None:
    try:
        get_redis().set(queued_flag_key(workspace_id), "1", ex=QUEUED_FLAG_TTL_SECONDS)
    except redis.RedisError:
        log.warning("could not flag the A2A queue of workspace %s", workspace_id)


def lower_flag(workspace_id) -> None:
    try:
        get_redis().delete(queued_flag_key(workspace_id))
    except redis.RedisError:
        log.warning("could not clear the A2A queue flag of workspace %s", workspace_id)


# --- Services -------------------------------------------------------------------------------------

def enqueue(
    *, workspace_id, caller_id: str | None, body: dict, priority: int = DEFAULT_PRIORITY,
    idempotency_key: str | None = None,
) -> A2AQueueItem:
    """Queue ``body`` (a normalised JSON-RPC request) for ``workspace_id``; returns the row.

    With an ``idempotency_key`` (the proxy uses ``params.message.messageId``), a request
    already waiting under that key is returned instead of queued twice.
    """
    try:
        with transaction.atomic():
            item = A2AQueueItem.objects.create(
                workspace_id=workspace_id, caller_id=caller_id, body=body, priority=priority,
                idempotency_key=idempotency_key or None,
            )
    except IntegrityError:
        if not idempotency_key:
            raise
        item = A2AQueueItem.objects.filter(
            workspace_id=workspace_id, idempotency_key=idempotency_key, status=A2AQueueStatus.QUEUED
        ).first()
        if item is None:  # the waiting twin was drained meanwhile: queue this one after all
            return enqueue(workspace_id=workspace_id, caller_id=caller_id, body=body, priority=priority)
    _raise_flag(workspace_id)
    return item


def queue_depth(workspace_id) -> int:
    """How many requests wait (status ``queued``) for ``workspace_id``."""
    return A2AQueueItem.objects.filter(workspace_id=workspace_id, status=A2AQueueStatus.QUEUED).count()


def claim_next(workspace_id) -> A2AQueueItem | None:
    """Take the highest-priority, oldest ``queued`` item and mark it ``dispatched`` (committed).

    ``FOR UPDATE SKIP LOCKED``: a concurrent drainer holding a row makes us take the next one
    instead of waiting for it or sending it twice.
    """
    with transaction.atomic():
        item = (
            A2AQueueItem.objects.select_for_update(skip_locked=True)
            .filter(workspace_id=workspace_id, status=A2AQueueStatus.QUEUED)
            .order_by("-priority", "created_at")
            .first()
        )
        if item is None:
            return None
        item.attempts += 1
        item.status = A2AQueueStatus.DISPATCHED
        item.dispatched_at = timezone.now()
        item.save(update_fields=["attempts", "status", "dispatched_at"])
    return item


def finish(item: A2AQueueItem, status: str, error: str | None = None) -> None:
    A2AQueueItem.objects.filter(pk=item.pk).update(status=status, last_error=error, completed_at=timezone.now())
