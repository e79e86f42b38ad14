"""Routes of this module's area; included from molecule_site/urls.py with no prefix (spec §4, §12)."""

from django.urls import path

from secrets_app import views

urlpatterns = [
    path("workspaces/<str:workspace_id>/secrets", views.WorkspaceSecretsApi.as_view()),
    path("workspaces/<str:workspace_id>/secrets/values", views.WorkspaceSecretValuesApi.as_view()),
    path("workspaces/<str:workspace_id>/secrets/<str:key>", views.WorkspaceSecretApi.as_view()),
    path("workspaces/<str:workspace_id>/model", views.WorkspaceModelApi.as_view()),
    path("settings/secrets", views.GlobalSecretsApi.as_view()),
    path("settings/secrets/<str:key>", views.GlobalSecretApi.as_view()),
    path("admin/secrets", views.AdminSecretsApi.as_view()),
    path("admin/secrets/<str:key>", views.GlobalSecretApi.as_view()),
]
