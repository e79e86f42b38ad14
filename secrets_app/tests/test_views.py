"""Secret routes on the wire (spec §12): bodies, status codes, exact errors, values never listed."""

import uuid

import pytest
from django.db import DatabaseError

from registry import selectors as registry_selectors
from registry.tokens import token_mint
from secrets_app.crypto import decrypt, encrypt
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import Workspace

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("secure")]

VALUE = "sk-live-view-plaintext-5150"
GLOBAL_VALUE = "sk-live-global-plaintext-8080"
OTHER_KEY = bytes(range(32))
INVALID_BODY = b'{"error":"invalid request body"}'
BAD_ID = b'{"error":"invalid workspace ID"}'


@pytest.fixture
def workspace():
    return Workspace.objects.create(name="Dev", status="online")


def _own(workspace, key, value, crypto_key=None):
    stored, version = encrypt(value, crypto_key)
    return WorkspaceSecret.objects.create(workspace=workspace, key=key, encrypted_value=stored, encryption_version=version)


def _global(key, value, crypto_key=None):
    stored, version = encrypt(value, crypto_key)
    return GlobalSecret.objects.create(key=key, encrypted_value=stored, encryption_version=version)


def _value(secret) -> str:
    return decrypt(secret.encrypted_value, secret.encryption_version)


def _error(response, status, message, **extra):
    assert response.status_code == status, response.content
    assert response.json() == {"error": message, **extra}


# --- auth (one check per auth class and route) ------------------------------------------------------------

WORKSPACE_ROUTES = [
    ("GET", "/workspaces/{id}/secrets"), ("POST", "/workspaces/{id}/secrets"), ("PUT", "/workspaces/{id}/secrets"),
    ("GET", "/workspaces/{id}/secrets/values"), ("DELETE", "/workspaces/{id}/secrets/K"),
    ("GET", "/workspaces/{id}/model"), ("PUT", "/workspaces/{id}/model"),
]
ADMIN_ROUTES = [
    ("GET", "/settings/secrets"), ("PUT", "/settings/secrets"), ("POST", "/settings/secrets"),
    ("DELETE", "/settings/secrets/K"), ("GET", "/admin/secrets"), ("POST", "/admin/secrets"),
    ("DELETE", "/admin/secrets/K"),
]


@pytest.mark.parametrize("method, path", WORKSPACE_ROUTES)
def test_workspace_routes_need_a_token_for_that_workspace(api, workspace, method, path):
    url = path.format(id=workspace.id)
    _error(api(method, url, token=None), 401, "missing workspace auth token")
    _error(api(method, url, token="wrong"), 401, "invalid workspace auth token")
    _, other_token = token_mint(workspace=Workspace.objects.create(name="Other"))
    _error(api(method, url, token=other_token), 401, "invalid workspace auth token")


@pytest.mark.parametrize("method, path", WORKSPACE_ROUTES[:1] + WORKSPACE_ROUTES[3:4] + WORKSPACE_ROUTES[5:6])
def test_workspace_routes_accept_the_workspace_own_token(api, workspace, method, path):
    _, token = token_mint(workspace=workspace)
    assert api(method, path.format(id=workspace.id), token=token).status_code == 200


@pytest.mark.parametrize("method, path", ADMIN_ROUTES)
def test_global_routes_need_the_admin_token(api, workspace, method, path):
    _error(api(method, path, token=None), 401, "admin auth required")
    _error(api(method, path, token="wrong"), 401, "invalid admin auth token")
    _, workspace_token = token_mint(workspace=workspace)
    _error(api(method, path, token=workspace_token), 401, "invalid admin auth token")


@pytest.mark.parametrize(
    "method, path",
    [("GET", "/workspaces/nope/secrets"), ("POST", "/workspaces/nope/secrets"), ("PUT", "/workspaces/nope/secrets"),
     ("GET", "/workspaces/nope/secrets/values"), ("DELETE", "/workspaces/nope/secrets/K"),
     ("GET", "/workspaces/nope/model"), ("PUT", "/workspaces/nope/model")],
)
def test_workspace_routes_reject_a_non_uuid_id(api, method, path):
    body = {"key": "K", "value": VALUE, "model": "m"} if method in {"POST", "PUT"} else None
    response = api(method, path, body)
    assert (response.status_code, response.content) == (400, BAD_ID)


# --- GET /workspaces/:id/secrets ---------------------------------------------------------------------------

def test_list_shows_metadata_and_scope_but_never_a_value(api, workspace):
    own = _own(workspace, "OPENAI_API_KEY", VALUE)
    _own(workspace, "OVERRIDDEN", VALUE)
    _global("OVERRIDDEN", GLOBAL_VALUE)
    inherited = _global("ANTHROPIC_API_KEY", GLOBAL_VALUE)

    response = api("GET", f"/workspaces/{workspace.id}/secrets")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json; charset=utf-8"
    raw = response.content.decode()
    assert VALUE not in raw and GLOBAL_VALUE not in raw
    assert '"has_value":true' in raw  # compact JSON
    body = response.json()
    assert [(item["key"], item["scope"]) for item in body] == [
        ("OPENAI_API_KEY", "workspace"), ("OVERRIDDEN", "workspace"), ("ANTHROPIC_API_KEY", "global"),
    ]
    assert body[0] == {
        "key": "OPENAI_API_KEY", "has_value": True, "scope": "workspace",
        "created_at": own.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": own.updated_at.isoformat().replace("+00:00", "Z"),
    }
    assert body[2]["created_at"] == inherited.created_at.isoformat().replace("+00:00", "Z")


def test_list_without_secrets_is_an_empty_list(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/secrets")
    assert (response.status_code, response.content) == (200, b"[]")


# --- GET /workspaces/:id/secrets/values -------------------------------------------------------------------

def test_values_are_the_merged_map_with_the_workspace_winning(api, workspace):
    _global("B_SHARED", "global-b")
    _global("A_OVERRIDDEN", "global-a")
    _own(workspace, "A_OVERRIDDEN", "own-a")
    _own(workspace, "C_OWN", "own-c")
    _, token = token_mint(workspace=workspace)

    response = api("GET", f"/workspaces/{workspace.id}/secrets/values", token=token)

    assert response.status_code == 200
    assert response.content == b'{"A_OVERRIDDEN":"own-a","B_SHARED":"global-b","C_OWN":"own-c"}'


def test_values_without_secrets_are_an_empty_map(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/secrets/values")
    assert (response.status_code, response.content) == (200, b"{}")


def test_values_refuse_a_partial_bundle_naming_the_failed_keys(api, workspace):
    _global("GOOD", "g")
    _global("BAD_GLOBAL", "leak-global", OTHER_KEY)
    _own(workspace, "BAD_OWN", "leak-own", OTHER_KEY)
    _own(workspace, "FINE", "fine-value")

    response = api("GET", f"/workspaces/{workspace.id}/secrets/values")

    assert response.status_code == 500
    assert response.content == (
        b'{"error":"one or more secrets failed to decrypt; refusing to return partial bundle",'
        b'"failed_keys":["global:BAD_GLOBAL","workspace:BAD_OWN"]}'
    )
    assert b"fine-value" not in response.content and b'"g"' not in response.content


def test_values_recheck_fails_closed_on_a_database_error(api, workspace, monkeypatch):
    _, token = token_mint(workspace=workspace)

    def broken(workspace_id):
        raise DatabaseError("connection lost")

    monkeypatch.setattr(registry_selectors, "workspace_has_live_token", broken)
    _error(api("GET", f"/workspaces/{workspace.id}/secrets/values", token=token), 500, "auth check failed")


# --- POST|PUT /workspaces/:id/secrets ---------------------------------------------------------------------

@pytest.mark.parametrize("method", ["POST", "PUT"])
def test_set_saves_encrypted_and_restarts_the_workspace(
    api, workspace, provisioner, django_capture_on_commit_callbacks, method
):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(method, f"/workspaces/{workspace.id}/secrets", {"key": "OPENAI_API_KEY", "value": VALUE})

    assert (response.status_code, response.content) == (200, b'{"status":"saved","key":"OPENAI_API_KEY"}')
    secret = WorkspaceSecret.objects.get(workspace=workspace, key="OPENAI_API_KEY")
    assert VALUE.encode() not in bytes(secret.encrypted_value) and _value(secret) == VALUE
    assert provisioner.restarts == [[str(workspace.id)]]


def test_set_with_the_workspace_token_and_extra_fields(api, workspace, provisioner):
    _, token = token_mint(workspace=workspace)
    response = api("POST", f"/workspaces/{workspace.id}/secrets", {"key": "K", "value": "v", "extra": 1}, token=token)
    assert response.status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        "{not json", "", "[]", '"text"', {}, {"key": "K"}, {"value": VALUE}, {"key": "", "value": VALUE},
        {"key": "K", "value": ""}, {"key": "K", "value": 5}, {"key": 5, "value": VALUE}, {"key": None, "value": VALUE},
        {"key": "A=B", "value": VALUE}, {"key": "A\u0000B", "value": VALUE},
    ],
)
def test_set_rejects_a_bad_body(api, workspace, provisioner, body):
    response = api("POST", f"/workspaces/{workspace.id}/secrets", body)
    assert (response.status_code, response.content) == (400, INVALID_BODY)
    assert not WorkspaceSecret.objects.exists()
    assert provisioner.restarts == []


def test_set_for_an_unknown_workspace_is_a_404(api, provisioner):
    response = api("POST", f"/workspaces/{uuid.uuid4()}/secrets", {"key": "K", "value": VALUE})
    _error(response, 404, "workspace not found")


# --- DELETE /workspaces/:id/secrets/:key ------------------------------------------------------------------

def test_delete_removes_the_secret_and_restarts(api, workspace, provisioner, django_capture_on_commit_callbacks):
    _own(workspace, "OPENAI_API_KEY", VALUE)
    with django_capture_on_commit_callbacks(execute=True):
        response = api("DELETE", f"/workspaces/{workspace.id}/secrets/OPENAI_API_KEY")
    assert (response.status_code, response.content) == (200, b'{"status":"deleted","key":"OPENAI_API_KEY"}')
    assert not WorkspaceSecret.objects.exists()
    assert provisioner.restarts == [[str(workspace.id)]]


def test_delete_of_a_missing_secret_is_a_404(api, workspace, provisioner):
    _global("ONLY_GLOBAL", GLOBAL_VALUE)
    _error(api("DELETE", f"/workspaces/{workspace.id}/secrets/ONLY_GLOBAL"), 404, "secret not found")
    assert GlobalSecret.objects.exists()
    assert provisioner.restarts == []


def test_delete_reaches_a_key_named_values(api, workspace, provisioner):
    _own(workspace, "values", VALUE)
    response = api("DELETE", f"/workspaces/{workspace.id}/secrets/values")
    assert (response.status_code, response.content) == (200, b'{"status":"deleted","key":"values"}')


# --- GET|PUT /workspaces/:id/model ------------------------------------------------------------------------

def test_model_defaults_when_unset(api, workspace):
    response = api("GET", f"/workspaces/{workspace.id}/model")
    assert (response.status_code, response.content) == (200, b'{"model":"","source":"default"}')


def test_model_put_saves_then_get_reads_it(api, workspace, provisioner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api("PUT", f"/workspaces/{workspace.id}/model", {"model": "anthropic:claude-sonnet"})
    assert (response.status_code, response.content) == (200, b'{"status":"saved","model":"anthropic:claude-sonnet"}')
    assert provisioner.restarts == [[str(workspace.id)]]

    response = api("GET", f"/workspaces/{workspace.id}/model")
    assert response.content == b'{"model":"anthropic:claude-sonnet","source":"workspace_secrets"}'


@pytest.mark.parametrize("body", [{"model": ""}, {}, {"model": None}])
def test_model_put_empty_clears(api, workspace, provisioner, django_capture_on_commit_callbacks, body):
    _own(workspace, "MODEL_PROVIDER", "old-model")
    with django_capture_on_commit_callbacks(execute=True):
        response = api("PUT", f"/workspaces/{workspace.id}/model", body)
    assert (response.status_code, response.content) == (200, b'{"status":"cleared"}')
    assert not WorkspaceSecret.objects.exists()
    assert provisioner.restarts == [[str(workspace.id)]]


@pytest.mark.parametrize("body", ["{not json", "", "[]", {"model": 4}, {"model": ["m"]}])
def test_model_put_rejects_a_bad_body(api, workspace, provisioner, body):
    response = api("PUT", f"/workspaces/{workspace.id}/model", body)
    assert (response.status_code, response.content) == (400, INVALID_BODY)


def test_model_put_for_an_unknown_workspace_is_a_404(api, provisioner):
    _error(api("PUT", f"/workspaces/{uuid.uuid4()}/model", {"model": "m"}), 404, "workspace not found")


def test_model_get_of_an_unreadable_value_is_a_500(api, workspace):
    _own(workspace, "MODEL_PROVIDER", "secret-model", OTHER_KEY)
    response = api("GET", f"/workspaces/{workspace.id}/model")
    _error(response, 500, "failed to decrypt model")
    assert b"secret-model" not in response.content


# --- global: /settings/secrets and /admin/secrets ---------------------------------------------------------

@pytest.mark.parametrize("prefix", ["/settings/secrets", "/admin/secrets"])
def test_global_list_shows_metadata_but_never_a_value(api, prefix):
    secret = _global("OPENAI_API_KEY", GLOBAL_VALUE)
    response = api("GET", prefix)
    assert response.status_code == 200
    assert GLOBAL_VALUE not in response.content.decode()
    stamp = secret.created_at.isoformat().replace("+00:00", "Z")
    updated = secret.updated_at.isoformat().replace("+00:00", "Z")
    assert response.content == (
        f'[{{"key":"OPENAI_API_KEY","has_value":true,"created_at":"{stamp}",'
        f'"updated_at":"{updated}","scope":"global"}}]'
    ).encode()


@pytest.mark.parametrize("prefix", ["/settings/secrets", "/admin/secrets"])
def test_global_list_empty(api, prefix):
    assert api("GET", prefix).content == b"[]"


@pytest.mark.parametrize("method, prefix", [("PUT", "/settings/secrets"), ("POST", "/settings/secrets"), ("POST", "/admin/secrets")])
def test_global_set_saves_and_restarts_inheritors(
    api, workspace, provisioner, django_capture_on_commit_callbacks, method, prefix
):
    overriding = Workspace.objects.create(name="Own", status="online")
    _own(overriding, "SHARED", VALUE)
    Workspace.objects.create(name="Paused", status="paused")
    Workspace.objects.create(name="Removed", status="removed")
    Workspace.objects.create(name="External", status="online", runtime="external")

    with django_capture_on_commit_callbacks(execute=True):
        response = api(method, prefix, {"key": "SHARED", "value": GLOBAL_VALUE})

    assert (response.status_code, response.content) == (200, b'{"status":"saved","key":"SHARED","scope":"global"}')
    secret = GlobalSecret.objects.get(key="SHARED")
    assert GLOBAL_VALUE.encode() not in bytes(secret.encrypted_value) and _value(secret) == GLOBAL_VALUE
    assert provisioner.restarts == [[str(workspace.id)]]


@pytest.mark.parametrize("prefix", ["/settings/secrets", "/admin/secrets"])
@pytest.mark.parametrize(
    "body",
    ["{not json", "", "[]", {"key": "K"}, {"value": "v"}, {"key": "", "value": "v"}, {"key": "K", "value": ""},
     {"key": "K", "value": 1}, {"key": "A=B", "value": "v"}, {"key": "A\u0000", "value": "v"}],
)
def test_global_set_rejects_a_bad_body(api, provisioner, prefix, body):
    response = api("POST", prefix, body)
    assert (response.status_code, response.content) == (400, INVALID_BODY)
    assert not GlobalSecret.objects.exists()


@pytest.mark.parametrize("prefix", ["/settings/secrets", "/admin/secrets"])
def test_global_delete_removes_and_restarts(api, workspace, provisioner, django_capture_on_commit_callbacks, prefix):
    _global("SHARED", GLOBAL_VALUE)
    with django_capture_on_commit_callbacks(execute=True):
        response = api("DELETE", f"{prefix}/SHARED")
    assert (response.status_code, response.content) == (200, b'{"status":"deleted","key":"SHARED","scope":"global"}')
    assert not GlobalSecret.objects.exists()
    assert provisioner.restarts == [[str(workspace.id)]]


@pytest.mark.parametrize("prefix", ["/settings/secrets", "/admin/secrets"])
def test_global_delete_of_a_missing_key_is_a_404(api, provisioner, prefix):
    _error(api("DELETE", f"{prefix}/NOPE"), 404, "secret not found")


def test_admin_secrets_has_no_put(api):
    response = api("PUT", "/admin/secrets", {"key": "K", "value": "v"})
    assert (response.status_code, response.content) == (404, b"404 page not found")
    assert not GlobalSecret.objects.exists()


def test_staff_session_can_manage_global_secrets(operator_client, provisioner):
    response = operator_client.get("/settings/secrets")
    assert response.status_code == 200
