"""Root URL map. API routes carry no trailing slash, exactly as the original's."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from activity.views import EventsApi
from molecule_site import views
from workspaces import views as ws

handler400 = "molecule_site.wire.handler400"
handler404 = "molecule_site.wire.handler404"
handler500 = "molecule_site.wire.handler500"

urlpatterns = [
    path("health", views.health, name="health"),
    path("metrics", views.metrics, name="metrics"),
    # Workspaces (spec §5, §6)
    path("workspaces", ws.WorkspaceCollectionApi.as_view()),
    path("workspaces/<str:workspace_id>", ws.WorkspaceItemApi.as_view()),
    path("workspaces/<str:workspace_id>/state", ws.WorkspaceStateApi.as_view()),
    path("workspaces/<str:workspace_id>/pause", ws.WorkspacePauseApi.as_view()),
    path("workspaces/<str:workspace_id>/resume", ws.WorkspaceResumeApi.as_view()),
    path("workspaces/<str:workspace_id>/restart", ws.WorkspaceRestartApi.as_view()),
    path("workspaces/<str:workspace_id>/hibernate", ws.WorkspaceHibernateApi.as_view()),
    path("workspaces/<str:workspace_id>/tokens", ws.WorkspaceTokensApi.as_view()),
    path("workspaces/<str:workspace_id>/tokens/<str:token_id>", ws.WorkspaceTokenApi.as_view()),
    path("workspaces/<str:workspace_id>/expand", ws.WorkspaceExpandApi.as_view()),
    path("workspaces/<str:workspace_id>/collapse", ws.WorkspaceCollapseApi.as_view()),
    path("workspaces/<str:workspace_id>/agent", ws.WorkspaceAgentApi.as_view()),
    path("workspaces/<str:workspace_id>/agent/move", ws.WorkspaceAgentMoveApi.as_view()),
    path("admin/workspaces/<str:workspace_id>/test-token", ws.TestTokenApi.as_view()),
    # Canvas and events (spec §14)
    path("canvas/viewport", ws.CanvasViewportApi.as_view()),
    path("events", EventsApi.as_view()),
    path("events/<str:workspace_id>", EventsApi.as_view()),
    # Registry, A2A proxy and delegation (spec §7–§9); activity, notify, config (spec §10)
    path("", include("registry.urls")),
    path("", include("registry.a2a_urls")),
    path("", include("registry.delegation_urls")),
    path("", include("activity.urls")),
    # Secrets, memory, templates/files/bundles (spec §11, §12, §14)
    path("", include("secrets_app.urls")),
    path("", include("memory.urls")),
    path("", include("metering.urls")),  # budgets and token usage (spec §14, §17, §19)
    path("", include("traces.urls")),  # OTLP receiver, traces and the live transcript (spec §19)
    path("", include("instructions.urls")),  # platform instructions and their resolve (spec §19)
    path("", include("checkpoints.urls")),  # workflow checkpoints (spec §19)
    path("", include("schedules.urls")),  # cron schedules, their runs and health (spec §19)
    path("", include("workspaces.content_urls")),
    path("", include("plugins_app.urls")),  # plugins, the org allowlist, workspace skills (spec §18, §19)
    path("", include("workspaces.org_urls")),  # org templates and import (spec §19)
    # The canvas for people: login, the page at /, its card and panel fragments under /canvas/…/
    path("", include("workspaces.canvas.urls")),
    # The API's OpenAPI description, generated (molecule_site/openapi.py), and its two readers
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/redoc/", SpectacularRedocView.as_view(url_name="api-schema", template_name="api/redoc.html"), name="api-redoc"),
    # Operator admin; /admin/... belongs to the API.
    path("django-admin/", admin.site.urls),
]
