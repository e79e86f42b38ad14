"""Workflow checkpoints on the wire (spec §4, §19), all WorkspaceAuth on ``:id``:

- ``POST /workspaces/:id/checkpoints`` (``PUT`` too) ``{workflow_id, step_name, step_index?,
  payload?}`` upserts one step: 201 with the row when new, 200 when it replaced one;
- ``GET /workspaces/:id/checkpoints/latest[?workflow_id=]`` the furthest step of that workflow,
  or without one the step the workspace wrote last; 404 ``{"error":"no checkpoint found"}``;
- ``GET /workspaces/:id/checkpoints/:workflow_id`` its steps in step order (``[]`` when none);
- ``DELETE /workspaces/:id/checkpoints/:workflow_id`` → ``{"status":"deleted","deleted":n}``.

Bounds (ours): ids of 1–200 characters without ``/`` (a path segment) and not ``latest`` (the
static route wins, as in the original's router); ``step_index`` 0…2^31-1; the payload's compact
JSON at most ``MAX_PAYLOAD_BYTES``; ``services.MAX_CHECKPOINTS`` steps per workspace."""

import json

from rest_framework.response import Response

from checkpoints import selectors, services
from checkpoints.models import MAX_NAME
from molecule_site.api import Api, json_body
from molecule_site.errors import ApiError
from registry.auth import WorkspaceAuth
from workspaces.selectors import workspace_get

MAX_PAYLOAD_BYTES = 256 * 1024
INVALID_BODY = "invalid request body"
INT32_MAX = 2**31 - 1
PAYLOAD_TOO_LARGE = f"payload too large (max {MAX_PAYLOAD_BYTES} bytes of JSON)"


def _workspace_id(workspace_id):
    workspace = workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace.id


def _name(body: dict, key: str, *, workflow: bool = False) -> str:
    value = body.get(key)
    if (not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME or "/" in value
            or (workflow and value == "latest")):
        rule = " and not \"latest\"" if workflow else ""
        raise ApiError(f"{key} is required: 1-{MAX_NAME} characters without /{rule}")
    return value


class CheckpointsApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,), "PUT": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        workspace_id = _workspace_id(workspace_id)
        body = json_body(request)
        if not isinstance(body, dict):
            raise ApiError(INVALID_BODY)
        workflow_id, step_name = _name(body, "workflow_id", workflow=True), _name(body, "step_name")
        step_index = body.get("step_index", 0)
        if step_index is None:
            step_index = 0
        if isinstance(step_index, bool) or not isinstance(step_index, int) or not 0 <= step_index <= INT32_MAX:
            raise ApiError("step_index must be a non-negative integer")
        payload = body.get("payload", {})
        if payload is None:
            payload = {}
        if len(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()) > MAX_PAYLOAD_BYTES:
            raise ApiError(PAYLOAD_TOO_LARGE, status=413, max_bytes=MAX_PAYLOAD_BYTES)
        checkpoint, created = services.checkpoint_upsert(workspace_id=workspace_id, workflow_id=workflow_id,
                                                         step_name=step_name, step_index=step_index, payload=payload)
        return Response(selectors.checkpoint_row(checkpoint), status=201 if created else 200)

    put = post


class CheckpointLatestApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        row = selectors.checkpoint_latest(workspace_id=_workspace_id(workspace_id),
                                          workflow_id=request.query_params.get("workflow_id", ""))
        if row is None:
            raise ApiError("no checkpoint found", status=404)
        return Response(row)


class CheckpointWorkflowApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def get(self, request, workspace_id, workflow_id):
        return Response(selectors.checkpoint_list(workspace_id=_workspace_id(workspace_id), workflow_id=workflow_id))

    def delete(self, request, workspace_id, workflow_id):
        deleted = services.checkpoint_delete_workflow(workspace_id=_workspace_id(workspace_id), workflow_id=workflow_id)
        return Response({"status": "deleted", "deleted": deleted})
