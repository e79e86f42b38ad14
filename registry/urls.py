"""Routes of this module's area; included from molecule_site/urls.py with no prefix."""

from django.urls import path

from registry import views

urlpatterns: list = [
    # Registry (spec §7.1–7.3) and discovery (spec §8.2, §8.3)
    path("registry/register", views.register),
    path("registry/heartbeat", views.heartbeat),
    path("registry/update-card", views.update_card),
    path("registry/check-access", views.CheckAccessApi.as_view()),
    path("registry/discover/<str:workspace_id>", views.DiscoverApi.as_view()),
    path("registry/<str:workspace_id>/peers", views.PeersApi.as_view()),
]
