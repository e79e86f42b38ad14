"""Every auth rule of the wire contract (spec §2), in one module.

DRF permission classes for the route-level classes (``AdminAuth``, ``WorkspaceAuth``,
``CanvasOrBearer``) and plain functions for the rules handlers apply themselves (registry rule,
A2A caller rule, in-handler re-checks, operator-only actions). Failures raise
:class:`AuthError`, whose body is the spec's exact ``{"error": …}``.

Secure by default (docs/security.md): the original's permissive rules — fail-open admin on a
fresh install, any workspace token as admin, token-less ("grandfathered") registry and A2A
callers, failing open when an auth probe cannot reach the database — apply only in dev mode
(``molecule_site.modes``). Everywhere else the principals are: the ``ADMIN_TOKEN`` (generated
when not given), a logged-in Django staff session (CSRF-checked on unsafe methods; how the
admin and the canvas call the API), and a workspace's own token for that workspace.
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
DEV_MODE_ACTOR = "dev-mode"  # who acted, for an operator-only action taken in dev mode


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
    return settings.DEV_MODE and not settings.IS_PRODUCTION  # settings never set both; belt and braces


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


# --- Operators ------------------------------------------------------------------------------------

def _is_staff(user) -> bool:
    return user is not None and user.is_authenticated and user.is_active and user.is_staff


def _check_csrf(django_request) -> None:
    if django_request.method in SAFE_METHODS:
        return
    check = CSRFCheck(lambda _: None)
    check.process_request(django_request)
    reason = check.process_view(django_request, None, (), {})
    if reason:
        raise AuthError(f"CSRF Failed: {reason}", status=403)


def staff_session(request) -> bool:
    """A logged-in, active staff user; unsafe methods must also pass Django's CSRF check."""
    django_request = getattr(request, "_request", request)
    if not _is_staff(getattr(django_request, "user", None)):
        return False
    _check_csrf(django_request)
    return True


async def astaff_session(request) -> bool:
    """:func:`staff_session` for plain async views (the session user is loaded asynchronously)."""
    if not _is_staff(await request.auser()):
        return False
    _check_csrf(request)
    return True


def operator_principal(request) -> str | None:
    """Who acts as operator: ``"admin"`` for the admin token, the username of a staff session,
    else None. This — never a name taken from the body — is what gets recorded as the actor."""
    token = bearer_token(request)
    if token is not None:
        return "admin" if is_admin_token(token) else None
    if staff_session(request):
        return getattr(request, "_request", request).user.get_username()
    return None


def require_operator(request, action: str) -> str:
    """The acting operator, or 403 ``{"error":"<action> requires admin auth"}`` for anyone else —
    workspace tokens included, whatever route-level class let them in. Dev mode lets anyone act,
    as the original does (recorded as ``DEV_MODE_ACTOR``)."""
    principal = operator_principal(request)
    if principal is not None:
        return principal
    if dev_mode():
        return DEV_MODE_ACTOR
    raise AuthError(f"{action} requires admin auth", status=403)


# --- Route-level classes ----------------------------------------------------------------------

class AdminAuth(BasePermission):
    """Admin routes (spec §2.3 AdminAuth): the admin token or a staff session; dev mode: anyone.

    Departs from the original outside dev mode: no fresh-install fail-open (its tier 1) and no
    workspace token as admin (tier 7) — ``ADMIN_TOKEN`` is always set there, generated under
    MOLECULE_HOME when not given. Org tokens (§2.2) do not exist yet.
    """

    def has_permission(self, request, view) -> bool:
        if dev_mode() or staff_session(request):
            return True
        token = bearer_token(request)
        if token is None:
            raise AuthError("admin auth required")
        if is_admin_token(token):
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
    """``PUT /canvas/viewport``: any valid bearer, a staff session, or a browser from an allowed
    origin. The original's "no live token anywhere → allow" holds in dev mode only."""

    def has_permission(self, request, view) -> bool:
        if dev_mode():
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

def _token_error(token: str | None, has_live_token: bool, subject: str = "workspace") -> str | None:
    """The 401 message for a bearer that did not validate for the workspace (None: let it in).

    The admin token passes (an operator may act for any workspace). A workspace with no live
    token: the original lets anyone in without a token ("grandfathering") — so anyone could
    register a workspace nobody provisioned, or take over one whose token was revoked, and
    receive a fresh token. Here only dev mode does; otherwise the admin token is needed, which
    is how an operator heals a workspace by hand (a restart issues and injects a new token by
    itself).
    """
    if is_admin_token(token) or (not has_live_token and dev_mode()):
        return None
    return f"missing {subject} auth token" if token is None else f"invalid {subject} auth token"


def check_registry_token(request, workspace_id) -> None:
    """Registry rule (register, heartbeat, update-card; the discovery rule builds on it).

    A valid bearer is checked first (one statement on the heartbeat hot path); the live-token
    probe only runs when that fails. A datastore error on the probe fails open in dev mode (as
    in the original) and closed (503) everywhere else.
    """
    token = bearer_token(request)
    if is_admin_token(token):
        return
    if token is not None and services.token_validate(token=token, workspace_id=workspace_id) is not None:
        return
    try:
        has_live_token = selectors.workspace_has_live_token(workspace_id)
    except DatabaseError as exc:
        if dev_mode():
            return
        if is_pool_exhausted(exc):
            raise  # busy, not down: answered 503 "busy" by the exception handler
        raise AuthError(**PLATFORM_UNAVAILABLE) from None
    error = _token_error(token, has_live_token)
    if error:
        raise AuthError(error)


async def acheck_registry_token(request, workspace_id) -> None:
    """:func:`check_registry_token` for the async registry views (same rule, async driver)."""
    token = bearer_token(request)
    if is_admin_token(token):
        return
    if token is not None and await services.atoken_validate(token=token, workspace_id=workspace_id) is not None:
        return
    try:
        has_live_token = await selectors.aworkspace_has_live_token(workspace_id)
    except psycopg.Error:
        if dev_mode():
            return
        raise AuthError(**PLATFORM_UNAVAILABLE) from None
    error = _token_error(token, has_live_token)
    if error:
        raise AuthError(error)


async def a2a_caller_auth_error(request, caller_id: str) -> str | None:
    """The A2A caller rule (spec §2.3) on the CALLER id: its own bearer token or the admin
    token; the token-less caller of a workspace with no live token only in dev mode. Returns
    the message for a 401, or None."""
    token = bearer_token(request)
    if is_admin_token(token):
        return None
    if token is not None and await services.atoken_validate(token=token, workspace_id=caller_id) is not None:
        return None
    try:
        has_live_token = await selectors.aworkspace_has_live_token(caller_id)
    except psycopg.Error:
        if dev_mode():
            return None  # the original lets the call through on a failed probe
        raise AuthError(**PLATFORM_UNAVAILABLE) from None
    return _token_error(token, has_live_token, subject="caller")


async def a2a_operator_error(request) -> str | None:
    """An A2A call with no caller (the original's "canvas" caller): outside dev mode only an
    operator — the admin token or a staff session — may send one. Returns the 401 message."""
    token = bearer_token(request)
    if token is not None:
        return None if is_admin_token(token) else "invalid admin auth token"
    if dev_mode() or await astaff_session(request):
        return None
    return "admin auth required"


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
