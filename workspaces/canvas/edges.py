"""The A2A overlay's edges (canvas spec §1.4): who called whom in the last hour, one edge per pair.

Reads only (a selector over ``activity_logs``). A call between two workspaces leaves one or two
rows: the proxy's ``a2a_receive`` row on the TARGET with the caller as ``source_id`` (every A2A
request one workspace sends another, whether its runtime called the peer itself or the platform
delivered a delegation), and, for an async delegation, the ``delegation``/``delegate`` row on
the SOURCE — also there when the delivery never happened. The delegation id is the delivered
message's ``messageId``, so the pair of rows counts as one call. Calls from the canvas (no
``source_id``) are not edges, and neither are rows a runtime reports about itself (``a2a_send``
and its own ``a2a_receive``: the proxy's row already counts that call).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import F
from django.db.models.fields.json import KT
from django.utils import timezone

from activity.models import ActivityLog

WINDOW = timedelta(minutes=60)
# Bounds the read on a very busy org: the newest rows of the window are the ones that matter.
MAX_ROWS = 5000


@dataclass
class Edge:
    source: uuid.UUID
    target: uuid.UUID
    calls: int
    last_at: datetime


def a2a_edges(*, now: datetime | None = None, window: timedelta = WINDOW) -> list[Edge]:
    """Directed edges source → target with the number of calls in ``window`` and the latest one,
    most recent first. Two queries, each bounded by ``MAX_ROWS``."""
    since = (now or timezone.now()) - window
    delegations = (
        ActivityLog.objects.filter(
            activity_type="delegation", method="delegate", created_at__gte=since, target_id__isnull=False,
        )
        .order_by("-created_at")
        .values_list("workspace_id", "target_id", "created_at", KT("request_body__delegation_id"))[:MAX_ROWS]
    )
    received = (
        ActivityLog.objects.filter(
            activity_type="a2a_receive", created_at__gte=since, source_id__isnull=False, target_id=F("workspace_id"),
        )
        .exclude(source_id=F("workspace_id"))
        .order_by("-created_at")
        .values_list("source_id", "workspace_id", "created_at", KT("request_body__params__message__messageId"))[:MAX_ROWS]
    )
    edges: dict[tuple[uuid.UUID, uuid.UUID], Edge] = {}
    counted: set[tuple[uuid.UUID, uuid.UUID, str]] = set()
    for source, target, created_at, message_id in [*delegations, *received]:
        if source == target:
            continue
        if message_id:
            if (source, target, message_id) in counted:
                continue
            counted.add((source, target, message_id))
        edge = edges.get((source, target))
        if edge is None:
            edges[(source, target)] = Edge(source, target, 1, created_at)
        else:
            edge.calls += 1
            edge.last_at = max(edge.last_at, created_at)
    return sorted(edges.values(), key=lambda edge: edge.last_at, reverse=True)
