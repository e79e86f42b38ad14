"""Routes of this module's area; included from molecule_site/urls.py with no prefix."""

from django.urls import path

from activity import views

urlpatterns = [
    path("workspaces/<str:workspace_id>/activity", views.ActivityApi.as_view()),
    path("workspaces/<str:workspace_id>/notify", views.NotifyApi.as_view()),
    path("workspaces/<str:workspace_id>/session-search", views.SessionSearchApi.as_view()),
    path("workspaces/<str:workspace_id>/config", views.ConfigApi.as_view()),
    path("workspaces/<str:workspace_id>/approvals", views.ApprovalsApi.as_view()),
    path("workspaces/<str:workspace_id>/approvals/<str:approval_id>/decide", views.ApprovalDecideApi.as_view()),
    path("approvals/pending", views.PendingApprovalsApi.as_view()),
]
