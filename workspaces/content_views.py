"""Templates, files, shared context and bundles on the wire (spec §14). Thin: parse, call, answer.

Auth: ``AdminAuth`` for templates and bundles, ``WorkspaceAuth`` for the per-workspace files
and shared-context routes.
"""

from __future__ import annotations

from rest_framework.response import Response

from molecule_site.api import Api, json_body, query_int
from molecule_site.errors import ApiError
from registry.auth import AdminAuth, WorkspaceAuth
from workspaces import bundles, files, templates


def _object_body(request) -> dict:
    body = json_body(request)
    if not isinstance(body, dict):
        raise ApiError("invalid request body")
    return body


class TemplatesApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request):
        return Response(templates.template_list())


class TemplateImportApi(Api):
    auth_by_method = {"POST": (AdminAuth,)}

    def post(self, request):
        body = _object_body(request)
        return Response(templates.template_import(name=body.get("name"), files=body.get("files")), status=201)


class WorkspaceFilesApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "PUT": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        params = request.query_params
        return Response(files.files_list(
            workspace_id=workspace_id, root=params.get("root"), path=params.get("path"),
            depth=query_int(request, "depth", 1),
        ))

    def put(self, request, workspace_id):
        return Response(files.files_replace(workspace_id=workspace_id, files=_object_body(request).get("files")))


class WorkspaceFileApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "PUT": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def get(self, request, workspace_id, file_path):
        return Response(files.file_read(workspace_id=workspace_id, root=request.query_params.get("root"), path=file_path))

    def put(self, request, workspace_id, file_path):
        try:
            content = _object_body(request).get("content")
        except ApiError:
            content = None  # reported after the path check, which comes first
        return Response(files.file_write(workspace_id=workspace_id, path=file_path, content=content))

    def delete(self, request, workspace_id, file_path):
        return Response(files.file_delete(workspace_id=workspace_id, path=file_path))


class SharedContextApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(files.shared_context(workspace_id=workspace_id))


class BundleExportApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request, workspace_id):
        return Response(bundles.bundle_export(workspace_id=workspace_id))


class BundleImportApi(Api):
    auth_by_method = {"POST": (AdminAuth,)}

    def post(self, request):
        return Response(bundles.bundle_import(bundle=json_body(request, "invalid bundle")), status=201)
