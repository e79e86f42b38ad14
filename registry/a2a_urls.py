"""Routes of this module's area; included from molecule_site/urls.py with no prefix."""

from django.urls import path

from registry.a2a_views import workspace_a2a

urlpatterns: list = [
    path("workspaces/<str:workspace_id>/a2a", workspace_a2a),
]
