"""Workspace routes (spec §5, §6.1–6.5, §14 viewport and tokens). Thin: parse, call, shape."""

from __future__ import annotations

from django.conf import settings
from rest_framework.response import Response

from molecule_site.api import OPEN, Api, json_body, parse_uuid, query_int
from molecule_site.errors import ApiError
from molecule_site.wire import rfc3339
from registry import auth
from registry.auth import AdminAuth, CanvasOrBearer, WorkspaceAuth
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint, token_revoke
from workspaces import agents, selectors, services, team, templates
from workspaces.models import CanvasViewport, WorkspaceStatus
from workspaces.serializers import parse_new_workspace, parse_workspace_changes

MAX_LIVE_TOKENS = 50
# What only an operator may change (beyond the original, where the workspace's own token could
# re-parent it under any team and so gain that team's A2A, discovery, events and TEAM memories).
OPERATOR_FIELDS = frozenset({"parent_id", "tier", "runtime", "workspace_dir", "workspace_access",
                             "hibernation_idle_minutes"})


def request_platform_url(request) -> str:
    """Where an external agent reaches us: EXTERNAL_PLATFORM_URL, else this request's origin."""
    if settings.EXTERNAL_PLATFORM_URL:
        return settings.EXTERNAL_PLATFORM_URL
    proto = request.META.get("HTTP_X_FORWARDED_PROTO") or ("https" if request.is_secure() else "http")
    host = request.META.get("HTTP_X_FORWARDED_HOST") or request.get_host()
    return f"{proto}://{host}"


class WorkspaceCollectionApi(Api):
    auth_by_method = {"GET": (AdminAuth,), "POST": (AdminAuth,)}

    def get(self, request):
        rows = selectors.workspace_list()
        timeouts = templates.provision_timeouts_ms(rows)
        return Response([selectors.workspace_list_item(w, timeouts.get(w.id)) for w in rows])

    def post(self, request):
        new = parse_new_workspace(json_body(request, "invalid workspace payload"))
        return Response(services.workspace_create(new=new, platform_url=request_platform_url(request)), status=201)


class WorkspaceItemApi(Api):
    auth_by_method = {"GET": OPEN, "PATCH": (WorkspaceAuth,), "DELETE": (AdminAuth,)}

    def get(self, request, workspace_id):
        workspace = selectors.workspace_get(parse_uuid(workspace_id))
        if workspace is None:
            raise ApiError("workspace not found", status=404)
        return Response(selectors.workspace_detail(workspace))

    def patch(self, request, workspace_id):
        parsed = parse_uuid(workspace_id)
        changes = parse_workspace_changes(json_body(request))
        for field in OPERATOR_FIELDS.intersection(changes):
            auth.require_operator(request, f"changing {field}")
        workspace = selectors.workspace_get(parsed)
        if workspace is None:
            raise ApiError("workspace not found", status=404)
        return Response(services.workspace_update(workspace=workspace, changes=changes))

    def delete(self, request, workspace_id):
        parsed = parse_uuid(workspace_id)
        flags = {name: request.query_params.get(name) == "true" for name in ("confirm", "purge")}
        return Response(services.workspace_delete(workspace_id=parsed, **flags))


class WorkspaceStateApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        auth.check_workspace_recheck(request, workspace_id)
        workspace = selectors.workspace_get(workspace_id)
        if workspace is None:
            return Response({"workspace_id": workspace_id, "deleted": True}, status=404)
        if workspace.status == WorkspaceStatus.REMOVED:
            return Response({"workspace_id": workspace_id, "status": "removed", "deleted": True}, status=404)
        return Response(
            {"workspace_id": workspace_id, "status": workspace.status,
             "paused": workspace.status == WorkspaceStatus.PAUSED, "deleted": False}
        )


class WorkspacePauseApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        return Response(services.workspace_pause(workspace_id=_existing_id(workspace_id)))


class WorkspaceResumeApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        return Response(services.workspace_resume(workspace_id=_existing_id(workspace_id, "workspace not found or not paused")))


class WorkspaceRestartApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        try:
            body = json_body(request, default={})
        except ApiError:
            body = {}  # the body is optional and the original ignores one it cannot bind
        reset = request.query_params.get("reset") == "true" or (isinstance(body, dict) and body.get("reset") is True)
        return Response(services.workspace_restart(workspace_id=_existing_id(workspace_id, "workspace not found"), reset=reset))


class WorkspaceHibernateApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        parsed = _existing_id(workspace_id, services.NOT_HIBERNATABLE)
        force = request.query_params.get("force") == "true"
        return Response(services.workspace_hibernate(workspace_id=parsed, force=force))


def _existing_id(workspace_id, error: str = "workspace not found or already paused"):
    """Non-UUID ids name no workspace: the lifecycle routes answer their own 404 for them."""
    return parse_uuid(workspace_id, error, status=404)


# --- tokens ---------------------------------------------------------------------------------------

class WorkspaceTokensApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        workspace_uuid = parse_uuid(workspace_id)
        limit, offset = query_int(request, "limit", 50), query_int(request, "offset", 0)
        if limit is None or not 1 <= limit <= 200:
            limit = 50
        offset = max(offset or 0, 0)
        live = WorkspaceAuthToken.objects.filter(workspace_id=workspace_uuid, revoked_at__isnull=True)
        page = live.order_by("-created_at")[offset:offset + limit]
        tokens = [
            {"id": str(t.id), "prefix": t.prefix, "created_at": rfc3339(t.created_at),
             "last_used_at": rfc3339(t.last_used_at) if t.last_used_at else None}
            for t in page
        ]
        return Response({"tokens": tokens, "count": live.count()})

    def post(self, request, workspace_id):
        workspace = selectors.workspace_get(workspace_id)
        if workspace is None:
            raise ApiError("workspace not found", status=404)
        if WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True).count() >= MAX_LIVE_TOKENS:
            raise ApiError(f"maximum {MAX_LIVE_TOKENS} active tokens per workspace", status=429)
        _, plaintext = token_mint(workspace=workspace)
        return Response(
            {"auth_token": plaintext, "workspace_id": str(workspace.id),
             "message": "Save this token now — it cannot be retrieved again."},
            status=201,
        )


class WorkspaceTokenApi(Api):
    auth_by_method = {"DELETE": (WorkspaceAuth,)}

    def delete(self, request, workspace_id, token_id):
        not_found = ApiError("token not found or already revoked", status=404)
        tokens = WorkspaceAuthToken.objects.filter(
            pk=parse_uuid(token_id, not_found.body["error"], 404), workspace_id=parse_uuid(workspace_id, status=404)
        )
        if token_revoke(tokens=tokens) == 0:
            raise not_found
        return Response({"status": "revoked"})


class TestTokenApi(Api):
    """``GET /admin/workspaces/:id/test-token`` (spec §2.7): a bootstrap credential for scripts.

    The original serves it whenever ``MOLECULE_ENV`` is not exactly ``production``; here only in
    dev mode or with ``MOLECULE_ENABLE_TEST_TOKENS`` (and then with the admin token, which is
    always set outside dev mode).
    """

    auth_by_method = {"GET": OPEN}  # its own checks, below

    def get(self, request, workspace_id):
        if not (auth.dev_mode() or settings.MOLECULE_ENABLE_TEST_TOKENS):
            raise ApiError("not found", status=404)
        if settings.ADMIN_TOKEN and not auth.is_admin_token(_raw_authorization(request)):
            raise ApiError("admin auth required", status=401)
        workspace = selectors.workspace_get(workspace_id)
        if workspace is None:
            raise ApiError("workspace not found", status=404)
        _, plaintext = token_mint(workspace=workspace)
        return Response({"auth_token": plaintext, "workspace_id": str(workspace.id)})


def _raw_authorization(request) -> str:
    """This route strips an optional ``Bearer `` itself (the original compares the header loosely)."""
    header = request.META.get("HTTP_AUTHORIZATION", "").split(",", 1)[0].strip()
    return header[len(auth.BEARER):].strip() if header.startswith(auth.BEARER) else header


# --- canvas viewport --------------------------------------------------------------------------------

class CanvasViewportApi(Api):
    auth_by_method = {"GET": OPEN, "PUT": (CanvasOrBearer,)}

    def get(self, request):
        viewport = CanvasViewport.objects.first()
        if viewport is None:
            return Response({"x": 0, "y": 0, "zoom": 1})
        return Response({"x": selectors.number(viewport.x), "y": selectors.number(viewport.y),
                         "zoom": selectors.number(viewport.zoom)})

    def put(self, request):
        data = json_body(request, "invalid viewport data")
        values = {key: data.get(key) if isinstance(data, dict) else None for key in ("x", "y", "zoom")}
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values.values()) or values["zoom"] <= 0:
            raise ApiError("invalid viewport data")
        CanvasViewport.objects.update_or_create(defaults=values)
        return Response({"status": "saved"})



# --- agents -------------------------------------------------------------------------------------

def _model(request) -> str:
    data = json_body(request)
    model = data.get("model") if isinstance(data, dict) else None
    if not isinstance(model, str) or not model.strip() or len(model) > 100:
        raise ApiError("invalid request body")
    return model


class WorkspaceAgentApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,), "PATCH": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        return Response(agents.agent_assign(workspace_id=parse_uuid(workspace_id), model=_model(request)), status=201)

    def patch(self, request, workspace_id):
        return Response(agents.agent_replace(workspace_id=parse_uuid(workspace_id), model=_model(request)))

    def delete(self, request, workspace_id):
        return Response(agents.agent_remove(workspace_id=parse_uuid(workspace_id)))


class WorkspaceAgentMoveApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        data = json_body(request)
        target = data.get("target_workspace_id") if isinstance(data, dict) else None
        if not isinstance(target, str) or not target:
            raise ApiError("invalid request body")
        return Response(agents.agent_move(
            workspace_id=parse_uuid(workspace_id),
            target_workspace_id=parse_uuid(target, "target workspace not found", status=404),
        ))


# --- team -----------------------------------------------------------------------------------------

class WorkspaceExpandApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        return Response(team.team_expand(workspace_id=_existing_id(workspace_id, "workspace not found")))


class WorkspaceCollapseApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id):
        return Response(team.team_collapse(workspace_id=_existing_id(workspace_id, "workspace not found")))
