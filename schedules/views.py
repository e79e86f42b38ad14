"""``/workspaces/:id/schedules…`` and ``/admin/schedules/health`` (spec §4, §19 "Schedules").

WorkspaceAuth for the CRUD, ``/run`` and ``/history`` routes (the workspace's own token — its
agent manages its schedules, ``source: runtime`` — an operator, ``source: operator``).
``/schedules/health`` is open at the route level as in the original and checks inside: an
operator, or a peer naming itself in ``X-Workspace-ID`` with its own token that may talk to the
workspace (``can_communicate``). ``/admin/schedules/health`` is AdminAuth.
"""

from __future__ import annotations

from django.db import transaction
from rest_framework.response import Response

from molecule_site.api import OPEN, Api, json_body, query_int
from molecule_site.errors import ApiError
from registry.auth import AdminAuth, WorkspaceAuth, check_registry_token, dev_mode, operator_principal
from registry.proxy import ACCESS_DENIED
from registry.selectors import can_communicate
from schedules import inputs, selectors, services, tasks
from schedules.models import ScheduleSource
from workspaces.models import WorkspaceStatus
from workspaces.selectors import workspace_get

LIMIT_ERROR = f"limit must be an integer from 1 to {selectors.HISTORY_MAX_LIMIT}"


def _workspace(workspace_id):
    workspace = workspace_get(workspace_id)
    if workspace is None or workspace.status == WorkspaceStatus.REMOVED:
        raise ApiError("workspace not found", status=404)
    return workspace


def _schedule(workspace_id, schedule_id):
    workspace = _workspace(workspace_id)
    schedule = selectors.schedule_get(workspace.id, schedule_id)
    if schedule is None:
        raise ApiError("schedule not found", status=404)
    return schedule


def _source(request) -> str:
    """Who creates: a person (admin token, staff session, dev mode) or the workspace's agent."""
    if operator_principal(request) is not None or dev_mode():
        return ScheduleSource.OPERATOR
    return ScheduleSource.RUNTIME


class WorkspaceSchedulesApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        workspace = _workspace(workspace_id)
        return Response([selectors.schedule_item(row) for row in selectors.workspace_schedules(workspace.id)])

    def post(self, request, workspace_id):
        workspace = _workspace(workspace_id)
        fields = inputs.schedule_input(json_body(request), partial=False)
        schedule = services.schedule_create(workspace_id=workspace.id, fields=fields, source=_source(request))
        return Response(selectors.schedule_item(schedule), status=201)


class WorkspaceScheduleApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "PATCH": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def get(self, request, workspace_id, schedule_id):
        return Response(selectors.schedule_item(_schedule(workspace_id, schedule_id)))

    def patch(self, request, workspace_id, schedule_id):
        schedule = _schedule(workspace_id, schedule_id)
        fields = inputs.schedule_input(json_body(request), partial=True)
        return Response(selectors.schedule_item(services.schedule_update(schedule=schedule, fields=fields)))

    def delete(self, request, workspace_id, schedule_id):
        services.schedule_delete(schedule=_schedule(workspace_id, schedule_id))
        return Response({"status": "deleted"})


class WorkspaceScheduleRunApi(Api):
    """Fire now: the run is queued for the worker (it waits for the agent), answered 202."""

    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id, schedule_id):
        schedule = _schedule(workspace_id, schedule_id)
        schedule_id = str(schedule.id)
        transaction.on_commit(lambda: tasks.fire_schedule.delay(schedule_id, None, True))
        return Response({"status": "queued", "schedule_id": schedule_id}, status=202)


class WorkspaceScheduleHistoryApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id, schedule_id):
        limit = query_int(request, "limit", selectors.HISTORY_DEFAULT_LIMIT)
        if limit is None or not 1 <= limit <= selectors.HISTORY_MAX_LIMIT:
            raise ApiError(LIMIT_ERROR)
        return Response(selectors.schedule_history(_schedule(workspace_id, schedule_id), limit=limit))


class WorkspaceScheduleHealthApi(Api):
    """``GET /workspaces/:id/schedules/health``: open route, checked inside (see the module docstring)."""

    auth_by_method = {"GET": OPEN}

    def get(self, request, workspace_id):
        if operator_principal(request) is None and not dev_mode():
            caller_id = request.headers.get("X-Workspace-ID", "")
            if not caller_id:
                raise ApiError("X-Workspace-ID header is required")
            check_registry_token(request, caller_id)
            if not can_communicate(caller_id, workspace_id):
                raise ApiError(ACCESS_DENIED, status=403)
        workspace = _workspace(workspace_id)
        return Response(selectors.workspace_schedule_health(workspace.id))


class AdminSchedulesHealthApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request):
        return Response(selectors.schedules_health())
