"""Platform instructions on the wire (spec §4, §19): ``GET|POST /instructions`` and
``GET|PUT|PATCH|DELETE /instructions/:id`` (AdminAuth; the spec names GET/POST and PUT/DELETE,
PATCH and the single GET are ours, same rule), and ``GET /workspaces/:id/instructions/resolve``
(WorkspaceAuth) → ``{"workspace_id", "instructions": "<markdown>"}``, the shape the original's
runtime reads at boot (``get_platform_instructions``). PUT and PATCH both change only the fields
they carry."""

from rest_framework.response import Response

from instructions import selectors, services
from instructions.models import TEAM_RESERVED, InstructionScope
from molecule_site.api import Api, json_body
from molecule_site.errors import ApiError
from registry.auth import AdminAuth, WorkspaceAuth
from workspaces.selectors import as_uuid, workspace_get

INVALID_BODY = "invalid request body"
INT32 = range(-(2**31), 2**31)
NOT_FOUND = "instruction not found"


def _fields(request, *, required: tuple[str, ...] = ()) -> dict:
    """The body's known fields, type-checked (unknown keys are ignored, as gin's bind does)."""
    body = json_body(request)
    if not isinstance(body, dict):
        raise ApiError(INVALID_BODY)
    fields = {}
    for name in ("scope", "title", "content"):
        if name in body:
            if not isinstance(body[name], str):
                raise ApiError(f"{name} must be a string")
            fields[name] = body[name]
    if "workspace_id" in body:
        raw = body["workspace_id"]
        if raw in (None, ""):
            fields["workspace_id"] = None
        elif isinstance(raw, str) and as_uuid(raw) is not None:
            fields["workspace_id"] = as_uuid(raw)
        else:
            raise ApiError("workspace_id must be a workspace UUID or null")
    if "priority" in body:
        priority = body["priority"]
        if isinstance(priority, bool) or not isinstance(priority, int) or priority not in INT32:
            raise ApiError("priority must be an integer")
        fields["priority"] = priority
    if "enabled" in body:
        if not isinstance(body["enabled"], bool):
            raise ApiError("enabled must be true or false")
        fields["enabled"] = body["enabled"]
    for name in required:
        if not fields.get(name):
            raise ApiError(f"{name} is required")
    return fields


def _instruction(instruction_id):
    instruction = selectors.instruction_get(instruction_id)
    if instruction is None:
        raise ApiError(NOT_FOUND, status=404)
    return instruction


class InstructionCollectionApi(Api):
    auth_by_method = {"GET": (AdminAuth,), "POST": (AdminAuth,)}

    def get(self, request):
        scope = request.query_params.get("scope", "")
        if scope == "team":
            raise ApiError(TEAM_RESERVED)
        if scope and scope not in InstructionScope.values:
            raise ApiError(services.SCOPE_ERROR)
        raw_workspace = request.query_params.get("workspace_id", "")
        workspace_id = as_uuid(raw_workspace) if raw_workspace else None
        if raw_workspace and workspace_id is None:
            raise ApiError("workspace_id must be a workspace UUID")
        return Response(selectors.instruction_list(scope=scope, workspace_id=workspace_id))

    def post(self, request):
        fields = _fields(request, required=("title", "content"))
        fields.setdefault("scope", InstructionScope.GLOBAL)
        instruction = services.instruction_create(**fields)
        return Response(selectors.instruction_row(instruction), status=201)


class InstructionItemApi(Api):
    auth_by_method = {"GET": (AdminAuth,), "PUT": (AdminAuth,), "PATCH": (AdminAuth,), "DELETE": (AdminAuth,)}

    def get(self, request, instruction_id):
        return Response(selectors.instruction_row(_instruction(instruction_id)))

    def put(self, request, instruction_id):
        instruction = _instruction(instruction_id)
        fields = _fields(request)
        if fields.get("scope") == InstructionScope.GLOBAL and "workspace_id" not in fields:
            fields["workspace_id"] = None  # moving a workspace rule to global drops its workspace
        instruction = services.instruction_update(instruction=instruction, **fields)
        return Response(selectors.instruction_row(instruction))

    patch = put

    def delete(self, request, instruction_id):
        services.instruction_delete(instruction=_instruction(instruction_id))
        return Response({"status": "deleted"})


class InstructionsResolveApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        workspace = workspace_get(workspace_id)
        if workspace is None:
            raise ApiError("workspace not found", status=404)
        return Response({"workspace_id": str(workspace.id),
                         "instructions": selectors.instructions_resolve(workspace_id=workspace.id)})
