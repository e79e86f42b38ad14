"""``/workspaces/:id/budget`` (spec §14) and ``/workspaces/:id/metrics`` (spec §17)."""

from rest_framework.response import Response

from metering import selectors, services
from molecule_site.api import Api, json_body
from molecule_site.errors import ApiError
from registry.auth import AdminAuth, WorkspaceAuth
from workspaces.selectors import workspace_get

BUDGET_ERROR = "budget_limit must be a non-negative integer or null"


def _workspace(workspace_id):
    workspace = workspace_get(workspace_id)
    if workspace is None:
        raise ApiError("workspace not found", status=404)
    return workspace


class WorkspaceBudgetApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "PATCH": (AdminAuth,)}

    def get(self, request, workspace_id):
        return Response(selectors.budget_summary(_workspace(workspace_id)))

    def patch(self, request, workspace_id):
        workspace = _workspace(workspace_id)
        data = json_body(request)
        if not isinstance(data, dict) or "budget_limit" not in data:
            raise ApiError(BUDGET_ERROR)
        limit = data["budget_limit"]
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit < 2**63):
            raise ApiError(BUDGET_ERROR)
        return Response(selectors.budget_summary(services.budget_set(workspace=workspace, budget_limit=limit)))


class WorkspaceMetricsApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(selectors.workspace_metrics(_workspace(workspace_id)))
