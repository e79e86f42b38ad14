"""Reads of the org tree and the wire shapes of workspace rows (spec §5.2, §5.3)."""

from __future__ import annotations

import uuid

from django.db import connection

from molecule_site.wire import rfc3339
from workspaces.models import CanvasLayout, Workspace, WorkspaceStatus

MAX_ANCESTOR_HOPS = 32


def as_uuid(value) -> uuid.UUID | None:
    """``value`` as a UUID, or None when it is not one (ids from paths, headers, bodies)."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


ANCESTRY_SQL = """
WITH RECURSIVE chain(start_id, id, parent_id, depth) AS (
    SELECT id, id, parent_id, 0 FROM workspaces WHERE id = ANY(%s)
    UNION ALL
    SELECT chain.start_id, w.id, w.parent_id, chain.depth + 1
    FROM workspaces w JOIN chain ON w.id = chain.parent_id
    WHERE chain.depth < %s
)
SELECT start_id, id, parent_id FROM chain ORDER BY start_id, depth
"""


def ancestries(workspace_ids) -> dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None]]]:
    """For each existing id: ``[(self, parent), (parent, grandparent), …]`` up to 32 hops, in one query."""
    ids = [parsed for parsed in map(as_uuid, workspace_ids) if parsed is not None]
    if not ids:
        return {}
    with connection.cursor() as cursor:
        cursor.execute(ANCESTRY_SQL, [ids, MAX_ANCESTOR_HOPS])
        return chains_of(cursor.fetchall())


def chains_of(rows) -> dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None]]]:
    chains: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None]]] = {}
    for start_id, node_id, parent_id, *_ in rows:
        chains.setdefault(start_id, []).append((node_id, parent_id))
    return chains


_DESCENDANTS_SQL = """
WITH RECURSIVE tree(id) AS (
    SELECT id FROM workspaces WHERE parent_id = %s AND status <> 'removed'
    UNION
    SELECT w.id FROM workspaces w JOIN tree ON w.parent_id = tree.id WHERE w.status <> 'removed'
)
SELECT id FROM tree
"""


def workspace_get(workspace_id) -> Workspace | None:
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return None
    return Workspace.objects.select_related("layout").filter(pk=parsed).first()


def workspace_list() -> list[Workspace]:
    """Every workspace that is not removed, oldest first, with its canvas layout."""
    return list(Workspace.objects.exclude(status=WorkspaceStatus.REMOVED).select_related("layout").order_by("created_at"))


def descendant_ids(workspace_id: uuid.UUID) -> list[uuid.UUID]:
    """Ids of all non-removed descendants, at any depth (``UNION`` stops on a corrupt cycle)."""
    with connection.cursor() as cursor:
        cursor.execute(_DESCENDANTS_SQL, [workspace_id])
        return [row[0] for row in cursor.fetchall()]


def ancestor_ids(workspace_id: uuid.UUID) -> list[uuid.UUID]:
    """Parent first, then grandparent…, up to the hop limit of ``can_communicate``."""
    chain = ancestries([workspace_id]).get(workspace_id, [])
    return [node for node, _ in chain[1:]]


def paused_ancestor(workspace: Workspace) -> Workspace | None:
    ids = ancestor_ids(workspace.id)
    if not ids:
        return None
    paused = {w.id: w for w in Workspace.objects.filter(pk__in=ids, status=WorkspaceStatus.PAUSED)}
    return next((paused[i] for i in ids if i in paused), None)


def would_create_cycle(workspace_id: uuid.UUID, new_parent_id: uuid.UUID) -> bool:
    """A workspace may not become its own ancestor."""
    return new_parent_id == workspace_id or workspace_id in ancestor_ids(new_parent_id)


def children_of(workspace_id: uuid.UUID) -> list[Workspace]:
    return list(
        Workspace.objects.filter(parent_id=workspace_id).exclude(status=WorkspaceStatus.REMOVED).order_by("created_at")
    )


# --- wire shapes ----------------------------------------------------------------------------------

def number(value: float) -> float | int:
    """Go prints integral floats without a fraction (``100``, not ``100.0``)."""
    return int(value) if float(value).is_integer() else value


def _position(workspace: Workspace) -> tuple[float | int, float | int, bool]:
    try:
        layout = workspace.layout
    except CanvasLayout.DoesNotExist:
        return 0, 0, False
    return number(layout.x), number(layout.y), layout.collapsed


def workspace_summary(workspace: Workspace) -> dict:
    """The fields every workspace shape starts with (also the item of ``GET /registry/:id/peers``)."""
    return {
        "id": str(workspace.id),
        "name": workspace.name,
        "role": workspace.role or None,
        "tier": workspace.tier,
        "status": workspace.status,
        "agent_card": workspace.agent_card,
        "url": workspace.url or "",
        "parent_id": str(workspace.parent_id) if workspace.parent_id else None,
        "active_tasks": workspace.active_tasks,
    }


def _common(workspace: Workspace) -> dict:
    x, y, collapsed = _position(workspace)
    return {
        **workspace_summary(workspace),
        "max_concurrent_tasks": workspace.max_concurrent_tasks,
        "last_error_rate": number(workspace.last_error_rate),
        "uptime_seconds": workspace.uptime_seconds,
        "runtime": workspace.runtime or "langgraph",
        "x": x,
        "y": y,
        "collapsed": collapsed,
    }


def workspace_list_item(workspace: Workspace, provision_timeout_ms: int | None = None) -> dict:
    """An item of ``GET /workspaces`` (``provision_timeout_ms`` only when the template sets one)."""
    item = {
        **_common(workspace),
        "last_sample_error": workspace.last_sample_error or "",
        "current_task": workspace.current_task or "",
        "workspace_dir": workspace.workspace_dir or None,
        "monthly_spend": workspace.monthly_spend,
        "budget_limit": workspace.budget_limit,
    }
    if provision_timeout_ms:
        item["provision_timeout_ms"] = provision_timeout_ms
    return item


def workspace_detail(workspace: Workspace) -> dict:
    """``GET /workspaces/:id``: the list shape without spend/budget/dir/sample error, plus last outbound.

    ``current_task`` is kept although the original strips it: older clients read it here (§20.5).
    """
    return {
        **_common(workspace),
        "current_task": workspace.current_task or "",
        "last_outbound_at": rfc3339(workspace.last_outbound_at) if workspace.last_outbound_at else None,
    }
