"""Draining the busy-target A2A queue (spec §8.4 "Queue drain"): one item per Celery task.

A heartbeat with spare capacity calls :func:`schedule_drain` (when the queue's Redis flag is up,
see :mod:`registry.a2a_queue`), which queues :func:`drain_a2a_queue`; that task re-sends ONE
item through the proxy. ``molecule_site.celery`` autodiscovers only ``<app>.tasks`` modules, so
``CELERY_IMPORTS`` lists this module for workers to know the task.
"""

from __future__ import annotations

import json
import logging

from asgiref.sync import sync_to_async
from celery import shared_task

from molecule_site.wire import json_bytes
from registry import a2a_queue
from registry.models import A2AQueueStatus
from registry.proxy import proxy_a2a_sync
from workspaces.selectors import as_uuid

log = logging.getLogger(__name__)


def _error_text(result) -> str:
    try:
        decoded = json.loads(result.body)
    except ValueError:
        decoded = None
    if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
        return f"{result.status}: {decoded['error']}"
    return f"{result.status}: {result.body[:500].decode(errors='replace')}"


def drain_one(workspace_id) -> str | None:
    """Dispatch one queued request of ``workspace_id``; returns its id, or None when none waits.

    Outcome (spec §8.4): the target busy again → ``completed`` (the proxy queued the request
    anew as a fresh item); an error → ``failed`` with ``last_error``; success → ``completed``.
    No activity row is written for a drained request.
    """
    if as_uuid(workspace_id) is None:
        return None
    item = a2a_queue.claim_next(workspace_id)
    if item is None:
        a2a_queue.lower_flag(workspace_id)
        return None
    try:
        result = proxy_a2a_sync(
            target_id=str(item.workspace_id), caller_id=item.caller_id, body=json_bytes(item.body), log_activity=False
        )
    except Exception as exc:  # noqa: BLE001 - a crashed dispatch must not leave the row dispatched forever
        log.exception("A2A queue item %s crashed while dispatching", item.pk)
        a2a_queue.finish(item, A2AQueueStatus.FAILED, f"dispatch crashed: {exc}")
        return str(item.pk)
    if result.queued or result.status < 300:
        a2a_queue.finish(item, A2AQueueStatus.COMPLETED)
    else:
        a2a_queue.finish(item, A2AQueueStatus.FAILED, _error_text(result))
    return str(item.pk)


@shared_task(ignore_result=True)
def drain_a2a_queue(workspace_id: str) -> str | None:
    """Celery entry point of :func:`drain_one` (queued by :func:`schedule_drain`)."""
    return drain_one(workspace_id)


async def schedule_drain(workspace_id) -> None:
    """Heartbeat hook (spare capacity, and the heartbeat saw the queued flag up or could not
    tell): drain one item in a worker. Never raises: a heartbeat must not fail here."""
    try:
        await sync_to_async(drain_a2a_queue.delay, thread_sensitive=False)(str(workspace_id))
    except Exception:  # noqa: BLE001 - broker down: the next heartbeat tries again
        log.warning("could not schedule an A2A queue drain for workspace %s", workspace_id)
