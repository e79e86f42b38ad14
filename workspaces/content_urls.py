"""Templates, files, chat attachments, shared context and bundles (spec §14); included from
molecule_site/urls.py."""

from django.urls import path

from workspaces import chat_views
from workspaces import content_views as views

urlpatterns = [
    path("templates", views.TemplatesApi.as_view()),
    path("templates/import", views.TemplateImportApi.as_view()),
    path("workspaces/<str:workspace_id>/files", views.WorkspaceFilesApi.as_view()),
    path("workspaces/<str:workspace_id>/files/<path:file_path>", views.WorkspaceFileApi.as_view()),
    path("workspaces/<str:workspace_id>/chat/uploads", chat_views.ChatUploadsApi.as_view()),
    path("workspaces/<str:workspace_id>/chat/download", chat_views.ChatDownloadApi.as_view()),
    path("workspaces/<str:workspace_id>/shared-context", views.SharedContextApi.as_view()),
    path("bundles/export/<str:workspace_id>", views.BundleExportApi.as_view()),
    path("bundles/import", views.BundleImportApi.as_view()),
]
