"""Global HTTP middleware of the original's chain (spec §1): rate limiter and security headers.

CORS (item 2) is django-cors-headers, configured in settings. There are no trusted proxies:
the client IP is always ``REMOTE_ADDR`` (the TCP peer) and ``X-Forwarded-For`` is ignored, so a
client cannot pick its own rate-limit bucket by sending that header.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
import weakref
from urllib.parse import urlsplit

import redis
import redis.asyncio as aioredis
from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.db import close_old_connections

from molecule_site.wire import error_response

logger = logging.getLogger(__name__)

RATE_WINDOW_SECONDS = 60
RATE_KEY_PREFIX = "ratelimit:"
# A Redis outage must not stall every request behind a long socket timeout.
REDIS_TIMEOUT_SECONDS = 0.5
# During an outage every request fails the same way; one warning per interval is enough.
REDIS_WARNING_INTERVAL_SECONDS = 60
ASYNC_POOL_MAX_CONNECTIONS = 64

_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_last_warning = float("-inf")


def _redis() -> redis.Redis:
    """The client (on its own pool) for ``settings.REDIS_URL``, created on first use.

    Keyed by URL so a changed setting (tests) gets its own client instead of a stale one.
    """
    url = settings.REDIS_URL
    client = _clients.get(url)
    if client is None:
        with _clients_lock:
            client = _clients.get(url)
            if client is None:
                client = _clients[url] = redis.Redis.from_url(
                    url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
                )
    return client


_async_clients: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _async_redis() -> aioredis.Redis:
    """The async twin of :func:`_redis`: one client (and pool) per event loop and URL, kept —
    building a client costs more than the round trip it makes."""
    per_loop = _async_clients.setdefault(asyncio.get_running_loop(), {})
    url = settings.REDIS_URL
    client = per_loop.get(url)
    if client is None:
        client = per_loop[url] = aioredis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_SECONDS, socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            max_connections=ASYNC_POOL_MAX_CONNECTIONS,
        )
    return client


def _warn_redis_down(exc: Exception) -> None:
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= REDIS_WARNING_INTERVAL_SECONDS:
        _last_warning = now
        logger.warning("rate limiter: Redis unavailable, letting requests through: %s", exc)


class DualModeMiddleware:
    """A middleware that runs natively under both handlers (no thread hop): subclasses write
    :meth:`handle` for the sync one and :meth:`ahandle` for the async one."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self.ahandle(request)
        return self.handle(request)


class ReleaseDatabaseConnectionsMiddleware(DualModeMiddleware):
    """Hands the ORM's connections back to the pool at the end of each ASGI request.

    Django does this from ``request_started``/``request_finished`` receivers, which are sync and
    cost a thread hop on every request, hot paths included; ``molecule_site.asgi`` disconnects
    them. Here the hop is taken only after a sync view, in the request's own thread (where the
    view's connection lives: asgiref keeps thread-sensitive state per thread), so async views
    on the async driver never leave the event loop. Outermost, so it runs last.
    """

    def handle(self, request):
        return self.get_response(request)  # sync handlers (test client, commands) keep Django's receivers

    async def ahandle(self, request):
        try:
            return await self.get_response(request)
        finally:
            match = getattr(request, "resolver_match", None)
            if match is None or not iscoroutinefunction(match.func):
                await sync_to_async(close_old_connections, thread_sensitive=True)()


class RateLimitMiddleware(DualModeMiddleware):
    """Per-client-IP fixed-window limit of ``settings.RATE_LIMIT`` requests per minute.

    Each window is one Redis counter (``ratelimit:<ip>:<window>``), so every web replica shares
    the same count; its TTL does the original's idle-bucket GC. Every response carries
    ``X-RateLimit-Limit``/``-Remaining``/``-Reset``; over the limit the answer is 429
    ``{"error":"rate limit exceeded","retry_after":<secs>}`` with ``Retry-After``. Dev mode
    (spec §2.6) bypasses the limiter and says ``X-RateLimit-Limit: unlimited``.
    """

    def handle(self, request):
        # Settings are read per request so tests (and nothing else) can flip them.
        if settings.DEV_MODE:
            return _unlimited(self.get_response(request))
        window = _Window(request)
        try:
            pipe = _redis().pipeline(transaction=False)
            window.queue(pipe)
            count = window.counted(pipe.execute())
        except redis.RedisError as exc:
            count = _fail_open(exc)
        if count > window.limit:
            return window.refuse(request, count)
        return window.stamp(self.get_response(request), count)

    async def ahandle(self, request):
        if settings.DEV_MODE:
            return _unlimited(await self.get_response(request))
        window = _Window(request)
        try:
            pipe = _async_redis().pipeline(transaction=False)
            window.queue(pipe)
            count = window.counted(await pipe.execute())
        except (redis.RedisError, OSError) as exc:
            count = _fail_open(exc)
        if count > window.limit:
            return window.refuse(request, count)
        return window.stamp(await self.get_response(request), count)


def _unlimited(response):
    response["X-RateLimit-Limit"] = "unlimited"
    return response


def _fail_open(exc: Exception) -> int:
    # Redis is ephemeral infrastructure and losing it must not take the whole API down with
    # it; the limiter is abuse protection, not an authorisation check.
    _warn_redis_down(exc)
    return 0


class _Window:
    """The current window of one client: its Redis key, the limit and the reset time."""

    def __init__(self, request):
        self.limit = settings.RATE_LIMIT
        now = time.time()
        window = int(now // RATE_WINDOW_SECONDS)
        # Windows are aligned to the clock so all replicas agree on when they reset; never 0,
        # so a client honouring Retry-After does not retry inside the same window.
        self.reset = max(1, math.ceil((window + 1) * RATE_WINDOW_SECONDS - now))
        ip = request.META.get("REMOTE_ADDR") or "unknown"
        self.key = f"{RATE_KEY_PREFIX}{ip}:{window}"

    def queue(self, pipe) -> None:
        pipe.incr(self.key)
        pipe.expire(self.key, RATE_WINDOW_SECONDS)

    @staticmethod
    def counted(results) -> int:
        return int(results[0])

    def refuse(self, request, count: int):
        response = error_response("rate limit exceeded", 429, retry_after=self.reset)
        response["Retry-After"] = str(self.reset)
        # This 429 never reaches the inner SecurityHeadersMiddleware.
        apply_security_headers(request, response)
        return self.stamp(response, count)

    def stamp(self, response, count: int):
        response["X-RateLimit-Limit"] = str(self.limit)
        response["X-RateLimit-Remaining"] = str(max(0, self.limit - count))
        response["X-RateLimit-Reset"] = str(self.reset)
        return response


# API routes get the strict CSP; anything else (the Django admin at /django-admin/, the
# server-rendered canvas pages) gets the relaxed one. Plain prefix matching as in the original,
# so /admin/... is API but /django-admin/ is not.
API_PREFIXES = (
    "/workspaces", "/registry", "/health", "/admin", "/metrics", "/settings", "/bundles", "/org",
    "/orgs", "/templates", "/plugins", "/webhooks", "/channels", "/ws", "/events", "/approvals",
    "/canvas",
)
API_CSP = "default-src 'self'"
PAGE_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self' ws: wss:"
)
# The canvas and its login run no inline script and no eval: only our own files may run, so
# agent-written text that slipped through escaping could still not execute.
CANVAS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; form-action 'self'; base-uri 'self'; object-src 'none'"
)
CANVAS_PAGES = ("/accounts/",)
# The OpenAPI readers (/api/docs/, /api/redoc/): the pages' policy, plus workers from blob: URLs
# their own scripts create (ReDoc's search index runs in one).
API_DOCS_CSP = PAGE_CSP + "; worker-src 'self' blob:"
API_DOCS = "/api/"
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def _csp(path: str) -> str:
    if path == "/" or path.startswith(CANVAS_PAGES):
        return CANVAS_CSP
    if path.startswith(API_DOCS):
        return API_DOCS_CSP
    return API_CSP if path.startswith(API_PREFIXES) else PAGE_CSP


def apply_security_headers(request, response):
    """Set the original's security headers; assignment, so they win over Django's defaults."""
    for name, value in SECURITY_HEADERS.items():
        response[name] = value
    response["Content-Security-Policy"] = _csp(request.path)
    return response


class SecurityHeadersMiddleware(DualModeMiddleware):
    """Adds the security headers of spec §1 item 6 to every response.

    It sits outside Django's SecurityMiddleware and replaces XFrameOptionsMiddleware, so the
    values on the wire are exactly the original's (Django's defaults differ, e.g. Referrer-Policy).
    """

    def handle(self, request):
        return apply_security_headers(request, self.get_response(request))

    async def ahandle(self, request):
        return apply_security_headers(request, await self.get_response(request))


CROSS_SITE_REFUSED = "cross-site request refused"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_TRUSTED_FETCH_SITES = frozenset({"same-origin", "none"})


def _origin_of(url: str) -> str:
    parts = urlsplit(url.strip().lower())
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def cross_site_problem(request) -> bool:
    """Whether a state-changing request comes from a web page this platform does not trust.

    Browsers mark what they send: ``Origin`` on every POST/PUT/PATCH/DELETE and
    ``Sec-Fetch-Site``. A page elsewhere (or a DNS-rebound name) could otherwise drive a local
    instance with "simple" requests — ``text/plain`` or form-encoded bodies, which the API
    parses as JSON like the original does and which need no CORS preflight. Trusted: our own
    origin (the Host the request names, ``PLATFORM_URL``) and ``CORS_ORIGINS``. curl and agents
    send neither header, so they are not affected.
    """
    if request.method in _SAFE_METHODS:
        return False
    origin = request.META.get("HTTP_ORIGIN")
    fetch_site = request.META.get("HTTP_SEC_FETCH_SITE", "").strip().lower()
    if origin is None:
        return bool(fetch_site) and fetch_site not in _TRUSTED_FETCH_SITES
    wanted = _origin_of(origin)  # "null" (sandboxed frames, file://) parses to "": refused
    if not wanted:
        return True
    trusted = {_origin_of(entry) for entry in (*settings.CORS_ORIGINS, *settings.CSRF_TRUSTED_ORIGINS)}
    scheme = "https" if request.is_secure() else "http"
    trusted.add(f"{scheme}://{request.get_host().lower()}")
    return wanted not in trusted


class CrossSiteRequestMiddleware(DualModeMiddleware):
    """403 ``{"error":"cross-site request refused"}`` for :func:`cross_site_problem` requests."""

    def handle(self, request):
        if cross_site_problem(request):
            return error_response(CROSS_SITE_REFUSED, 403)
        return self.get_response(request)

    async def ahandle(self, request):
        if cross_site_problem(request):
            return error_response(CROSS_SITE_REFUSED, 403)
        return await self.get_response(request)
