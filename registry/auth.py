"""Every auth rule of the wire contract (spec §2), in one module.

DRF permission classes for the route-level classes (``AdminAuth``, ``WorkspaceAuth``,
``CanvasOrBearer``) and plain functions for the rules handlers apply themselves (registry
"grandfather" rule, in-handler re-checks). Failures raise :class:`AuthError`, whose body is the
spec's exact ``{"error": …}``.

Beyond the original: a logged-in Django staff session (CSRF-checked on unsafe methods) passes
wherever ``AdminAuth`` or ``WorkspaceAuth`` does; that is how the admin and the canvas call the
API. In production (``MOLECULE_ENV=production``) no fail-open path is taken.
"""

from __future__ import annotations

import hmac
import logging

import psycopg
from django.conf import settings
from django.db import DatabaseError
from rest_framework.authentication import BaseAuthentication, CSRFCheck
from rest_framework.exceptions import APIException
from rest_framework.permissions import SAFE_METHODS, BasePermission

from molecule_site.wire import is_pool_exhausted
from registry import selectors, services

log = logging.getLogger(__name__)

BEARER = "Bearer "


class AuthError(APIException):
    """An auth failure carrying the spec's exact status and body."""

    def __init__(self, message: str, status: int = 401, **extra):
        self.status_code = status
        super().__init__({"error": message, **extra})


PLATFORM_UNAVAILABLE = {
    "message": "platform datastore unavailable — retry shortly",
    "status": 503,
    "code": "platform_unavailable",
}


def bearer_token(request) -> str | None:
    """The bearer token of the FIRST ``Authorization`` header (servers comma-join duplicates)."""
    meta = getattr(request, "META", None) or request._request.META
    first = meta.get("HTTP_AUTHORIZATION", "").split(",", 1)[0]
    if not first.startswith(BEARER):
        return None
    return first[len(BEARER):].strip() or None


def is_admin_token(token: str | None) -> bool:
    admin = settings.ADMIN_TOKEN
    return bool(admin and token and hmac.compare_digest(token.encode(), admin.encode()))


def dev_mode() -> bool:
    return settings.DEV_MODE and not settings.IS_PRODUCTION


class SessionUser(BaseAuthentication):
    """Hands DRF the user Django's session middleware found, without enforcing CSRF here.

    Permission classes decide whether a session counts (``staff_session``, which checks CSRF);
    without this, DRF would replace the session user with an anonymous one before they run.
    """

    def authenticate(self, request):
        user = getattr(request._request, "user", None)
        if user is not None and user.is_authenticated:
            return user, None
        return None


def staff_session(request) -> bool:
    """A logged-in, active staff user; unsafe methods must also pass Django's CSRF check."""
    django_request = getattr(request, "_request", request)
    user = getattr(django_request, "user", None)
    if not (user is not None and user.is_authenticated and user.is_active and user.is_staff):
        return False
    if django_request.method not in SAFE_METHODS:
        check = CSRFCheck(lambda _: None)
        check.process_request(django_request)
        reason = check.process_view(django_request, None, (), {})
        if reason:
            raise AuthError(f"CSRF Failed: {reason}", status=403)
    return True


def fresh_install() -> bool:
    """No live workspace token anywhere and no ADMIN_TOKEN: the original's first-run fail-open."""
    if settings.ADMIN_TOKEN or settings.IS_PRODUCTION:
        return False
    try:
        return not selectors.any_live_token()
    except DatabaseError as exc:
        if is_pool_exhausted(exc):
            raise  # busy, not down: answered 503 "busy" by the exception handler
        raise AuthError(**PLATFORM_UNAVAILABLE) from None


# --- Route-level classes ----------------------------------------------------------------------

class AdminAuth(BasePermission):
    """Admin routes (spec §2.3 AdminAuth, org tokens and CP sessions aside)."""

    def has_permission(self, request, view) -> bool:
        if fresh_install() or dev_mode() or staff_session(request):
            return True
        token = bearer_token(request)
        if token is None:
            raise AuthError("admin auth required")
        if settings.ADMIN_TOKEN:
            if is_admin_token(token):
                return True
            raise AuthError("invalid admin auth token")
        if services.token_validate(token=token) is not None:
            return True
        raise AuthError("invalid admin auth token")


class WorkspaceAuth(BasePermission):
    """``/workspaces/:id/*`` routes: the admin token or a token bound to ``:id`` (strict)."""

    def has_permission(self, request, view) -> bool:
        workspace_id = view.kwargs.get("workspace_id")
        if not workspace_id:
            raise AuthError("missing workspace ID")
        token = bearer_token(request)
        if token is not None:
            if is_admin_token(token) or services.token_validate(token=token, workspace_id=workspace_id):
                return True
            raise AuthError("invalid workspace auth token")
        if staff_session(request) or dev_mode():
            return True
        raise AuthError("missing workspace auth token")


class CanvasOrBearer(BasePermission):
    """``PUT /canvas/viewport``: browsers from an allowed origin, or any valid bearer. No dev bypass."""

    def has_permission(self, request, view) -> bool:
        if not settings.IS_PRODUCTION:
            try:
                if not selectors.any_live_token():
                    return True
            except DatabaseError:
                return True
        token = bearer_token(request)
        if token is not None:
            if is_admin_token(token) or services.token_validate(token=token) is not None:
                return True
            raise AuthError("invalid admin auth token")
        if staff_session(request):
            return True
        origin = request.META.get("HTTP_ORIGIN", "")
        if origin and origin in settings.CORS_ORIGINS:
            return True
        raise AuthError("admin auth required")


# --- Rules applied inside handlers ----------------------------------------------------------------

def check_registry_token(request, workspace_id) -> None:
    """Registry "grandfather" rule: a workspace with no live token may call without one.

    A valid bearer is checked first (one statement on the heartbeat hot path); the live-token
    probe only runs when that fails.
    """
    token = bearer_token(request)
    if token is not None and services.token_validate(token=token, workspace_id=workspace_id) is not None:
        return
    try:
        if not selectors.workspace_has_live_token(workspace_id):
            return
    except DatabaseError:
        return  # the original fails open here; later calls re-check
    raise AuthError("missing workspace auth token" if token is None else "invalid workspace auth token")


async def acheck_registry_token(request, workspace_id) -> None:
    """:func:`check_registry_token` for the async registry views (same rule, async driver)."""
    token = bearer_token(request)
    if token is not None and await services.atoken_validate(token=token, workspace_id=workspace_id) is not None:
        return
    try:
        if not await selectors.aworkspace_has_live_token(workspace_id):
            return
    except psycopg.Error:
        return  # the original fails open here; later calls re-check
    raise AuthError("missing workspace auth token" if token is None else "invalid workspace auth token")


def check_workspace_recheck(request, workspace_id) -> None:
    """In-handler re-check (``/state``, ``/secrets/values``…): grandfather, but fail closed.

    The admin token and staff sessions already vouched for by ``WorkspaceAuth`` pass too.
    """
    token = bearer_token(request)
    if is_admin_token(token) or (token is None and staff_session(request)):
        return
    try:
        if not selectors.workspace_has_live_token(workspace_id):
            return
        if token is None:
            raise AuthError("missing workspace auth token")
        if services.token_validate(token=token, workspace_id=workspace_id) is None:
            raise AuthError("invalid workspace auth token")
    except DatabaseError:
        raise AuthError("auth check failed", status=500) from None
