"""Every auth rule of the wire contract (spec §0 Authorization headers, §2.1–2.7), end to end.

Routes used per class: AdminAuth → ``GET /workspaces``, ``GET /events``; WorkspaceAuth →
``GET /workspaces/<id>/tokens``, ``GET /workspaces/<id>/state``, ``POST /workspaces/<id>/pause``;
CanvasOrBearer → ``PUT /canvas/viewport``; the test-token endpoint has its own rules (§2.7).
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import DatabaseError
from django.test import Client, RequestFactory

from registry import auth
from registry.auth import AuthError, bearer_token, check_registry_token, check_workspace_recheck
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint, token_revoke
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = pytest.mark.django_db

ADMIN = "s3cret-admin-token"
ADMIN_REQUIRED = b'{"error":"admin auth required"}'
INVALID_ADMIN = b'{"error":"invalid admin auth token"}'
MISSING_WS = b'{"error":"missing workspace auth token"}'
INVALID_WS = b'{"error":"invalid workspace auth token"}'
VIEWPORT = json.dumps({"x": 1, "y": 2, "zoom": 1})
ALLOWED_ORIGIN = "https://canvas.example.com"


@pytest.fixture(autouse=True)
def _auth_settings(settings):
    """Secure mode, as every install outside dev mode, unless a test flips something. (There
    ADMIN_TOKEN is always set — generated; None here means "no valid admin token is ever
    presented", which the rules handle the same way.)"""
    settings.ADMIN_TOKEN = None
    settings.DEV_MODE = False
    settings.IS_PRODUCTION = False
    settings.MOLECULE_ENABLE_TEST_TOKENS = False
    settings.CORS_ORIGINS = ["http://localhost:3000", ALLOWED_ORIGIN]
    return settings


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Dev Lead")


@pytest.fixture
def other():
    return Workspace.objects.create(name="QA")


def bearer(token: str) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def mint(workspace: Workspace) -> str:
    return token_mint(workspace=workspace)[1]


def put_viewport(client, **headers):
    return client.put("/canvas/viewport", VIEWPORT, content_type="application/json", **headers)


def staff_csrf_client(user) -> tuple[Client, str]:
    """A logged-in client that enforces CSRF, and the csrftoken cookie the admin handed it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    assert client.get("/django-admin/").status_code == 200
    return client, client.cookies["csrftoken"].value


# --- Bearer parsing (spec §0) ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("Bearer   abc  ", "abc"),
        ("Bearer A,Bearer B", "A"),
        ("Bearer A, Bearer B", "A"),
        ("Token abc", None),
        ("bearer abc", None),
        ("Bearer", None),
        ("Bearer ", None),
        ("Bearer    ", None),
        ("BearerAbc", None),
        ("Basic dXNlcjpwYXNz", None),
        ("", None),
    ],
)
def test_bearer_token_takes_first_header_and_requires_exact_prefix(header, expected):
    request = RequestFactory().get("/", HTTP_AUTHORIZATION=header)

    assert bearer_token(request) == expected


def test_bearer_token_is_none_without_authorization_header():
    assert bearer_token(RequestFactory().get("/")) is None


# --- AdminAuth (spec §2.3) -----------------------------------------------------------------------

def test_admin_auth_fresh_install_is_not_open_outside_dev_mode(client, workspace):
    """Beyond the original (its AdminAuth tier 1): no live token anywhere opens nothing here."""
    assert not WorkspaceAuthToken.objects.exists()

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_fresh_install_is_open_in_dev_mode(client, settings, workspace):
    settings.DEV_MODE = True

    response = client.get("/workspaces")

    assert response.status_code == 200
    assert [item["id"] for item in response.json()] == [str(workspace.id)]


def test_admin_auth_fresh_install_events_route_needs_admin_outside_dev_mode(client, settings):
    assert client.get("/events").content == ADMIN_REQUIRED
    settings.DEV_MODE = True

    response = client.get("/events")

    assert response.status_code == 200
    assert response.content == b"[]"


@pytest.mark.parametrize("path", ["/workspaces", "/events"])
def test_admin_auth_requires_bearer_once_any_live_token_exists(client, workspace, path):
    mint(workspace)

    response = client.get(path)

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED
    assert response["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.parametrize("header", ["Token {t}", "bearer {t}", "Bearer", "Bearer ", "{t}", "Basic {t}"])
def test_admin_auth_treats_malformed_authorization_as_no_token(client, workspace, header):
    token = mint(workspace)

    response = client.get("/workspaces", HTTP_AUTHORIZATION=header.format(t=token))

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_accepts_admin_token_when_set(client, settings, workspace):
    settings.ADMIN_TOKEN = ADMIN
    mint(workspace)

    response = client.get("/workspaces", **bearer(ADMIN))

    assert response.status_code == 200


def test_admin_auth_rejects_workspace_token_when_admin_token_set(client, settings, workspace):
    settings.ADMIN_TOKEN = ADMIN
    token = mint(workspace)

    response = client.get("/workspaces", **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_admin_auth_rejects_wrong_admin_token(client, settings):
    settings.ADMIN_TOKEN = ADMIN

    response = client.get("/workspaces", **bearer(ADMIN + "x"))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_admin_auth_admin_token_disables_fresh_install_fail_open(client, settings):
    settings.ADMIN_TOKEN = ADMIN
    assert not WorkspaceAuthToken.objects.exists()

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_never_accepts_a_workspace_token(client, workspace, other):
    """Beyond the original (its tier 7: any workspace token is admin without ADMIN_TOKEN)."""
    mint(workspace)
    other_token = mint(other)

    response = client.get("/workspaces", **bearer(other_token))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_admin_auth_rejects_revoked_workspace_token(client, workspace, other):
    mint(other)  # keeps the install out of fresh-install mode
    row, token = token_mint(workspace=workspace)
    token_revoke(tokens=WorkspaceAuthToken.objects.filter(pk=row.pk))

    response = client.get("/workspaces", **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_admin_auth_rejects_garbage_bearer(client, workspace):
    mint(workspace)

    response = client.get("/events", **bearer("not-a-token"))

    assert response.status_code == 401
    assert response.json() == {"error": "invalid admin auth token"}


def test_admin_auth_rejects_token_of_removed_workspace(client, workspace, other):
    mint(other)
    token = mint(workspace)
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.REMOVED)

    response = client.get("/workspaces", **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_admin_auth_live_token_of_removed_workspace_still_ends_fresh_install(client, workspace):
    """Spec §2.1: the global "any live token" probe counts rows without joining workspaces."""
    mint(workspace)
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.REMOVED)

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_does_not_reopen_when_last_token_is_revoked(client, workspace):
    row, _ = token_mint(workspace=workspace)
    assert client.get("/workspaces").status_code == 401

    token_revoke(tokens=WorkspaceAuthToken.objects.filter(pk=row.pk))

    assert client.get("/workspaces").content == ADMIN_REQUIRED


def test_admin_auth_duplicate_header_first_value_wins(client, settings):
    settings.ADMIN_TOKEN = ADMIN

    assert client.get("/workspaces", HTTP_AUTHORIZATION=f"Bearer {ADMIN},Bearer junk").status_code == 200
    response = client.get("/workspaces", HTTP_AUTHORIZATION=f"Bearer junk,Bearer {ADMIN}")
    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_admin_auth_dev_mode_allows_without_token(client, settings, workspace):
    settings.DEV_MODE = True
    mint(workspace)

    response = client.get("/workspaces")

    assert response.status_code == 200


def test_admin_auth_production_disables_fresh_install_fail_open(client, settings):
    settings.IS_PRODUCTION = True
    settings.ADMIN_TOKEN = ADMIN
    assert not WorkspaceAuthToken.objects.exists()

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_production_without_admin_token_still_not_fail_open(client, settings):
    settings.IS_PRODUCTION = True

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_production_ignores_dev_mode_flag(client, settings, workspace):
    settings.IS_PRODUCTION = True
    settings.DEV_MODE = True
    mint(workspace)

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_production_accepts_admin_token(client, settings):
    settings.IS_PRODUCTION = True
    settings.ADMIN_TOKEN = ADMIN

    assert client.get("/workspaces", **bearer(ADMIN)).status_code == 200


def test_admin_auth_allows_staff_session(operator_client, workspace):
    mint(workspace)

    response = operator_client.get("/workspaces")

    assert response.status_code == 200


def test_admin_auth_allows_staff_session_even_with_admin_token_set(operator_client, settings):
    settings.ADMIN_TOKEN = ADMIN

    assert operator_client.get("/events").status_code == 200


def test_admin_auth_rejects_non_staff_session(client, django_user_model, workspace):
    mint(workspace)
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "correct horse battery")
    client.force_login(user)

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_rejects_inactive_staff_session(client, operator, workspace):
    mint(workspace)
    client.force_login(operator)
    type(operator).objects.filter(pk=operator.pk).update(is_active=False)

    response = client.get("/workspaces")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_admin_auth_asks_the_datastore_nothing(client, settings, monkeypatch):
    """The fresh-install probe is gone: a datastore outage cannot open (or break) admin auth."""
    def broken():
        raise DatabaseError("down")

    monkeypatch.setattr(auth.selectors, "any_live_token", broken)
    settings.ADMIN_TOKEN = ADMIN

    assert client.get("/events").content == ADMIN_REQUIRED
    assert client.get("/events", **bearer(ADMIN)).status_code == 200


# --- WorkspaceAuth (spec §2.3) -------------------------------------------------------------------

def test_workspace_auth_accepts_token_bound_to_workspace(client, workspace):
    token = mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/tokens", **bearer(token))

    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_workspace_auth_rejects_token_of_another_workspace(client, workspace, other):
    mint(workspace)
    other_token = mint(other)

    response = client.get(f"/workspaces/{workspace.id}/tokens", **bearer(other_token))

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_rejects_revoked_token(client, workspace):
    row, token = token_mint(workspace=workspace)
    token_revoke(tokens=WorkspaceAuthToken.objects.filter(pk=row.pk))

    response = client.get(f"/workspaces/{workspace.id}/tokens", **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_rejects_token_of_removed_workspace(client, workspace):
    token = mint(workspace)
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.REMOVED)

    response = client.get(f"/workspaces/{workspace.id}/tokens", **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_rejects_garbage_token(client, workspace):
    response = client.get(f"/workspaces/{workspace.id}/tokens", **bearer("garbage"))

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_rejects_token_on_non_uuid_path(client, workspace):
    token = mint(workspace)

    response = client.get("/workspaces/not-a-uuid/tokens", **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_requires_bearer_even_on_fresh_install(client, workspace):
    assert not WorkspaceAuthToken.objects.exists()

    response = client.get(f"/workspaces/{workspace.id}/tokens")

    assert response.status_code == 401
    assert response.content == MISSING_WS


@pytest.mark.parametrize("header", ["Token {t}", "bearer {t}", "Bearer"])
def test_workspace_auth_treats_malformed_authorization_as_missing(client, workspace, header):
    token = mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/tokens", HTTP_AUTHORIZATION=header.format(t=token))

    assert response.status_code == 401
    assert response.content == MISSING_WS


def test_workspace_auth_accepts_admin_token_for_any_workspace(client, settings, workspace, other):
    settings.ADMIN_TOKEN = ADMIN
    mint(workspace)

    for target in (workspace, other):
        response = client.get(f"/workspaces/{target.id}/tokens", **bearer(ADMIN))
        assert response.status_code == 200


def test_workspace_auth_dev_mode_allows_without_bearer(client, settings, workspace):
    settings.DEV_MODE = True
    mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/tokens")

    assert response.status_code == 200


def test_workspace_auth_dev_mode_still_rejects_wrong_bearer(client, settings, workspace, other):
    settings.DEV_MODE = True
    mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/tokens", **bearer(mint(other)))

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_production_ignores_dev_mode_flag(client, settings, workspace):
    settings.IS_PRODUCTION = True
    settings.DEV_MODE = True

    response = client.get(f"/workspaces/{workspace.id}/tokens")

    assert response.status_code == 401
    assert response.content == MISSING_WS


def test_workspace_auth_allows_staff_session_on_get(operator_client, workspace):
    mint(workspace)

    response = operator_client.get(f"/workspaces/{workspace.id}/tokens")

    assert response.status_code == 200


def test_workspace_auth_rejects_non_staff_session(client, django_user_model, workspace):
    client.force_login(django_user_model.objects.create_user("viewer", "v@example.com", "correct horse battery"))

    response = client.get(f"/workspaces/{workspace.id}/tokens")

    assert response.status_code == 401
    assert response.content == MISSING_WS


def test_workspace_auth_staff_session_post_without_csrf_is_403(operator, workspace):
    client, _ = staff_csrf_client(operator)

    response = client.post(f"/workspaces/{workspace.id}/pause")

    assert response.status_code == 403
    assert response.json()["error"].startswith("CSRF Failed")
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.PROVISIONING


def test_workspace_auth_staff_session_post_with_wrong_csrf_is_403(operator, workspace):
    client, _ = staff_csrf_client(operator)

    response = client.post(f"/workspaces/{workspace.id}/pause", HTTP_X_CSRFTOKEN="x" * 32)

    assert response.status_code == 403
    assert response.json()["error"].startswith("CSRF Failed")


def test_workspace_auth_staff_session_post_with_csrf_passes(operator, workspace):
    client, csrf = staff_csrf_client(operator)

    response = client.post(f"/workspaces/{workspace.id}/pause", HTTP_X_CSRFTOKEN=csrf)

    assert response.status_code == 200
    assert response.content == b'{"status":"paused","paused_count":1}'
    workspace.refresh_from_db()
    assert workspace.status == WorkspaceStatus.PAUSED


def test_workspace_auth_bearer_post_needs_no_csrf(workspace):
    client = Client(enforce_csrf_checks=True)
    token = mint(workspace)

    response = client.post(f"/workspaces/{workspace.id}/pause", **bearer(token))

    assert response.status_code == 200
    assert response.content == b'{"status":"paused","paused_count":1}'


def test_workspace_auth_pause_without_bearer_is_401(client, workspace):
    response = client.post(f"/workspaces/{workspace.id}/pause")

    assert response.status_code == 401
    assert response.content == MISSING_WS


def test_workspace_auth_success_records_last_used_at(client, workspace):
    row, token = token_mint(workspace=workspace)
    assert row.last_used_at is None

    assert client.get(f"/workspaces/{workspace.id}/tokens", **bearer(token)).status_code == 200

    row.refresh_from_db()
    assert row.last_used_at is not None
    assert row.last_used_at >= row.created_at


def test_workspace_auth_failure_does_not_record_last_used_at(client, workspace, other):
    row, token = token_mint(workspace=workspace)

    assert client.get(f"/workspaces/{other.id}/tokens", **bearer(token)).status_code == 401

    row.refresh_from_db()
    assert row.last_used_at is None


def test_workspace_auth_duplicate_header_good_first_passes(client, workspace):
    token = mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/tokens", HTTP_AUTHORIZATION=f"Bearer {token},Bearer bad")

    assert response.status_code == 200


def test_workspace_auth_duplicate_header_bad_first_fails(client, workspace):
    token = mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/tokens", HTTP_AUTHORIZATION=f"Bearer bad,Bearer {token}")

    assert response.status_code == 401
    assert response.content == INVALID_WS


def test_workspace_auth_duplicate_header_via_headers_kwarg(client, workspace):
    token = mint(workspace)

    response = client.get(
        f"/workspaces/{workspace.id}/tokens", headers={"Authorization": f"Bearer {token},Bearer bad"}
    )

    assert response.status_code == 200


# --- CanvasOrBearer (spec §2.3) ------------------------------------------------------------------

def test_canvas_or_bearer_no_live_tokens_opens_it_in_dev_mode_only(client, settings):
    assert put_viewport(client).content == ADMIN_REQUIRED
    settings.DEV_MODE = True

    response = put_viewport(client)

    assert response.status_code == 200
    assert response.content == b'{"status":"saved"}'


def test_canvas_or_bearer_requires_auth_once_live_tokens_exist(client, workspace):
    mint(workspace)

    response = put_viewport(client)

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_canvas_or_bearer_allows_configured_cors_origin(client, workspace):
    mint(workspace)

    response = put_viewport(client, HTTP_ORIGIN=ALLOWED_ORIGIN)

    assert response.status_code == 200
    assert response.content == b'{"status":"saved"}'


@pytest.mark.parametrize("origin", ["https://evil.example.com", ALLOWED_ORIGIN + ".evil.com", "null"])
def test_canvas_or_bearer_rejects_other_origin(client, workspace, origin):
    """A foreign page's Origin is refused before any view (molecule_site.middleware)."""
    mint(workspace)

    response = put_viewport(client, HTTP_ORIGIN=origin)

    assert response.status_code == 403
    assert response.content == b'{"error":"cross-site request refused"}'


def test_canvas_or_bearer_wants_the_exact_origin(client, workspace):
    mint(workspace)

    response = put_viewport(client, HTTP_ORIGIN=ALLOWED_ORIGIN + "/")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_canvas_or_bearer_accepts_any_valid_workspace_token(client, workspace, other):
    mint(workspace)

    response = put_viewport(client, **bearer(mint(other)))

    assert response.status_code == 200


def test_canvas_or_bearer_accepts_admin_token(client, settings, workspace):
    settings.ADMIN_TOKEN = ADMIN
    mint(workspace)

    assert put_viewport(client, **bearer(ADMIN)).status_code == 200


def test_canvas_or_bearer_rejects_invalid_bearer(client, workspace):
    mint(workspace)

    response = put_viewport(client, **bearer("garbage"))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_canvas_or_bearer_invalid_bearer_not_rescued_by_allowed_origin(client, workspace):
    mint(workspace)

    response = put_viewport(client, HTTP_ORIGIN=ALLOWED_ORIGIN, **bearer("garbage"))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_canvas_or_bearer_rejects_revoked_token(client, workspace, other):
    mint(other)
    row, token = token_mint(workspace=workspace)
    token_revoke(tokens=WorkspaceAuthToken.objects.filter(pk=row.pk))

    response = put_viewport(client, **bearer(token))

    assert response.status_code == 401
    assert response.content == INVALID_ADMIN


def test_canvas_or_bearer_has_no_dev_mode_bypass(client, settings, workspace):
    settings.DEV_MODE = True
    mint(workspace)

    response = put_viewport(client)

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_canvas_or_bearer_production_has_no_fail_open(client, settings):
    settings.IS_PRODUCTION = True
    settings.ADMIN_TOKEN = ADMIN
    assert not WorkspaceAuthToken.objects.exists()

    response = put_viewport(client)

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


def test_canvas_or_bearer_get_is_open(client, workspace):
    mint(workspace)

    response = client.get("/canvas/viewport")

    assert response.status_code == 200


def test_canvas_or_bearer_staff_session_put_needs_csrf(operator, workspace):
    mint(workspace)
    client, csrf = staff_csrf_client(operator)

    assert put_viewport(client).status_code == 403
    assert put_viewport(client, HTTP_X_CSRFTOKEN=csrf).status_code == 200


# --- In-handler re-check via GET /workspaces/<id>/state (spec §2.3, §5.6) --------------------------

def test_state_recheck_dev_mode_passes_for_workspace_without_tokens(client, settings, workspace):
    settings.DEV_MODE = True

    response = client.get(f"/workspaces/{workspace.id}/state")

    assert response.status_code == 200
    assert response.json() == {
        "workspace_id": str(workspace.id), "status": "provisioning", "paused": False, "deleted": False,
    }


def test_state_recheck_dev_mode_does_not_bypass_for_workspace_with_tokens(client, settings, workspace):
    settings.DEV_MODE = True
    mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/state")

    assert response.status_code == 401
    assert response.content == MISSING_WS


def test_state_recheck_accepts_admin_token(client, settings, workspace):
    settings.ADMIN_TOKEN = ADMIN
    mint(workspace)

    response = client.get(f"/workspaces/{workspace.id}/state", **bearer(ADMIN))

    assert response.status_code == 200
    assert response.content == (
        f'{{"workspace_id":"{workspace.id}","status":"provisioning","paused":false,"deleted":false}}'.encode()
    )


def test_state_recheck_accepts_bound_token(client, workspace):
    token = mint(workspace)
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.PAUSED)

    response = client.get(f"/workspaces/{workspace.id}/state", **bearer(token))

    assert response.status_code == 200
    assert response.json() == {"workspace_id": str(workspace.id), "status": "paused", "paused": True, "deleted": False}


def test_state_recheck_allows_staff_session(operator_client, workspace):
    mint(workspace)

    response = operator_client.get(f"/workspaces/{workspace.id}/state")

    assert response.status_code == 200


def test_state_recheck_fails_closed_on_datastore_error(client, settings, workspace, monkeypatch):
    settings.DEV_MODE = True

    def broken(_workspace_id):
        raise DatabaseError("down")

    monkeypatch.setattr(auth.selectors, "workspace_has_live_token", broken)

    response = client.get(f"/workspaces/{workspace.id}/state")

    assert response.status_code == 500
    assert response.content == b'{"error":"auth check failed"}'


# --- check_workspace_recheck / check_registry_token called directly --------------------------------

def _request(token: str | None = None):
    headers = bearer(token) if token is not None else {}
    request = RequestFactory().get("/", **headers)
    return request


def _raises(func, *args) -> AuthError:
    with pytest.raises(AuthError) as caught:
        func(*args)
    return caught.value


def test_registry_token_without_a_live_token_needs_the_admin_token(settings, workspace, other):
    """Beyond the original (token-less "grandfathering"): only the admin token, outside dev mode."""
    mint(other)  # tokens elsewhere do not matter
    settings.ADMIN_TOKEN = ADMIN

    assert _raises(check_registry_token, _request(), workspace.id).detail == {"error": "missing workspace auth token"}
    assert _raises(check_registry_token, _request("x"), workspace.id).detail == {"error": "invalid workspace auth token"}
    assert check_registry_token(_request(ADMIN), workspace.id) is None


def test_registry_token_grandfathers_a_workspace_without_a_live_token_in_dev_mode(settings, workspace):
    settings.DEV_MODE = True

    assert check_registry_token(_request(), workspace.id) is None


def test_registry_token_revoked_tokens_leave_nothing_to_claim(settings, workspace):
    row, token = token_mint(workspace=workspace)
    token_revoke(tokens=WorkspaceAuthToken.objects.filter(pk=row.pk))

    assert _raises(check_registry_token, _request(), str(workspace.id)).detail == {"error": "missing workspace auth token"}
    assert _raises(check_registry_token, _request(token), str(workspace.id)).detail == {"error": "invalid workspace auth token"}
    settings.DEV_MODE = True
    assert check_registry_token(_request(), str(workspace.id)) is None


def test_registry_token_missing_bearer_is_401_once_workspace_has_token(workspace):
    mint(workspace)

    error = _raises(check_registry_token, _request(), workspace.id)

    assert error.status_code == 401
    assert error.detail == {"error": "missing workspace auth token"}


def test_registry_token_wrong_bearer_is_401_invalid(workspace, other):
    mint(workspace)

    for wrong in ("garbage", mint(other)):
        error = _raises(check_registry_token, _request(wrong), workspace.id)
        assert error.status_code == 401
        assert error.detail == {"error": "invalid workspace auth token"}


def test_registry_token_right_bearer_passes(workspace):
    token = mint(workspace)

    assert check_registry_token(_request(token), workspace.id) is None
    assert check_registry_token(_request(token), str(workspace.id)) is None


def test_registry_token_dev_mode_does_not_waive_a_live_token_but_the_admin_token_passes(settings, workspace):
    settings.DEV_MODE = True
    mint(workspace)

    assert _raises(check_registry_token, _request(), workspace.id).detail == {"error": "missing workspace auth token"}

    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = ADMIN
    assert check_registry_token(_request(ADMIN), workspace.id) is None  # an operator may act for any workspace


def test_registry_token_fails_closed_on_datastore_error_outside_dev_mode(settings, workspace, monkeypatch):
    mint(workspace)

    def broken(_workspace_id):
        raise DatabaseError("down")

    monkeypatch.setattr(auth.selectors, "workspace_has_live_token", broken)

    error = _raises(check_registry_token, _request(), workspace.id)
    assert (error.status_code, error.detail["code"]) == (503, "platform_unavailable")
    settings.DEV_MODE = True
    assert check_registry_token(_request(), workspace.id) is None  # the original fails open


def test_workspace_recheck_direct_rules(settings, workspace, other):
    token = mint(workspace)

    assert check_workspace_recheck(_request(), other.id) is None  # no live token: grandfathered
    assert check_workspace_recheck(_request(token), workspace.id) is None
    assert _raises(check_workspace_recheck, _request(), workspace.id).detail == {"error": "missing workspace auth token"}
    assert _raises(check_workspace_recheck, _request("bad"), workspace.id).detail == {"error": "invalid workspace auth token"}
    settings.ADMIN_TOKEN = ADMIN
    assert check_workspace_recheck(_request(ADMIN), workspace.id) is None


# --- Test-token endpoint (spec §2.7) -------------------------------------------------------------

def test_test_token_is_404_outside_dev_mode_unless_enabled(client, settings, workspace):
    """Beyond the original (on unless MOLECULE_ENV is exactly "production")."""
    settings.ADMIN_TOKEN = ADMIN
    for headers in ({}, bearer(ADMIN)):
        response = client.get(f"/admin/workspaces/{workspace.id}/test-token", **headers)
        assert (response.status_code, response.content) == (404, b'{"error":"not found"}')
    assert not WorkspaceAuthToken.objects.exists()


def test_test_token_mints_a_token_that_validates_for_the_workspace(client, settings, workspace):
    settings.DEV_MODE = True
    response = client.get(f"/admin/workspaces/{workspace.id}/test-token")

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"auth_token", "workspace_id"}
    assert body["workspace_id"] == str(workspace.id)
    assert len(body["auth_token"]) == 43
    tokens = client.get(f"/workspaces/{workspace.id}/tokens", **bearer(body["auth_token"]))
    assert tokens.status_code == 200
    assert tokens.json()["count"] == 1


def test_test_token_token_is_not_an_admin_credential(client, settings, workspace):
    """The original's scripts used it as one (any workspace token was admin without ADMIN_TOKEN)."""
    settings.ADMIN_TOKEN, settings.MOLECULE_ENABLE_TEST_TOKENS = ADMIN, True
    token = client.get(f"/admin/workspaces/{workspace.id}/test-token", **bearer(ADMIN)).json()["auth_token"]

    assert client.get("/workspaces", **bearer(token)).content == INVALID_ADMIN
    assert client.get(f"/workspaces/{workspace.id}/tokens", **bearer(token)).status_code == 200


def test_test_token_each_call_mints_an_additional_token(client, settings, workspace):
    settings.DEV_MODE = True
    first = client.get(f"/admin/workspaces/{workspace.id}/test-token").json()["auth_token"]
    second = client.get(f"/admin/workspaces/{workspace.id}/test-token").json()["auth_token"]

    assert first != second
    assert WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True).count() == 2
    for token in (first, second):
        assert client.get(f"/workspaces/{workspace.id}/tokens", **bearer(token)).status_code == 200


def test_test_token_is_404_in_production(client, settings, workspace):
    settings.IS_PRODUCTION = True

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token")

    assert response.status_code == 404
    assert response.content == b'{"error":"not found"}'
    assert not WorkspaceAuthToken.objects.exists()


def test_test_token_production_hides_route_even_with_admin_token(client, settings, workspace):
    settings.IS_PRODUCTION = True
    settings.ADMIN_TOKEN = ADMIN

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token", **bearer(ADMIN))

    assert response.status_code == 404
    assert response.content == b'{"error":"not found"}'


def test_test_token_enabled_in_production_by_flag(client, settings, workspace):
    settings.IS_PRODUCTION = True
    settings.ADMIN_TOKEN = ADMIN
    settings.MOLECULE_ENABLE_TEST_TOKENS = True

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token", **bearer(ADMIN))

    assert response.status_code == 200
    assert response.json()["workspace_id"] == str(workspace.id)


def test_test_token_requires_admin_token_when_set(client, settings, workspace):
    settings.ADMIN_TOKEN, settings.MOLECULE_ENABLE_TEST_TOKENS = ADMIN, True

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token")

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED
    assert not WorkspaceAuthToken.objects.exists()


def test_test_token_rejects_workspace_token_when_admin_token_set(client, settings, workspace):
    settings.ADMIN_TOKEN, settings.MOLECULE_ENABLE_TEST_TOKENS = ADMIN, True
    token = mint(workspace)

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token", **bearer(token))

    assert response.status_code == 401
    assert response.content == ADMIN_REQUIRED


@pytest.mark.parametrize("header", [f"Bearer {ADMIN}", ADMIN])
def test_test_token_accepts_admin_token_with_or_without_bearer_prefix(client, settings, workspace, header):
    settings.ADMIN_TOKEN, settings.MOLECULE_ENABLE_TEST_TOKENS = ADMIN, True

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token", HTTP_AUTHORIZATION=header)

    assert response.status_code == 200


def test_test_token_unknown_workspace_is_404(client, settings):
    settings.DEV_MODE = True
    response = client.get(f"/admin/workspaces/{uuid.uuid4()}/test-token")

    assert response.status_code == 404
    assert response.content == b'{"error":"workspace not found"}'


def test_test_token_works_for_removed_workspace(client, settings, workspace):
    settings.DEV_MODE = True
    Workspace.objects.filter(pk=workspace.pk).update(status=WorkspaceStatus.REMOVED)

    response = client.get(f"/admin/workspaces/{workspace.id}/test-token")

    assert response.status_code == 200
    assert response.json()["workspace_id"] == str(workspace.id)
    assert WorkspaceAuthToken.objects.filter(workspace=workspace, revoked_at__isnull=True).count() == 1


# --- staff_session called directly (outside DRF, where the Django user is intact) -------------------

def test_staff_session_accepts_active_staff_user_on_safe_method(operator):
    request = RequestFactory().get("/")
    request.user = operator

    assert auth.staff_session(request) is True


def test_staff_session_rejects_non_staff_and_anonymous(django_user_model):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/")
    request.user = django_user_model.objects.create_user("viewer", "v@example.com", "correct horse battery")
    assert auth.staff_session(request) is False
    request.user = AnonymousUser()
    assert auth.staff_session(request) is False


def test_staff_session_unsafe_method_without_csrf_is_403(operator):
    request = RequestFactory().post("/")
    request.user = operator
    request._dont_enforce_csrf_checks = False

    error = _raises(auth.staff_session, request)

    assert error.status_code == 403
    assert str(error.detail["error"]).startswith("CSRF Failed")
