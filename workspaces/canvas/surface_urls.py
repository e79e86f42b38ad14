"""Fragments of the canvas's surface part (see workspaces/canvas/surface_views.py)."""

urlpatterns: list = []
