from django.urls import path

from metering import views

urlpatterns = [
    path("workspaces/<str:workspace_id>/budget", views.WorkspaceBudgetApi.as_view()),
    path("workspaces/<str:workspace_id>/metrics", views.WorkspaceMetricsApi.as_view()),
]
