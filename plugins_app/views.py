"""Plugins and skills on the wire (spec platform-api §18, §19; docs/architecture.md "Plugins and
skills"). Thin: parse, call, answer.

Auth: ``GET /plugins`` and ``/plugins/sources`` are open (spec §4: the registry's names and
descriptions); the allowlist is ``AdminAuth``; every ``/workspaces/:id/…`` route is
``WorkspaceAuth`` (the workspace's own token or an operator). Promoting a candidate with a
workspace token also needs an approved approval request of that workspace (``skills``).
"""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework.response import Response

from molecule_site.api import OPEN, Api, json_body
from molecule_site.errors import ApiError
from plugins_app import registry, services, skills
from registry.auth import AdminAuth, WorkspaceAuth, operator_principal
from registry.auth import dev_mode as _dev_mode


def _object_body(request) -> dict:
    body = json_body(request, default={})
    if not isinstance(body, dict):
        raise ApiError("invalid request body")
    return body


def _actor(request, workspace_id=None) -> str:
    return operator_principal(request) or (f"workspace:{workspace_id}" if workspace_id else "dev-mode")


class PluginRegistryApi(Api):
    auth_by_method = {"GET": OPEN}

    def get(self, request):
        return Response(registry.registry_list(request.query_params.get("runtime") or None))


class PluginSourcesApi(Api):
    auth_by_method = {"GET": OPEN}

    def get(self, request):
        return Response(services.sources())


class WorkspacePluginsApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "POST": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(services.plugins_installed(workspace_id=workspace_id))

    def post(self, request, workspace_id):
        body = _object_body(request)
        return Response(services.plugin_install(workspace_id=workspace_id, source=body.get("source"),
                                                actor=_actor(request, workspace_id)))


class WorkspacePluginsAvailableApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(services.plugins_available(workspace_id=workspace_id))


class WorkspacePluginsCompatibilityApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(services.plugins_compatibility(workspace_id=workspace_id,
                                                       runtime=request.query_params.get("runtime")))


class WorkspacePluginApi(Api):
    auth_by_method = {"DELETE": (WorkspaceAuth,)}

    def delete(self, request, workspace_id, name):
        return Response(services.plugin_uninstall(workspace_id=workspace_id, name=name,
                                                  actor=_actor(request, workspace_id)))


class WorkspacePluginDownloadApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id, name):
        filename, data = services.plugin_archive(workspace_id=workspace_id, name=name)
        response = HttpResponse(data, content_type="application/gzip")
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


class OrgPluginAllowlistApi(Api):
    auth_by_method = {"GET": (AdminAuth,), "PUT": (AdminAuth,)}

    def get(self, request, org_id):
        return Response(services.allowlist_get(org_id=org_id))

    def put(self, request, org_id):
        return Response(services.allowlist_set(org_id=org_id, plugins=_object_body(request).get("plugins"),
                                               actor=_actor(request)))


# --- skills ----------------------------------------------------------------------------------------------

class WorkspaceSkillsApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(skills.skills_list(workspace_id=workspace_id))


class WorkspaceSkillCandidatesApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,)}

    def get(self, request, workspace_id):
        return Response(skills.candidates_pending(workspace_id=workspace_id))


class WorkspaceSkillCandidatePromoteApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id, candidate_id):
        operator = operator_principal(request)
        return Response(skills.candidate_promote(
            workspace_id=workspace_id, candidate_id=candidate_id, body=_object_body(request),
            actor=_actor(request, workspace_id), operator=operator is not None or _dev_mode()), status=201)


class WorkspaceSkillCandidateDismissApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id, candidate_id):
        return Response(skills.candidate_dismiss(workspace_id=workspace_id, candidate_id=candidate_id,
                                                 actor=_actor(request, workspace_id)))


class WorkspaceSkillApi(Api):
    auth_by_method = {"GET": (WorkspaceAuth,), "PUT": (WorkspaceAuth,), "DELETE": (WorkspaceAuth,)}

    def get(self, request, workspace_id, skill):
        return Response(skills.skill_get(workspace_id=workspace_id, skill=skill))

    def put(self, request, workspace_id, skill):
        return Response(skills.skill_update(workspace_id=workspace_id, skill=skill,
                                            content=_object_body(request).get("files"),
                                            actor=_actor(request, workspace_id)))

    def delete(self, request, workspace_id, skill):
        return Response(skills.skill_remove(workspace_id=workspace_id, skill=skill, actor=_actor(request, workspace_id)))


class WorkspaceSkillRollbackApi(Api):
    auth_by_method = {"POST": (WorkspaceAuth,)}

    def post(self, request, workspace_id, skill):
        return Response(skills.skill_rollback(workspace_id=workspace_id, skill=skill,
                                              version=_object_body(request).get("version"),
                                              actor=_actor(request, workspace_id)))
