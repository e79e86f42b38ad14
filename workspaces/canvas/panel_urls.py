"""Fragments of the canvas's panel part (see workspaces/canvas/panel_views.py)."""

urlpatterns: list = []
