"""Fragments of the canvas's live part (see workspaces/canvas/live_views.py)."""

from django.urls import path

from workspaces.canvas import live_views

urlpatterns = [
    path("edges/", live_views.edges, name="canvas-edges"),
]
