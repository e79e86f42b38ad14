"""Fragments of the canvas's surface part (see workspaces/canvas/surface_views.py)."""

from django.urls import path

from workspaces.canvas import surface_views as views

urlpatterns = [
    path("create-form/", views.create_form, name="canvas-create-form"),
    path("palette/", views.palette, name="canvas-palette"),
    path("welcome/", views.welcome, name="canvas-welcome"),
    path("settings/secrets/", views.secrets_list, name="canvas-settings-secrets"),
]
