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
