"""Routes of this module's area; included from molecule_site/urls.py with no prefix."""

from django.urls import path

from registry import delegation_views as views

urlpatterns: list = [
    # Async delegation (spec §9); ``:id`` is the source workspace.
    path("workspaces/<str:workspace_id>/delegate", views.DelegateApi.as_view()),
    path("workspaces/<str:workspace_id>/delegations", views.DelegationsApi.as_view()),
    path("workspaces/<str:workspace_id>/delegations/record", views.DelegationRecordApi.as_view()),
    path("workspaces/<str:workspace_id>/delegations/<str:delegation_id>/update", views.DelegationUpdateApi.as_view()),
]
