"""Fragments of the canvas's side panel (see workspaces/canvas/panel_views.py)."""

from django.urls import path

from workspaces.canvas import panel_views

urlpatterns = [
    path("panel/<str:workspace_id>/", panel_views.panel_header, name="canvas-panel-header"),
    path("panel/<str:workspace_id>/chat/comms/", panel_views.panel_comms, name="canvas-panel-comms"),
    path("panel/<str:workspace_id>/<str:tab>/", panel_views.panel_tab, name="canvas-panel-tab"),
]
