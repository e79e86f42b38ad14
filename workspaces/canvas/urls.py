"""Canvas pages and fragments. Fragments live under ``/canvas/<name>/`` (trailing slash) next to
the API's ``/canvas/viewport``; the login under ``/accounts/`` (Django's default ``LOGIN_URL``)."""

from django.urls import include, path

from workspaces.canvas import views

urlpatterns = [
    path("", views.canvas_page, name="canvas"),
    path("accounts/login/", views.LoginView.as_view(), name="canvas-login"),
    path("accounts/logout/", views.LogoutView.as_view(), name="canvas-logout"),
    path("canvas/cards/", views.cards_fragment, name="canvas-cards"),
    path("canvas/cards/<str:workspace_id>/", views.card_fragment, name="canvas-card"),
]

# Each part of the canvas adds its fragments in its own module.
urlpatterns += [
    path("canvas/", include("workspaces.canvas.panel_urls")),
    path("canvas/", include("workspaces.canvas.surface_urls")),
    path("canvas/", include("workspaces.canvas.live_urls")),
]
