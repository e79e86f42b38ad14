import pytest


@pytest.mark.django_db
def test_health_is_compact_json(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    assert response["Content-Type"] == "application/json; charset=utf-8"


@pytest.mark.django_db
def test_unknown_route_is_gin_style_plain_404(client):
    response = client.get("/no/such/route")
    assert response.status_code == 404
    assert response.content == b"404 page not found"


@pytest.mark.django_db
def test_metrics_exposes_request_counters_by_route_template(client):
    client.get("/health")
    client.get("/no/such/route")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    assert 'molecule_http_requests_total{method="GET",path="/health",status="200"}' in body
    assert 'molecule_http_requests_total{method="GET",path="unmatched",status="404"}' in body
    assert 'molecule_http_request_duration_seconds_total{method="GET",path="/health",status="200"}' in body
    assert "molecule_websocket_connections_active 0.0" in body
    assert 'molecule_http_request_latency_seconds_bucket{le="0.005",path="/health"}' in body


def test_route_template_uses_colon_parameters(rf):
    from django.urls import ResolverMatch

    from molecule_site.metrics import route_template

    request = rf.get("/x")
    request.resolver_match = ResolverMatch(lambda r: None, (), {}, route="workspaces/<uuid:workspace_id>/a2a")
    assert route_template(request) == "/workspaces/:workspace_id/a2a"


# --- bodies PostgreSQL cannot store (found by the fuzz run, test_openapi_fuzz.py) ---------------------

ADMIN = "wire-tests-admin-token"


@pytest.fixture
def admin(settings, redis_client):
    settings.DEV_MODE = False
    settings.ADMIN_TOKEN = ADMIN
    return {"HTTP_AUTHORIZATION": f"Bearer {ADMIN}"}


@pytest.mark.django_db
def test_a_nul_character_in_a_drf_body_is_the_routes_bad_body_not_a_500(client, admin):
    """``POST /workspaces`` with ``"template": "x\\u0000"`` was Django's HTML 500 page."""
    from workspaces.models import Workspace

    response = client.post("/workspaces", '{"name": "n", "external": true, "template": "x\\u0000"}',
                           content_type="application/json", **admin)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid workspace payload"}')
    assert not Workspace.objects.exists()


@pytest.mark.django_db
def test_a_nul_character_in_a_key_is_refused_too(client, admin):
    from workspaces.models import Workspace

    workspace = Workspace.objects.create(name="W")
    response = client.patch(f"/workspaces/{workspace.id}/config", '{"a\\u0000": {"b": 1}}',
                            content_type="application/json", **admin)
    assert (response.status_code, response.content) == (400, b'{"error":"invalid JSON"}')


@pytest.mark.django_db
def test_an_unpaired_surrogate_in_a_drf_body_is_stored_as_the_replacement_character(client, admin):
    response = client.post("/workspaces", '{"name": "odd \\ud83d name", "external": true}',
                           content_type="application/json", **admin)
    assert response.status_code == 201, response.content
    assert client.get(f"/workspaces/{response.json()['id']}").json()["name"] == "odd \ufffd name"


def test_storable_json_leaves_bodies_without_escapes_alone():
    from molecule_site.wire import storable_json

    data = {"a": ["b"]}
    assert storable_json(data, b'{"a": ["b"]}') is data
    assert storable_json({"k": "\ud800", "l": ["x\udc00"]}, b'{"k": "\\ud800"}') == {"k": "\ufffd", "l": ["x\ufffd"]}
    with pytest.raises(ValueError):
        storable_json({"k": ["\x00"]}, b'{"k": ["\\u0000"]}')


@pytest.mark.django_db
@pytest.mark.parametrize("accept,body,content_type", [
    ("application/json", b'{"error":"internal server error"}', "application/json; charset=utf-8"),
    ("*/*", b'{"error":"internal server error"}', "application/json; charset=utf-8"),
])
def test_an_uncaught_error_is_the_apis_error_shape_and_leaks_nothing(admin, monkeypatch, accept, body, content_type):
    """A bug in a view (the fuzz run's ``initial_memories`` scope that was no string) answered
    Django's HTML page to API clients. The cause stays in the log."""
    from django.test import Client

    from workspaces import services

    def broken(**_kwargs):
        raise RuntimeError("secret detail of the bug")

    monkeypatch.setattr(services, "workspace_create", broken)
    client = Client(raise_request_exception=False)
    response = client.post("/workspaces", '{"name": "n", "external": true}', content_type="application/json",
                           HTTP_ACCEPT=accept, **admin)
    assert response.status_code == 500
    assert response["Content-Type"] == content_type
    assert response.content == body


def test_a_browser_navigating_to_a_broken_page_gets_the_html_page(rf):
    from molecule_site.wire import handler500

    response = handler500(rf.get("/canvas", HTTP_ACCEPT="text/html,application/xhtml+xml"))
    assert (response.status_code, response["Content-Type"]) == (500, "text/html; charset=utf-8")
    assert b"<h1>Server Error (500)</h1>" in response.content
