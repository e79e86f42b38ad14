"""Global middleware (spec §1): CORS, the per-IP rate limiter and the security headers."""

import logging
import time
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY

from molecule_site import middleware

# A fixed clock 45.5 s into a window, so no test straddles a window boundary: reset = 15 s.
NOW = 60 * 28_333_333 + 45.5
WINDOW = 28_333_333


@pytest.fixture
def limited(settings, redis_client, monkeypatch):
    """The limiter switched on (dev mode off) with a small limit, on a frozen clock."""
    settings.DEV_MODE = False
    settings.RATE_LIMIT = 3
    monkeypatch.setattr(middleware, "time", SimpleNamespace(time=lambda: NOW, monotonic=time.monotonic))
    return redis_client


@pytest.mark.django_db
def test_health_carries_rate_limit_headers(client, limited):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.content == b'{"status":"ok"}'
    assert response["X-RateLimit-Limit"] == "3"
    assert response["X-RateLimit-Remaining"] == "2"
    assert response["X-RateLimit-Reset"] == "15"


@pytest.mark.django_db
def test_remaining_counts_down_per_request(client, limited):
    remaining = [client.get("/health")["X-RateLimit-Remaining"] for _ in range(3)]
    assert remaining == ["2", "1", "0"]


@pytest.mark.django_db
def test_request_over_the_limit_gets_429_with_compact_body(client, limited):
    for _ in range(3):
        assert client.get("/health").status_code == 200
    response = client.get("/health")
    assert response.status_code == 429
    assert response.content == b'{"error":"rate limit exceeded","retry_after":15}'
    assert response["Content-Type"] == "application/json; charset=utf-8"
    assert response["Retry-After"] == "15"
    assert response["X-RateLimit-Limit"] == "3"
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["X-RateLimit-Reset"] == "15"


@pytest.mark.django_db
def test_metrics_endpoint_is_rate_limited_too(client, limited, settings):
    settings.RATE_LIMIT = 1
    assert client.get("/metrics").status_code == 200
    response = client.get("/metrics")
    assert response.status_code == 429
    assert response.content == b'{"error":"rate limit exceeded","retry_after":15}'


@pytest.mark.django_db
def test_429_carries_security_and_cors_headers_and_is_counted(client, limited, settings):
    settings.RATE_LIMIT = 1
    origin = settings.CORS_ORIGINS[0]
    labels = {"method": "GET", "path": "unmatched", "status": "429"}
    before = REGISTRY.get_sample_value("molecule_http_requests_total", labels) or 0
    client.get("/health", HTTP_ORIGIN=origin)
    response = client.get("/health", HTTP_ORIGIN=origin)
    assert response.status_code == 429
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == "default-src 'self'"
    assert response["Access-Control-Allow-Origin"] == origin
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert REGISTRY.get_sample_value("molecule_http_requests_total", labels) == before + 1


@pytest.mark.django_db
def test_each_client_ip_has_its_own_bucket(client, limited, settings):
    settings.RATE_LIMIT = 1
    assert client.get("/health", REMOTE_ADDR="10.0.0.1").status_code == 200
    assert client.get("/health", REMOTE_ADDR="10.0.0.1").status_code == 429
    other = client.get("/health", REMOTE_ADDR="10.0.0.2")
    assert other.status_code == 200
    assert other["X-RateLimit-Remaining"] == "0"
    assert limited.get(f"ratelimit:10.0.0.1:{WINDOW}") == b"2"
    assert limited.get(f"ratelimit:10.0.0.2:{WINDOW}") == b"1"
    assert 0 < limited.ttl(f"ratelimit:10.0.0.1:{WINDOW}") <= 60


@pytest.mark.django_db
def test_x_forwarded_for_is_ignored(client, limited, settings):
    settings.RATE_LIMIT = 1
    first = client.get("/health", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.1")
    assert first.status_code == 200
    # A new spoofed address does not buy a fresh bucket: the TCP peer is what counts.
    second = client.get("/health", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="10.9.9.2")
    assert second.status_code == 429
    assert sorted(limited.keys("ratelimit:*")) == [f"ratelimit:10.0.0.1:{WINDOW}".encode()]


@pytest.mark.django_db
def test_a_new_window_starts_a_new_count(client, limited, settings, monkeypatch):
    settings.RATE_LIMIT = 1
    client.get("/health")
    assert client.get("/health").status_code == 429
    monkeypatch.setattr(middleware, "time", SimpleNamespace(time=lambda: NOW + 15, monotonic=time.monotonic))
    response = client.get("/health")
    assert response.status_code == 200
    assert response["X-RateLimit-Remaining"] == "0"
    assert response["X-RateLimit-Reset"] == "60"


@pytest.mark.django_db
def test_dev_mode_bypasses_the_limiter(client, limited, settings):
    settings.DEV_MODE = True
    settings.RATE_LIMIT = 1
    for _ in range(3):
        response = client.get("/health")
        assert response.status_code == 200
        assert response.content == b'{"status":"ok"}'
        assert response["X-RateLimit-Limit"] == "unlimited"
        assert "X-RateLimit-Remaining" not in response
        assert "X-RateLimit-Reset" not in response
    assert limited.keys("ratelimit:*") == []


@pytest.mark.django_db
def test_unreachable_redis_lets_requests_through(client, limited, settings, monkeypatch, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.RATE_LIMIT = 1
    monkeypatch.setattr(middleware, "_last_warning", float("-inf"))
    with caplog.at_level(logging.WARNING, logger="molecule_site.middleware"):
        responses = [client.get("/health") for _ in range(3)]
    assert [r.status_code for r in responses] == [200, 200, 200]
    assert responses[0]["X-RateLimit-Limit"] == "1"
    assert responses[0]["X-RateLimit-Remaining"] == "1"
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # one warning per interval, not one per request


@pytest.mark.django_db
def test_security_headers_on_every_response(client):
    for path in ("/health", "/no/such/route"):
        response = client.get(path)
        assert response["X-Content-Type-Options"] == "nosniff"
        assert response["X-Frame-Options"] == "DENY"
        assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
        assert response["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert response["Permissions-Policy"] == "camera=(), microphone=(), geolocation=()"


@pytest.mark.django_db
def test_api_routes_get_strict_csp_and_pages_the_relaxed_one(client):
    assert client.get("/health")["Content-Security-Policy"] == "default-src 'self'"
    assert client.get("/admin/workspaces/x/test-token")["Content-Security-Policy"] == "default-src 'self'"
    page = client.get("/django-admin/login/")
    assert page.status_code == 200
    assert page["Content-Security-Policy"] == (
        "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; connect-src 'self' ws: wss:"
    )
    assert page["X-Frame-Options"] == "DENY"


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/docs/", "/api/redoc/"])
def test_the_openapi_readers_get_the_page_policy_with_blob_workers(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    assert policy.startswith("default-src 'self'; script-src 'self' 'unsafe-inline';")
    assert policy.endswith("; worker-src 'self' blob:")


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/", "/accounts/login/"])
def test_the_canvas_and_its_login_run_only_our_own_scripts(client, path):
    policy = client.get(path)["Content-Security-Policy"]
    assert "script-src 'self';" in policy and "unsafe-eval" not in policy
    assert "'unsafe-inline'" not in policy.split("script-src", 1)[1].split(";", 1)[0]
    assert "frame-ancestors 'none'" in policy and "form-action 'self'" in policy


def test_cors_preflight_from_allowed_origin_gets_allow_headers(client, settings):
    origin = settings.CORS_ORIGINS[0]
    response = client.options(
        "/workspaces",
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type,x-workspace-id,authorization",
    )
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == origin
    assert response["Access-Control-Allow-Credentials"] == "true"
    assert response["Access-Control-Allow-Headers"] == "Origin, Content-Type, X-Workspace-ID, Authorization"
    assert response["Access-Control-Allow-Methods"] == "GET, POST, PUT, PATCH, DELETE, OPTIONS"


def test_cors_preflight_from_other_origin_gets_no_allow_headers(client):
    response = client.options(
        "/workspaces",
        HTTP_ORIGIN="http://evil.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-workspace-id",
    )
    cors_headers = [name for name in response.headers if name.lower().startswith("access-control-")]
    assert cors_headers == []


def test_cors_origins_setting_feeds_django_cors_headers(settings):
    assert settings.CORS_ALLOWED_ORIGINS == settings.CORS_ORIGINS
