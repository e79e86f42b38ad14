"""The server-rendered canvas (canvas spec §7.1): the page, its card fragments, the login.

Pages and fragments are for logged-in staff users only, in every mode; the browser then calls
the platform API with its session cookie and CSRF token (``registry.auth`` admits a staff
session wherever an operator may act), so no token is ever put into a page.
"""

from __future__ import annotations

import functools

from django import forms
from django.contrib.auth import views as auth_views
from django.contrib.auth.views import redirect_to_login
from django.http import Http404
from django.shortcuts import render
from django.views.decorators.http import require_safe

from molecule_site.wire import error_response
from workspaces.canvas import cards as canvas_cards
from workspaces.models import CanvasViewport
from workspaces.selectors import number

LOGIN_REQUIRED = "login required"


def _is_operator(user) -> bool:
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def operator_page(view):
    """GET/HEAD only (other methods: 405), staff session required: a page redirects to the
    login, a fragment (fetched by the page's JS) answers 401 so the page can send it there."""
    @require_safe
    @functools.wraps(view)
    def run(request, *args, **kwargs):
        if not _is_operator(request.user):
            if request.headers.get("X-Molecule-Fragment"):
                return error_response(LOGIN_REQUIRED, 401)
            return redirect_to_login(request.get_full_path())
        return view(request, *args, **kwargs)
    return run


class OperatorLoginForm(auth_views.AuthenticationForm):
    """Django's login form, for staff users only (the canvas acts with operator rights)."""

    def confirm_login_allowed(self, user):
        super().confirm_login_allowed(user)
        if not user.is_staff:
            raise forms.ValidationError("This account is not an operator account.", code="not_staff")


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    form_class = OperatorLoginForm
    redirect_authenticated_user = True
    http_method_names = ("get", "head", "post")  # a FormView would also take PUT as a login attempt


class LogoutView(auth_views.LogoutView):
    """POST only (Django's rule): a link cannot log an operator out."""

    next_page = "canvas-login"
    http_method_names = ("post",)


def _viewport() -> dict:
    viewport = CanvasViewport.objects.first()
    if viewport is None:
        return {"x": 0, "y": 0, "zoom": 1}
    return {"x": number(viewport.x), "y": number(viewport.y), "zoom": number(viewport.zoom)}


@operator_page
def canvas_page(request):
    forest = canvas_cards.card_forest()
    return render(request, "canvas/page.html", {
        "forest": forest,
        "counts": canvas_cards.counts(forest),
        "viewport": _viewport(),
    })


@operator_page
def cards_fragment(request):
    """Every root card with its subtree: what a re-sync morphs into the page."""
    forest = canvas_cards.card_forest()
    return render(request, "canvas/_cards.html", {"forest": forest, "counts": canvas_cards.counts(forest)})


@operator_page
def card_fragment(request, workspace_id):
    """One card with its subtree, at the position the full page would give it."""
    card = canvas_cards.find_card(canvas_cards.card_forest(), workspace_id)
    if card is None:
        raise Http404("workspace not found")
    return render(request, "canvas/_ws_card.html", {"card": card})
