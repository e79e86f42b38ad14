"""Every route of the URL map × every method × {no credentials, another workspace's token}.

The auth matrix of docs/security.md, asserted for the whole API: outside dev mode, a request
without credentials gets a 2xx only from the routes the spec calls open, and another
workspace's token reaches nothing more (except ``PUT /canvas/viewport``, which any valid bearer
may write). HEAD is held to GET's rule — it once answered 200 with the real Content-Length
where GET answered 401. New routes are covered as soon as they are in the URL map.
"""

from __future__ import annotations

import json
import uuid

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from activity.models import ActivityLog, StructureEvent
from memory.models import AgentMemory
from registry.models import WorkspaceAuthToken
from registry.tokens import token_mint
from secrets_app.models import GlobalSecret, WorkspaceSecret
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

METHODS = ("GET", "HEAD", "POST", "PATCH", "PUT", "DELETE")
ADMIN = "permissions-tests-admin-token"

# (route, method) pairs anyone may call (spec §4 "Open", less what is dev-mode only here).
OPEN = {
    ("health", "GET"),
    ("metrics", "GET"),
    ("workspaces/<str:workspace_id>", "GET"),
    ("canvas/viewport", "GET"),
    ("registry/check-access", "POST"),
    # the plugin registry's names and descriptions, and the install schemes (spec §4, §18)
    ("plugins", "GET"),
    ("plugins/sources", "GET"),
    # the canvas's login page: the form, and its answer to a failed attempt (200 with the error)
    ("accounts/login/", "GET"),
    ("accounts/login/", "POST"),
    # the API's OpenAPI description and its two readers: public in every mode (docs/security.md)
    ("api/schema/", "GET"),
    ("api/docs/", "GET"),
    ("api/redoc/", "GET"),
}
# …and what any valid workspace token may call beyond those, whatever workspace it belongs to.
# POST /otlp/v1/traces stores spans under the token's own workspace, whichever it is.
ANY_WORKSPACE_TOKEN = {("canvas/viewport", "PUT"), ("otlp/v1/traces", "POST")}


def _routes(resolver=None, prefix=""):
    for pattern in (resolver or get_resolver()).url_patterns:
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


ROUTES = sorted({route for route in _routes() if not route.startswith("django-admin/")})


def _allowed(route: str, method: str, principal: str) -> bool:
    method = "GET" if method == "HEAD" else method
    return (route, method) in OPEN or (principal == "other_token" and (route, method) in ANY_WORKSPACE_TOKEN)


def _path(route: str, victim: Workspace) -> str:
    concrete = route.replace("<str:workspace_id>", str(victim.id)).replace("<path:file_path>", "config.yaml")
    while "<" in concrete:
        start, end = concrete.index("<"), concrete.index(">")
        concrete = concrete[:start] + str(uuid.uuid4()) + concrete[end + 1:]
    return "/" + concrete


def _body(route: str, victim: Workspace) -> str:
    """A body the route would accept from the right caller, so only auth can refuse it (the
    registry views check auth after binding the body)."""
    bodies = {
        "registry/register": {"id": str(victim.id), "url": "http://localhost:9", "agent_card": {}},
        "registry/heartbeat": {"workspace_id": str(victim.id), "active_tasks": 0},
        "registry/update-card": {"workspace_id": str(victim.id), "agent_card": {"name": "pwned"}},
        "registry/check-access": {"caller_id": str(victim.id), "target_id": str(victim.id)},
        "canvas/viewport": {"x": 1, "y": 2, "zoom": 1},
        "workspaces/<str:workspace_id>/a2a": {"method": "message/send", "params": {
            "message": {"role": "user", "parts": [{"kind": "text", "text": "hi"}]}}},
    }
    return json.dumps(bodies.get(route, {"name": "pwned", "parent_id": None, "content": "x", "value": "x"}))


@pytest.fixture
def victim(settings):
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = ADMIN
    settings.IS_PRODUCTION = False
    settings.MOLECULE_ENABLE_TEST_TOKENS = False
    workspace = Workspace.objects.create(name="Victim", status=WorkspaceStatus.ONLINE, url="http://localhost:9")
    token_mint(workspace=workspace)
    WorkspaceSecret.objects.create(workspace=workspace, key="API_KEY", encrypted_value=b"x")
    GlobalSecret.objects.create(key="GLOBAL_KEY", encrypted_value=b"x")
    return workspace


def _state(victim: Workspace) -> tuple:
    row = Workspace.objects.filter(pk=victim.pk).values().get()
    row.pop("updated_at")
    return (row, WorkspaceAuthToken.objects.filter(revoked_at__isnull=True).count(),
            Workspace.objects.count(), WorkspaceSecret.objects.count(), GlobalSecret.objects.count(),
            AgentMemory.objects.count(), ActivityLog.objects.count())


@pytest.mark.parametrize("principal", ["no_credentials", "other_token"])
@pytest.mark.parametrize("route", ROUTES)
def test_no_route_answers_2xx_to_whom_the_matrix_refuses(client, victim, route, principal):
    headers = {}
    if principal == "other_token":
        other = Workspace.objects.create(name="Other", status=WorkspaceStatus.ONLINE)
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token_mint(workspace=other)[1]}"
    before = _state(victim)
    events_before = StructureEvent.objects.count()
    violations = []
    for method in METHODS:
        response = client.generic(method, _path(route, victim), _body(route, victim),
                                  content_type="application/json", **headers)
        if 200 <= response.status_code < 300 and not _allowed(route, method, principal):
            violations.append(f"{method} {route} → {response.status_code} {response.content[:120]!r}")
        if method == "HEAD" and not _allowed(route, "GET", principal):
            get = client.get(_path(route, victim), **headers)
            # same refusal as GET: status and length (no Content-Length oracle)
            assert (response.status_code, response.get("Content-Length")) == (get.status_code, get.get("Content-Length"))
    assert violations == []
    refused_everything = not any(_allowed(route, method, principal) for method in METHODS)
    if refused_everything:
        assert _state(victim) == before, "a refused request changed data"
        assert StructureEvent.objects.count() == events_before


def test_the_matrix_covers_the_routes_it_names():
    """The allow-lists name real routes (a renamed route must not silently leave the matrix)."""
    assert {route for route, _ in OPEN | ANY_WORKSPACE_TOKEN} <= set(ROUTES)
    assert len(ROUTES) > 50


@pytest.mark.parametrize("route", sorted({route for route, _ in OPEN}))
def test_open_routes_still_answer_anonymously(client, victim, route):
    method = next(m for r, m in OPEN if r == route)
    response = client.generic(method, _path(route, victim), _body(route, victim), content_type="application/json")
    assert 200 <= response.status_code < 300, response.content
    if route == "registry/check-access":
        assert response.json() == {"allowed": True}
    if route == "workspaces/<str:workspace_id>":
        assert response.json()["name"] == "Victim"


def test_head_of_an_open_route_is_get_without_the_body(client, victim):
    get, head = client.get(f"/workspaces/{victim.id}"), client.head(f"/workspaces/{victim.id}")
    assert (head.status_code, head.content) == (200, b"")
    assert head["Content-Length"] == get["Content-Length"] == str(len(get.content))


def test_options_and_odd_methods_are_gins_404(client, victim):
    for method in ("OPTIONS", "TRACE", "PROPFIND"):
        response = client.generic(method, f"/workspaces/{victim.id}/secrets")
        assert (response.status_code, response.content) == (404, b"404 page not found"), method
