"""Writes of agent memories (spec §11.1) and key/value memory (spec §11.2)."""

from __future__ import annotations

import hashlib
import json
import uuid

from django.db import connection, transaction

from activity.models import ActivityLog
from memory import selectors
from memory.models import AgentMemory, MemoryScope, WorkspaceMemory
from memory.redaction import redact_json_secrets, redact_secrets
from molecule_site.errors import ApiError
from workspaces.models import Workspace
from workspaces.selectors import as_uuid

DEFAULT_NAMESPACE = "general"
NAMESPACE_MAX_CHARS = 50
GLOBAL_AUDIT_ACTIVITY = "memory_write_global"
# A GLOBAL memory is shown to every reader inside a "[MEMORY id=… scope=GLOBAL from=…]:" frame
# (selectors.global_wrapped); content may not open a frame of its own and impersonate another.
FRAME_OPENER, FRAME_OPENER_NEUTRALISED = "[MEMORY ", "[_MEMORY "
# The original reads ttl_seconds into a Go time.Duration, which cannot hold more seconds.
MAX_TTL_SECONDS = (2**63 - 1) // 10**9


def _workspace(workspace_id) -> Workspace:
    parsed = as_uuid(workspace_id)
    workspace = Workspace.objects.filter(pk=parsed).only("id", "parent_id").first() if parsed else None
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


# --- agent memories ---------------------------------------------------------------------------------

def agent_memory_commit(*, workspace_id, content: str, scope: str, namespace: str | None = None) -> AgentMemory:
    """Store a memory: validated, secret-redacted; GLOBAL only from a root, and audited.

    The GLOBAL audit row (``memory_write_global``, request_body ``{memory_id, namespace,
    content_sha256}`` — the hash of the stored content) is written in the same transaction as the
    memory, so there is never one without the other.
    """
    if scope not in MemoryScope.values:
        raise ApiError("scope must be LOCAL, TEAM, or GLOBAL")
    namespace = namespace or DEFAULT_NAMESPACE
    if len(namespace) > NAMESPACE_MAX_CHARS:
        raise ApiError("namespace must be <= 50 characters")
    workspace = _workspace(workspace_id)
    if scope == MemoryScope.GLOBAL and workspace.parent_id is not None:
        raise ApiError("only root workspaces can write GLOBAL memories", status=403)
    content = redact_secrets(content)
    if scope == MemoryScope.GLOBAL:
        content = content.replace(FRAME_OPENER, FRAME_OPENER_NEUTRALISED)
    with transaction.atomic():
        memory = AgentMemory.objects.create(workspace_id=workspace.id, content=content, scope=scope, namespace=namespace)
        if scope == MemoryScope.GLOBAL:
            ActivityLog.objects.create(
                workspace_id=workspace.id,
                activity_type=GLOBAL_AUDIT_ACTIVITY,
                source_id=workspace.id,
                summary=f"GLOBAL memory written (namespace {namespace})",
                request_body={
                    "memory_id": str(memory.id),
                    "namespace": namespace,
                    "content_sha256": hashlib.sha256(content.encode()).hexdigest(),
                },
            )
    return memory


def agent_memory_delete(*, workspace_id, memory_id) -> None:
    """Delete one of the workspace's own memories; anyone else's is "not found"."""
    workspace, memory = as_uuid(workspace_id), as_uuid(memory_id)
    deleted = 0
    if workspace is not None and memory is not None:
        deleted, _ = AgentMemory.objects.filter(pk=memory, workspace_id=workspace).delete()
    if not deleted:
        raise ApiError("memory not found or not owned by this workspace", status=404)


# --- key/value memory ----------------------------------------------------------------------------------
#
# Every write is one statement, so concurrent writers need no lock held across round trips:
# a plain set is an upsert; an ``if_match_version`` set is a conditional INSERT … ON CONFLICT or
# UPDATE … WHERE version = n, which PostgreSQL re-checks after waiting for a concurrent writer
# of the same row, so of two writers holding the same version exactly one wins.
#
# Expiry: an expired row is a missing key for reads AND for if_match_version (``current_version``
# null, "key does not exist"; expected 0 creates). A write over an expired row replaces it but
# keeps counting its version (old + 1) instead of restarting at 1, so a version number is never
# reused for a live key: a client still holding version n from before the expiry cannot match a
# newer entry that happens to reach n again (the lease-with-TTL pattern).
# Times come from the database (``statement_timestamp()``, what Django's ``Now()`` reads with).

_EXPIRES_AT = "statement_timestamp() + %(ttl)s::float8 * interval '1 second'"  # NULL ttl ⇒ NULL

_UPSERT_SQL = f"""
INSERT INTO {WorkspaceMemory._meta.db_table} AS entry (id, workspace_id, key, value, expires_at, version, updated_at)
VALUES (%(id)s, %(workspace_id)s, %(key)s, %(value)s::jsonb, {_EXPIRES_AT}, 1, statement_timestamp())
ON CONFLICT (workspace_id, key) DO UPDATE
SET value = EXCLUDED.value, expires_at = EXCLUDED.expires_at, version = entry.version + 1,
    updated_at = EXCLUDED.updated_at
"""
_SET_SQL = _UPSERT_SQL + "RETURNING entry.version"
_CREATE_IF_MISSING_SQL = (
    _UPSERT_SQL + "WHERE entry.expires_at IS NOT NULL AND entry.expires_at <= statement_timestamp()\n"
    "RETURNING entry.version"
)
_UPDATE_IF_VERSION_SQL = f"""
UPDATE {WorkspaceMemory._meta.db_table}
SET value = %(value)s::jsonb, expires_at = {_EXPIRES_AT}, version = version + 1, updated_at = statement_timestamp()
WHERE workspace_id = %(workspace_id)s AND key = %(key)s AND version = %(expected)s
  AND (expires_at IS NULL OR expires_at > statement_timestamp())
RETURNING version
"""


def workspace_memory_set(
    *, workspace_id, key: str, value, ttl_seconds: int | None = None, if_match_version: int | None = None
) -> int:
    """Set ``key`` to ``value`` (any JSON) and return the entry's new version.

    ``ttl_seconds`` > 0 makes the entry expire that many seconds from now; otherwise it never
    expires. With ``if_match_version`` the write only happens when the live entry has that
    version (0: when there is no live entry); else a 409 carrying the current version.

    Beyond the spec, the value is secret-redacted like a memory's content (every string in it,
    see :func:`memory.redaction.redact_json_secrets`). The key is not: it is the entry's address,
    which the agent reads back by the name it wrote.
    """
    if not key:
        raise ApiError("key is required")
    if ttl_seconds is not None and ttl_seconds > MAX_TTL_SECONDS:
        raise ApiError("invalid request body")
    workspace = _workspace(workspace_id)
    params = {
        "id": uuid.uuid4(),
        "workspace_id": workspace.id,
        "key": key,
        "value": json.dumps(redact_json_secrets(value)),
        "ttl": ttl_seconds if ttl_seconds is not None and ttl_seconds > 0 else None,
        "expected": if_match_version,
    }
    if if_match_version is None:
        sql = _SET_SQL
    elif if_match_version == 0:
        sql = _CREATE_IF_MISSING_SQL
    else:
        sql = _UPDATE_IF_VERSION_SQL
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        written = cursor.fetchone()
    if written is not None:
        return written[0]
    current = selectors.workspace_memory_live_version(workspace_id=workspace.id, key=key)
    if current is None and if_match_version != 0:
        raise ApiError(
            "if_match_version mismatch: key does not exist", status=409,
            expected_version=if_match_version, current_version=None,
        )
    raise ApiError("if_match_version mismatch", status=409, expected_version=if_match_version, current_version=current)


def workspace_memory_delete(*, workspace_id, key: str) -> None:
    """Delete ``key`` if present (idempotent; an expired entry goes too)."""
    workspace = as_uuid(workspace_id)
    if workspace is not None:
        WorkspaceMemory.objects.filter(workspace_id=workspace, key=key).delete()
