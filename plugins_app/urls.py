"""Plugins (spec §18), the org plugin allowlist (§19) and workspace skills; included from
molecule_site/urls.py."""

from django.urls import path

from plugins_app import views

urlpatterns = [
    path("plugins", views.PluginRegistryApi.as_view()),
    path("plugins/sources", views.PluginSourcesApi.as_view()),
    path("orgs/<str:org_id>/plugins/allowlist", views.OrgPluginAllowlistApi.as_view()),
    path("workspaces/<str:workspace_id>/plugins", views.WorkspacePluginsApi.as_view()),
    path("workspaces/<str:workspace_id>/plugins/available", views.WorkspacePluginsAvailableApi.as_view()),
    path("workspaces/<str:workspace_id>/plugins/compatibility", views.WorkspacePluginsCompatibilityApi.as_view()),
    path("workspaces/<str:workspace_id>/plugins/<str:name>", views.WorkspacePluginApi.as_view()),
    path("workspaces/<str:workspace_id>/plugins/<str:name>/download", views.WorkspacePluginDownloadApi.as_view()),
]

urlpatterns += [
    path("workspaces/<str:workspace_id>/skills", views.WorkspaceSkillsApi.as_view()),
    path("workspaces/<str:workspace_id>/skills/candidates", views.WorkspaceSkillCandidatesApi.as_view()),
    path("workspaces/<str:workspace_id>/skills/candidates/<str:candidate_id>/promote",
         views.WorkspaceSkillCandidatePromoteApi.as_view()),
    path("workspaces/<str:workspace_id>/skills/candidates/<str:candidate_id>/dismiss",
         views.WorkspaceSkillCandidateDismissApi.as_view()),
    path("workspaces/<str:workspace_id>/skills/<str:skill>", views.WorkspaceSkillApi.as_view()),
    path("workspaces/<str:workspace_id>/skills/<str:skill>/rollback", views.WorkspaceSkillRollbackApi.as_view()),
]
