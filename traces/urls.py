from django.urls import path

from traces import views

urlpatterns = [
    path("otlp/v1/traces", views.otlp_traces),
    path("workspaces/<str:workspace_id>/traces", views.WorkspaceTracesApi.as_view()),
    path("workspaces/<str:workspace_id>/traces/<str:trace_id>", views.WorkspaceTraceApi.as_view()),
    path("workspaces/<str:workspace_id>/transcript", views.WorkspaceTranscriptApi.as_view()),
]
