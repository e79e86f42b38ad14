"""Org templates on the wire (spec §19): ``GET /org/templates``, ``POST /org/import``. AdminAuth.

``POST /org/import`` takes ``{"dir": "<dir>"}`` (a directory of ORG_TEMPLATES_DIR) or
``{"template": {…org.yaml as JSON…}}``, and ``"force": true`` to import without the required
env. Shapes and errors: :mod:`workspaces.org_templates` and :mod:`workspaces.org_services`.
"""

from __future__ import annotations

from rest_framework.response import Response

from molecule_site.api import Api, json_body
from molecule_site.errors import ApiError
from registry.auth import AdminAuth
from workspaces import org_services, org_templates
from workspaces.views import request_platform_url


class OrgTemplatesApi(Api):
    auth_by_method = {"GET": (AdminAuth,)}

    def get(self, request):
        return Response(org_templates.org_template_list())


class OrgImportApi(Api):
    auth_by_method = {"POST": (AdminAuth,)}

    def post(self, request):
        body = json_body(request)
        if not isinstance(body, dict):
            raise ApiError("invalid request body")
        directory, inline, force = body.get("dir"), body.get("template"), body.get("force")
        if (directory is None) == (inline is None):
            raise ApiError("give either dir or template")
        if directory is not None and not isinstance(directory, str):
            raise ApiError("dir must be a string")
        if inline is not None and not isinstance(inline, dict):
            raise ApiError("template must be an object")
        if force is not None and not isinstance(force, bool):
            raise ApiError("force must be true or false")
        result = org_services.org_import(
            directory=directory, inline=inline, force=force is True, platform_url=request_platform_url(request)
        )
        return Response(result, status=201)
