"""Memory routes (spec §11), all WorkspaceAuth on ``:id``. Thin: parse, call, shape.

Beyond the original, which answers these with a database error (500): an unknown or non-UUID
``:id`` is a 404 ``{"error":"workspace not found"}`` on a memory commit or a key/value set,
the route's own "not found" on deletes and single reads, and ``[]`` on lists and searches.
An unknown non-empty ``scope`` on search is a 400 with the commit's scope message.
"""

from rest_framework.response import Response

from memory import selectors, services
from memory.models import MemoryScope
from molecule_site.api import Api, json_body, query_int
from molecule_site.errors import ApiError
from registry.auth import WorkspaceAuth

INVALID_BODY = "invalid request body"
SCOPE_ERROR = "scope must be LOCAL, TEAM, or GLOBAL"
INT64 = range(-(2**63), 2**63)


def _object_body(request) -> dict:
    body = json_body(request)
    if not isinstance(body, dict):
        raise ApiError(INVALID_BODY)
    return body


def _optional(body: dict, key: str, kind):
    """``body[key]`` when present and of ``kind`` (JSON null counts as absent); else a 400.

    Integers must be JSON integers that fit Go's int64 (``5.0`` and ``true`` are not integers).
    """
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind) or (kind is int and value not in INT64):
        raise ApiError(INVALID_BODY)
    return value


class MemoriesApi(Api):
    """``POST /workspaces/:id/memories`` (commit) and ``GET`` (search)."""

    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        body = _object_body(request)
        content, scope = _optional(body, "content", str), _optional(body, "scope", str)
        namespace = _optional(body, "namespace", str)
        if not content or not scope:  # required: missing and "" are both a bind failure
            raise ApiError(INVALID_BODY)
        memory = services.agent_memory_commit(workspace_id=workspace_id, content=content, scope=scope, namespace=namespace)
        return Response({"id": str(memory.id), "scope": memory.scope, "namespace": memory.namespace}, status=201)

    def get(self, request, workspace_id):
        params = request.query_params
        scope = params.get("scope", "")
        if scope and scope not in MemoryScope.values:
            raise ApiError(SCOPE_ERROR)
        return Response(
            selectors.agent_memory_search(
                workspace_id=workspace_id,
                scope=scope,
                q=params.get("q", ""),
                namespace=params.get("namespace", ""),
                limit=query_int(request, "limit", selectors.SEARCH_DEFAULT_LIMIT),
            )
        )


class MemoryApi(Api):
    """``DELETE /workspaces/:id/memories/:memoryId`` (own memories only)."""

    auth_by_method = {"DELETE": (WorkspaceAuth,)}

    def delete(self, request, workspace_id, memory_id):
        services.agent_memory_delete(workspace_id=workspace_id, memory_id=memory_id)
        return Response({"status": "deleted"})


class KeyValueMemoryApi(Api):
    """``GET /workspaces/:id/memory`` (list) and ``POST`` (set)."""

    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(selectors.workspace_memory_list(workspace_id=workspace_id))

    def post(self, request, workspace_id):
        body = _object_body(request)
        key = _optional(body, "key", str)
        ttl_seconds = _optional(body, "ttl_seconds", int)
        if_match_version = _optional(body, "if_match_version", int)
        if not key:
            raise ApiError("key is required")
        version = services.workspace_memory_set(
            workspace_id=workspace_id, key=key, value=body.get("value"),
            ttl_seconds=ttl_seconds, if_match_version=if_match_version,
        )
        return Response({"status": "ok", "key": key, "version": version})


class KeyValueMemoryEntryApi(Api):
    """``GET /workspaces/:id/memory/:key`` and ``DELETE`` (idempotent)."""

    auth_by_method = {"GET": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def get(self, request, workspace_id, key):
        entry = selectors.workspace_memory_get(workspace_id=workspace_id, key=key)
        if entry is None:
            raise ApiError("key not found", status=404)
        return Response(entry)

    def delete(self, request, workspace_id, key):
        services.workspace_memory_delete(workspace_id=workspace_id, key=key)
        return Response({"status": "deleted"})
