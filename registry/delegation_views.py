"""Delegation routes (spec §9), WorkspaceAuth with ``:id`` = the source workspace. Thin: bind,
call :mod:`registry.delegation`, answer."""

from __future__ import annotations

from rest_framework.response import Response

from activity.selectors import delegation_list
from molecule_site.api import Api, json_body
from molecule_site.errors import ApiError
from registry import delegation
from registry.auth import WorkspaceAuth
from workspaces.models import Workspace
from workspaces.selectors import as_uuid, workspace_get

UPDATE_STATUSES = ("completed", "failed")


def _body(request, error: str) -> dict:
    data = json_body(request, error)
    if not isinstance(data, dict):
        raise ApiError(error)
    return data


def _text(data: dict, key: str, error: str, *, required: bool) -> str:
    """A string field; ``null`` reads as absent, a wrong type is a bind failure, and a required
    field rejects ``""`` (Go's ``binding:"required"``)."""
    value = data.get(key)
    if value is None:
        value = ""
    if not isinstance(value, str) or (required and not value):
        raise ApiError(error)
    return value


def _source(workspace_id) -> Workspace:
    """The source workspace; rows hang off it, so an unknown one cannot delegate."""
    workspace = workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


def _target(raw: str):
    target_id = as_uuid(raw)
    if target_id is None:
        raise ApiError("target_id must be a valid UUID")
    return target_id


class DelegateApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        bad = "invalid delegation request"
        data = _body(request, bad)
        raw_target = _text(data, "target_id", bad, required=True)
        task = _text(data, "task", bad, required=True)
        key = _text(data, "idempotency_key", bad, required=False)
        target_id = _target(raw_target)
        if as_uuid(workspace_id) == target_id:
            raise ApiError("self-delegation not permitted")
        source = _source(workspace_id)
        answer = delegation.delegation_start(source_id=source.id, target_id=target_id, task=task, idempotency_key=key,
                                             traceparent=request.headers.get("traceparent"))
        return Response(answer.body, status=answer.status)


class DelegationsApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(delegation_list(workspace_id=workspace_id))


class DelegationRecordApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        bad = "invalid request body"
        data = _body(request, bad)
        raw_target = _text(data, "target_id", bad, required=True)
        task = _text(data, "task", bad, required=True)
        delegation_id = _text(data, "delegation_id", bad, required=True)
        target_id = _target(raw_target)
        source = _source(workspace_id)
        answer = delegation.delegation_record(
            source_id=source.id, target_id=target_id, task=task, delegation_id=delegation_id
        )
        return Response(answer.body, status=answer.status)


class DelegationUpdateApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id, delegation_id):
        bad = "status must be 'completed' or 'failed'"
        data = _body(request, "invalid request body")
        status = data.get("status")
        if status not in UPDATE_STATUSES:
            raise ApiError(bad)
        error = _text(data, "error", "invalid request body", required=False)
        preview = _text(data, "response_preview", "invalid request body", required=False)
        source = _source(workspace_id)
        answer = delegation.delegation_update(
            source_id=source.id, delegation_id=delegation_id, status=status, error=error, response_preview=preview
        )
        return Response(answer.body, status=answer.status)
