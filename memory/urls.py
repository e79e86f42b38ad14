"""Routes of this module's area; included from molecule_site/urls.py with no prefix."""

from django.urls import path

from memory import views

urlpatterns = [
    path("workspaces/<str:workspace_id>/memories", views.MemoriesApi.as_view()),
    path("workspaces/<str:workspace_id>/memories/<str:memory_id>", views.MemoryApi.as_view()),
    path("workspaces/<str:workspace_id>/memory", views.KeyValueMemoryApi.as_view()),
    path("workspaces/<str:workspace_id>/memory/<str:key>", views.KeyValueMemoryEntryApi.as_view()),
]
