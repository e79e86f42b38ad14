"""Reads of agent memories (search by scope, spec §11.1) and key/value memory (spec §11.2).

Each public function returns the wire shape its route answers with.
"""

from __future__ import annotations

import uuid

from django.contrib.postgres.search import SearchQuery, SearchRank
from django.db.models import F, Q, Subquery
from django.db.models.functions import Coalesce, Now

from memory.models import AgentMemory, MemoryScope, WorkspaceMemory
from molecule_site.wire import rfc3339
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.selectors import ancestries, as_uuid

SEARCH_DEFAULT_LIMIT = 50  # a limit of 1–49 is honoured; anything else (absent, bad, ≥ 50) is 50
FULL_TEXT_MIN_QUERY = 2  # shorter non-empty queries are a substring match
SEARCH_FIELDS = ("id", "workspace_id", "content", "scope", "namespace", "created_at")


def search_limit(requested: int | None) -> int:
    return requested if requested is not None and 1 <= requested < SEARCH_DEFAULT_LIMIT else SEARCH_DEFAULT_LIMIT


# --- who may read whose TEAM memories --------------------------------------------------------------

def communicable_ids(caller_id, target_ids) -> set[uuid.UUID]:
    """The ids among ``target_ids`` for which ``can_communicate(caller_id, id)`` holds.

    The same rule as :func:`registry.selectors.can_communicate` (spec §8.1), batched: one
    ancestry query for the caller and all targets instead of one per target.
    """
    caller = as_uuid(caller_id)
    targets = {parsed for parsed in map(as_uuid, target_ids) if parsed is not None}
    if caller is None or not targets:
        return set()
    allowed = {caller} & targets  # self, even before any lookup (as can_communicate does)
    chains = ancestries([caller, *targets])
    caller_chain = chains.get(caller)
    if caller_chain is None:
        return allowed
    caller_parent = caller_chain[0][1]
    caller_ancestors = {node for node, _ in caller_chain[1:]}
    for target in targets - allowed:
        chain = chains.get(target)
        if chain is None:
            continue
        if (
            chain[0][1] == caller_parent  # siblings, and roots among themselves
            or target in caller_ancestors
            or caller in {node for node, _ in chain[1:]}
        ):
            allowed.add(target)
    return allowed


def team_owner_ids(workspace_id) -> set[uuid.UUID]:
    """Workspaces whose TEAM memories ``workspace_id`` reads (spec §11.1).

    P is the workspace's parent, or the workspace itself when it is a root. The team is P and
    P's children that are not removed, less any that fail ``can_communicate`` — by the shape of
    the rule none does (P is the parent or self, its children are siblings or children), but the
    original filters, so the check stays. Two queries whatever the team size.
    """
    caller = as_uuid(workspace_id)
    if caller is None:
        return set()
    team_parent = Workspace.objects.filter(pk=caller).values(p=Coalesce("parent_id", "id"))[:1]
    candidates = list(
        Workspace.objects.exclude(status=WorkspaceStatus.REMOVED)
        .filter(Q(pk=Subquery(team_parent)) | Q(parent_id=Subquery(team_parent)))
        .values_list("id", flat=True)
    )
    return communicable_ids(caller, candidates) if candidates else set()


# --- GET /workspaces/:id/memories -----------------------------------------------------------------

def global_wrapped(memory_id, workspace_id, content: str) -> str:
    """GLOBAL content as every reader receives it, naming where it came from."""
    return f"[MEMORY id={memory_id} scope=GLOBAL from={workspace_id}]: {content}"


def agent_memory_item(row: dict) -> dict:
    content = row["content"]
    if row["scope"] == MemoryScope.GLOBAL:
        content = global_wrapped(row["id"], row["workspace_id"], content)
    return {
        "id": str(row["id"]),
        "workspace_id": str(row["workspace_id"]),
        "content": content,
        "scope": row["scope"],
        "namespace": row["namespace"],
        "created_at": rfc3339(row["created_at"]),
    }


def agent_memory_search(
    *, workspace_id, scope: str = "", q: str = "", namespace: str = "", limit: int = SEARCH_DEFAULT_LIMIT
) -> list[dict]:
    """Memories ``workspace_id`` can see at ``scope`` ("" = its own rows, every scope).

    ``q`` of two characters or more is a full-text match on the generated ``content_tsv``
    (``plainto_tsquery('english', q)``), best ``ts_rank`` first; one character is a
    case-insensitive substring match; otherwise newest first. ``scope`` must be "" or a
    :class:`MemoryScope` value (the view checks).
    """
    caller = as_uuid(workspace_id)
    if caller is None:
        return []
    if scope == MemoryScope.TEAM:
        owners = team_owner_ids(caller)
        if not owners:
            return []
        rows = AgentMemory.objects.filter(scope=MemoryScope.TEAM, workspace_id__in=owners)
    elif scope == MemoryScope.GLOBAL:
        rows = AgentMemory.objects.filter(scope=MemoryScope.GLOBAL)
    elif scope == MemoryScope.LOCAL:
        rows = AgentMemory.objects.filter(workspace_id=caller, scope=MemoryScope.LOCAL)
    else:
        rows = AgentMemory.objects.filter(workspace_id=caller)
    if namespace:
        rows = rows.filter(namespace=namespace)
    if len(q) >= FULL_TEXT_MIN_QUERY:
        query = SearchQuery(q, search_type="plain", config="english")
        rows = rows.filter(content_tsv=query).annotate(rank=SearchRank(F("content_tsv"), query))
        rows = rows.order_by("-rank", "-created_at")
    elif q:
        rows = rows.filter(content__icontains=q).order_by("-created_at")
    else:
        rows = rows.order_by("-created_at")
    return [agent_memory_item(row) for row in rows.values(*SEARCH_FIELDS)[: search_limit(limit)]]


# --- key/value memory ----------------------------------------------------------------------------

def live_entries():
    """Entries that have not expired: expired rows are filtered on read, never purged."""
    return WorkspaceMemory.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=Now()))


def workspace_memory_item(row: WorkspaceMemory) -> dict:
    """``{key, value, version, expires_at?, updated_at}``; ``expires_at`` only when one is set."""
    item = {"key": row.key, "value": row.value, "version": row.version}
    if row.expires_at is not None:
        item["expires_at"] = rfc3339(row.expires_at)
    item["updated_at"] = rfc3339(row.updated_at)
    return item


def workspace_memory_list(*, workspace_id) -> list[dict]:
    workspace = as_uuid(workspace_id)
    if workspace is None:
        return []
    return [workspace_memory_item(row) for row in live_entries().filter(workspace_id=workspace).order_by("key")]


def workspace_memory_get(*, workspace_id, key: str) -> dict | None:
    """The live entry, or None when it is missing or expired."""
    workspace = as_uuid(workspace_id)
    if workspace is None:
        return None
    row = live_entries().filter(workspace_id=workspace, key=key).first()
    return None if row is None else workspace_memory_item(row)


def workspace_memory_live_version(*, workspace_id, key: str) -> int | None:
    """The version of the live entry, None when it is missing or expired."""
    return live_entries().filter(workspace_id=workspace_id, key=key).values_list("version", flat=True).first()
