from django.urls import path

from checkpoints import views

urlpatterns = [
    path("workspaces/<str:workspace_id>/checkpoints", views.CheckpointsApi.as_view()),
    path("workspaces/<str:workspace_id>/checkpoints/latest", views.CheckpointLatestApi.as_view()),
    path("workspaces/<str:workspace_id>/checkpoints/<str:workflow_id>", views.CheckpointWorkflowApi.as_view()),
]
