"""The generated OpenAPI description (``/api/schema/``) and its readers (``/api/docs/``, ``/api/redoc/``).

The schema must name every route of the API with the methods it serves and the auth each
method really applies (``auth_by_method``); a route added to the URL map without a description
fails here. The fuzz run against a live platform is ``test_openapi_fuzz.py`` (``-m fuzz``).
"""

from __future__ import annotations

import json
import re

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework.views import APIView

from molecule_site.api import Api
from registry.auth import AdminAuth, CanvasOrBearer, WorkspaceAuth

pytestmark = pytest.mark.django_db

# What is not the platform API: the operator admin, the canvas pages for people (their
# include), static files, and the schema and documentation pages themselves.
NOT_API_PREFIXES = ("django-admin/", "static/", "api/")
CANVAS_URLCONF = "workspaces.canvas.urls"
METHODS = ("get", "post", "put", "patch", "delete")


def _api_routes(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            if getattr(pattern.urlconf_name, "__name__", pattern.urlconf_name) == CANVAS_URLCONF:
                continue
            yield from _api_routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            if not route.startswith(NOT_API_PREFIXES):
                yield route, pattern.callback


def _openapi_path(route: str) -> str:
    return "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)


def _served_methods(callback) -> set[str] | None:
    """The methods a DRF ``Api`` route serves (None for a plain Django view)."""
    cls = getattr(callback, "cls", None)
    if cls is None or not issubclass(cls, APIView):
        return None
    if issubclass(cls, Api):
        return {method.lower() for method in cls.auth_by_method}
    return {method for method in METHODS if hasattr(cls, method)}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from django.test import Client

    with django_db_blocker.unblock():
        response = Client().get("/api/schema/?format=json")
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


ROUTES = sorted(_api_routes(), key=lambda pair: pair[0])


def test_the_walk_sees_the_whole_api():
    routes = {route for route, _ in ROUTES}
    assert len(routes) > 60
    assert {"health", "registry/heartbeat", "workspaces/<str:workspace_id>/a2a", "canvas/viewport"} <= routes
    assert not any(route.startswith(("accounts/", "canvas/cards")) or route == "" for route in routes)


@pytest.mark.parametrize("route,callback", ROUTES, ids=[route for route, _ in ROUTES])
def test_every_api_route_is_in_the_schema_with_its_methods(schema, route, callback):
    path = _openapi_path(route)
    assert path in schema["paths"], f"{path} is missing from /api/schema/ (molecule_site/openapi.py)"
    described = {method for method in schema["paths"][path] if method in METHODS}
    served = _served_methods(callback)
    if served is not None:
        assert described == served
    else:
        assert described, f"{path}: a plain view with no method described"
    for method in described:
        operation = schema["paths"][path][method]
        assert operation["responses"]["default"] == {"$ref": "#/components/responses/Error"}
        assert "404" in operation["responses"]
        parameters = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert parameters == set(re.findall(r"{(\w+)}", path)), (path, method)


def test_security_follows_auth_by_method(schema):
    """One route, three rules: GET open, PATCH the workspace's token, DELETE the admin's."""
    item = schema["paths"]["/workspaces/{workspace_id}"]
    assert item["get"]["security"] == [{}]
    assert {"workspaceToken": []} in item["patch"]["security"]
    assert item["delete"]["security"] == [{"adminToken": []}, {"operatorSession": []}]
    assert {"adminToken": []} not in schema["paths"]["/health"]["get"]["security"]
    assert "401" in item["delete"]["responses"] and "401" not in item["get"]["responses"]
    schemes = schema["components"]["securitySchemes"]
    assert schemes["adminToken"] == {**schemes["adminToken"], "type": "http", "scheme": "bearer"}
    assert schemes["workspaceToken"]["scheme"] == "bearer"


@pytest.mark.parametrize("route,callback", ROUTES, ids=[route for route, _ in ROUTES])
def test_each_operations_security_is_its_methods_permission(schema, route, callback):
    cls = getattr(callback, "cls", None)
    if cls is None or not issubclass(cls, Api):
        return
    expected = {
        AdminAuth: [{"adminToken": []}, {"operatorSession": []}],
        WorkspaceAuth: [{"adminToken": []}, {"workspaceToken": []}, {"operatorSession": []}],
        CanvasOrBearer: [{"adminToken": []}, {"workspaceToken": []}, {"operatorSession": []}],
    }
    for method, permissions in cls.auth_by_method.items():
        security = schema["paths"][_openapi_path(route)][method.lower()]["security"]
        if not permissions:
            assert security == [{}], (route, method)
        else:
            assert security == expected[permissions[0]], (route, method)


def test_error_bodies_are_described_as_the_wire_has_them(schema):
    error = schema["components"]["schemas"]["Error"]
    assert error["required"] == ["error"] and error["properties"]["error"] == {"type": "string"}
    assert schema["components"]["responses"]["Error"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"}


def test_plain_hot_path_views_are_described(schema):
    heartbeat = schema["paths"]["/registry/heartbeat"]["post"]
    body = heartbeat["requestBody"]["content"]["application/json"]["schema"]
    assert body["required"] == ["workspace_id"] and body["properties"]["error_rate"] == {"type": "number"}
    assert heartbeat["security"] == [{"workspaceToken": []}]
    assert schema["paths"]["/health"]["get"]["responses"]["200"]["content"]["application/json"]["schema"][
        "properties"]["status"] == {"enum": ["ok"]}
    a2a = schema["paths"]["/workspaces/{workspace_id}/a2a"]["post"]
    assert {"X-Workspace-ID", "workspace_id"} <= {p["name"] for p in a2a["parameters"]}
    assert "text/event-stream" in a2a["responses"]["200"]["content"]


def test_operation_ids_are_unique(schema):
    ids = [op["operationId"] for item in schema["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))


def test_the_schema_is_served_as_yaml_by_default_and_json_on_request(client):
    yaml_response = client.get("/api/schema/")
    assert yaml_response.status_code == 200
    assert yaml_response.content.startswith(b"openapi: 3.")
    assert client.get("/api/schema/?format=json").json()["info"]["title"] == "Molecule platform API"


@pytest.mark.parametrize("reader,asset", [("/api/docs/", "swagger-ui-bundle.js"), ("/api/redoc/", "redoc.standalone.js")])
def test_the_readers_load_their_assets_from_our_static_files(client, reader, asset):
    response = client.get(reader)
    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/schema/" in html
    sources = re.findall(r'src="([^"]+)"', html)
    local = [src for src in sources if src.startswith("/static/drf_spectacular_sidecar/")]
    assert any(src.endswith(asset) for src in local), sources
    assert not [src for src in sources if src.startswith(("http://", "https://", "//"))], sources
    assert not re.findall(r'(?:src|href)="(?:https?:)?//', html), "the page loads something from elsewhere"
    served = client.get(next(src for src in local if src.endswith(asset)))
    assert served.status_code == 200
    assert b"".join(served.streaming_content if served.streaming else [served.content])[:1000]


def test_every_description_in_the_tables_names_a_real_operation(schema):
    """A renamed route must not silently lose its body and answers (molecule_site/openapi.py)."""
    from molecule_site.openapi import OPERATIONS, PLAIN_ROUTES

    described = {(method.upper(), path) for path, item in schema["paths"].items() for method in item if method in METHODS}
    assert set(OPERATIONS) - described == set()
    assert {(method, path) for path, methods in PLAIN_ROUTES.items() for method in methods} <= described
