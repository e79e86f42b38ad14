"""Reads for the registry: token lookups, the hierarchy rule ``can_communicate``, discovery and
peers, and the runtime overrides heartbeats leave in Redis (spec §2.1, §7.2, §8.1, §8.3)."""

from __future__ import annotations

import json
import logging
import time
import uuid

import redis
from django.db.models import Case, IntegerField, Q, Value, When

from molecule_site import adb
from molecule_site.redis_client import get_redis
from registry.models import WorkspaceAuthToken
from registry.redis_keys import LOAD_TTL_SECONDS, load_key
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.selectors import ANCESTRY_SQL, MAX_ANCESTOR_HOPS, ancestries, as_uuid, chains_of, workspace_summary

log = logging.getLogger(__name__)

def workspace_has_live_token(workspace_id) -> bool:
    """Spec: COUNT(revoked_at IS NULL) > 0 for the workspace, with no join on its status."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return False
    return WorkspaceAuthToken.objects.filter(workspace_id=parsed, revoked_at__isnull=True).exists()


LIVE_TOKEN_SQL = "SELECT EXISTS (SELECT 1 FROM workspace_auth_tokens WHERE workspace_id = %s AND revoked_at IS NULL)"


async def aworkspace_has_live_token(workspace_id, *, conn=None) -> bool:
    """:func:`workspace_has_live_token` on the async driver (``conn``: inside a transaction)."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return False
    return (await adb.fetchone(LIVE_TOKEN_SQL, [parsed], conn=conn))[0]


WORKSPACE_EXISTS_SQL = "SELECT EXISTS (SELECT 1 FROM workspaces WHERE id = %s)"


async def aworkspace_exists(workspace_id) -> bool:
    """Whether the platform has a row for ``workspace_id`` (any status, removed included)."""
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return False
    return (await adb.fetchone(WORKSPACE_EXISTS_SQL, [parsed]))[0]


def any_live_token() -> bool:
    """Whether any workspace token is live anywhere (the fresh-install probe)."""
    return WorkspaceAuthToken.objects.filter(revoked_at__isnull=True).exists()


_ANCESTRY_WITH_VERSION_SQL = ANCESTRY_SQL.replace(
    "SELECT start_id, id, parent_id FROM chain",
    "SELECT start_id, id, parent_id, (SELECT version FROM workspace_tree_version) FROM chain",
)
# The org tree's version: a trigger on workspaces bumps it with every insert, delete or parent
# change, in the same transaction (workspaces migration 0003).
TREE_VERSION_SQL = "SELECT version FROM workspace_tree_version"
HIERARCHY_CACHE_SIZE = 10_000
_hierarchy_cache: dict[tuple[uuid.UUID, uuid.UUID], tuple[int, bool]] = {}


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
    return hierarchy_allows(caller, target, ancestries([caller, target]))


async def acan_communicate(caller_id, target_id, *, tree_version: int | None = None) -> bool:
    """:func:`can_communicate` on the async driver, answered from :data:`_hierarchy_cache` while
    the org tree is unchanged (the ``workspace_tree_version`` row moves with every change).
    ``tree_version``: the version the caller already read in a statement of its own."""
    caller, target = as_uuid(caller_id), as_uuid(target_id)
    if caller is None or target is None:
        return False
    if caller == target:
        return True
    version = tree_version if tree_version is not None else (await adb.fetchone(TREE_VERSION_SQL))[0]
    cached = _hierarchy_cache.get((caller, target))
    if cached is not None and cached[0] == version:
        return cached[1]
    rows = await adb.fetchall(_ANCESTRY_WITH_VERSION_SQL, [[caller, target], MAX_ANCESTOR_HOPS])
    # The version read in the same statement (same snapshot) as the chains it labels.
    snapshot_version = rows[0][3] if rows else version
    allowed = hierarchy_allows(caller, target, chains_of(rows))
    if len(_hierarchy_cache) >= HIERARCHY_CACHE_SIZE:
        _hierarchy_cache.clear()
    _hierarchy_cache[(caller, target)] = (snapshot_version, allowed)
    return allowed


def hierarchy_allows(caller: uuid.UUID, target: uuid.UUID, chains: dict) -> bool:
    """The rule of :func:`can_communicate` over the two ancestor chains."""
    if caller not in chains or target not in chains:
        return False
    caller_chain, target_chain = chains[caller], chains[target]
    if caller_chain[0][1] == target_chain[0][1]:
        return True
    caller_ancestors = {node for node, _ in caller_chain[1:]}
    target_ancestors = {node for node, _ in target_chain[1:]}
    return target in caller_ancestors or caller in target_ancestors


# --- registry reads: runtime overrides, load samples, peers (spec §7.2 step 6, §8.3) -------------------

RUNTIME_IDLE_TIMEOUT_FIELD = "idle_timeout_seconds"
RUNTIME_CAPABILITIES_FIELD = "capabilities"


def runtime_overrides_key(workspace_id) -> str:
    """Redis hash of what the last heartbeat reported about the runtime (spec §7.2 step 6).

    Fields: ``idle_timeout_seconds`` (decimal string, only when > 0) and ``capabilities``
    (compact JSON object ``{name: bool}``, only when non-empty). Rewritten by every heartbeat
    (absent fields are cleared) and expiring with the liveness TTL.
    """
    return f"ws:{workspace_id}:runtime"


def parse_runtime_overrides(raw: dict) -> dict:
    """``{"idle_timeout_seconds": int | None, "capabilities": {name: bool}}`` from the overrides
    hash a heartbeat left in Redis; garbage reads as "no override", so callers (the A2A proxy)
    fall back to their defaults."""
    overrides = {RUNTIME_IDLE_TIMEOUT_FIELD: None, RUNTIME_CAPABILITIES_FIELD: {}}
    try:
        if raw.get(RUNTIME_IDLE_TIMEOUT_FIELD):
            overrides[RUNTIME_IDLE_TIMEOUT_FIELD] = int(raw[RUNTIME_IDLE_TIMEOUT_FIELD])
        if raw.get(RUNTIME_CAPABILITIES_FIELD):
            capabilities = json.loads(raw[RUNTIME_CAPABILITIES_FIELD])
            if isinstance(capabilities, dict):
                overrides[RUNTIME_CAPABILITIES_FIELD] = capabilities
    except ValueError:
        pass
    return overrides


_JOINED_LISTS_SCRIPT = """
local joined = {}
for i, key in ipairs(KEYS) do joined[i] = table.concat(redis.call('LRANGE', key, 0, -1), ',') end
return joined
"""


def load_samples(workspace_ids, *, now: float | None = None) -> dict[str, list[int]]:
    """``{workspace id: [active tasks, …]}``, oldest first: the samples recent heartbeats left
    (``redis_keys.load_key``) no older than ``LOAD_TTL_SECONDS``, for the canvas's sparklines.

    One Redis command for any number of workspaces: a read-only script joins each list, so a
    page's 200 workspaces come back as 200 strings, not 6,000 list items to parse. Workspaces
    without samples are left out; so is everything when Redis cannot answer (a sparkline is not
    worth failing a page)."""
    ids = [str(workspace_id) for workspace_id in workspace_ids]
    if not ids:
        return {}
    try:
        joined = get_redis().eval(_JOINED_LISTS_SCRIPT, len(ids), *[load_key(workspace_id) for workspace_id in ids])
    except redis.RedisError:
        log.warning("could not read the load samples of %d workspace(s)", len(ids))
        return {}
    oldest = (time.time() if now is None else now) - LOAD_TTL_SECONDS
    samples = {}
    for workspace_id, raw in zip(ids, joined):
        values = []
        for entry in reversed(raw.split(",") if raw else []):
            stamp, _, tasks = entry.partition(":")
            try:
                if int(stamp) >= oldest:
                    values.append(max(int(tasks), 0))
            except ValueError:
                continue  # not ours: skip it rather than drop the workspace's other samples
        if values:
            samples[workspace_id] = values
    return samples


def workspace_peers(workspace_id, *, q: str = "") -> list[dict] | None:
    """Siblings (all other roots for a root), then children, then the parent; None if no such row.

    Removed workspaces are left out; ``q`` keeps those whose name or role contains it,
    case-insensitively. Two queries: the workspace itself, then all its peers.
    """
    parsed = as_uuid(workspace_id)
    if parsed is None:
        return None
    me = Workspace.objects.filter(pk=parsed).values("id", "parent_id").first()
    if me is None:
        return None
    siblings = Q(parent_id=me["parent_id"]) if me["parent_id"] else Q(parent_id__isnull=True)
    siblings &= ~Q(pk=parsed)
    children = Q(parent_id=parsed)
    parent = Q(pk=me["parent_id"]) if me["parent_id"] else Q(pk__in=[])
    peers = (
        Workspace.objects.filter(siblings | children | parent)
        .exclude(status=WorkspaceStatus.REMOVED)
        .annotate(
            peer_group=Case(
                When(siblings, then=Value(0)), When(children, then=Value(1)), default=Value(2),
                output_field=IntegerField(),
            )
        )
        .only("id", "name", "role", "tier", "status", "agent_card", "url", "parent_id", "active_tasks")
        .order_by("peer_group", "created_at", "id")
    )
    if q:
        peers = peers.filter(Q(name__icontains=q) | Q(role__icontains=q))
    return [workspace_summary(peer) for peer in peers]
