"""Reads for the registry: token lookups and the hierarchy rule ``can_communicate`` (spec §2.1, §8.1)."""

from __future__ import annotations

import hashlib
import uuid

from django.db import connection

from registry.models import WorkspaceAuthToken

MAX_ANCESTOR_HOPS = 32


def token_digest(plaintext: str) -> bytes:
    return hashlib.sha256(plaintext.encode()).digest()


def workspace_has_live_token(workspace_id) -> bool:
    """Spec: COUNT(revoked_at IS NULL) > 0 for the workspace, with no join on its status."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return False
    return WorkspaceAuthToken.objects.filter(workspace_id=parsed, revoked_at__isnull=True).exists()


def any_live_token() -> bool:
    """Whether any workspace token is live anywhere (the fresh-install probe)."""
    return WorkspaceAuthToken.objects.filter(revoked_at__isnull=True).exists()


def as_uuid(value) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except (ValueError, TypeError, AttributeError):
        return None


_ANCESTRY_SQL = """
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
        cursor.execute(_ANCESTRY_SQL, [ids, MAX_ANCESTOR_HOPS])
        rows = cursor.fetchall()
    chains: dict[uuid.UUID, list[tuple[uuid.UUID, uuid.UUID | None]]] = {}
    for start_id, node_id, parent_id in rows:
        chains.setdefault(start_id, []).append((node_id, parent_id))
    return chains


def can_communicate(caller_id, target_id) -> bool:
    """The org chart as the communication topology (spec §8.1).

    Allowed: self; siblings (same parent, and all roots are mutual siblings); any ancestor ↔
    descendant. Denied: cousins, uncle↔nephew, and ids that do not exist. Status is ignored.
    """
    caller, target = as_uuid(caller_id), as_uuid(target_id)
    if caller is None or target is None:
        return False
    if caller == target:
        return True
    chains = ancestries([caller, target])
    if caller not in chains or target not in chains:
        return False
    caller_chain, target_chain = chains[caller], chains[target]
    if caller_chain[0][1] == target_chain[0][1]:
        return True
    caller_ancestors = {node for node, _ in caller_chain[1:]}
    target_ancestors = {node for node, _ in target_chain[1:]}
    return target in caller_ancestors or caller in target_ancestors
