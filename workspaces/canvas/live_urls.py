"""Fragments of the canvas's live part (see workspaces/canvas/live_views.py)."""

urlpatterns: list = []
