"""What a WebSocket handshake tells about its client, for every consumer (``/ws``, the terminal).

Plain functions of an ASGI scope, so both consumers check the origin, the staff session and the
bearer token the same way. ``Origin`` (when sent — non-browser clients send none) must
case-insensitively equal one of ``CORS_ORIGINS`` or be same-origin (its ``host[:port]`` equals
the ``Host`` header); as in the original, an empty ``CORS_ORIGINS`` allows any origin — in dev
mode only. Browsers send ``Origin`` on every WebSocket handshake, so this is what keeps another
site from riding an operator's session cookie (cross-site WebSocket hijacking).

Rejecting a handshake with a status and a JSON body needs the ASGI "WebSocket Denial Response"
extension, which uvicorn offers and daphne does not: :func:`deny` sends one where the server
can, and otherwise closes before accept (the server then answers 403).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from molecule_site.wire import JSON_CONTENT_TYPE, json_bytes

# The same scheme as registry.auth.BEARER (case-sensitive, as the original parses it).
BEARER = "Bearer "
DENIAL_EXTENSION = "websocket.http.response"

_DEFAULT_PORTS = {"http": "80", "ws": "80", "https": "443", "wss": "443"}


def first_header(scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes) in an ASGI scope, decoded as latin-1."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def scope_bearer_token(scope) -> str | None:
    """Same parsing as ``registry.auth.bearer_token``: first header, case-sensitive ``Bearer ``.

    Some servers comma-join duplicate headers into one value, so only its first part counts.
    """
    first = (first_header(scope, b"authorization") or "").split(",", 1)[0]
    if not first.startswith(BEARER):
        return None
    return first[len(BEARER):].strip() or None


def _host_port(scheme: str, netloc: str) -> str:
    netloc = netloc.strip().lower()
    host, sep, port = netloc.rpartition(":")
    if sep and "]" not in port and port == _DEFAULT_PORTS.get(scheme):
        return host
    return netloc


def origin_allowed(origin: str | None, host: str | None) -> bool:
    """No Origin (non-browser client), an allowed CORS origin, or same-origin."""
    if origin is None:
        return True
    allowed = settings.CORS_ORIGINS
    if not allowed and settings.DEV_MODE:
        return True
    wanted = origin.strip().lower()
    if any(wanted == entry.strip().lower() for entry in allowed):
        return True
    parts = urlsplit(wanted)
    if not parts.netloc or not host:
        return False
    return _host_port(parts.scheme, parts.netloc) == _host_port(parts.scheme, host)


def scope_origin_allowed(scope) -> bool:
    return origin_allowed(first_header(scope, b"origin"), first_header(scope, b"host"))


def staff_user(scope) -> bool:
    """A logged-in, active staff user in the scope (``AuthMiddlewareStack`` loaded it)."""
    user = scope.get("user")
    return bool(
        user is not None
        and getattr(user, "is_authenticated", False)
        and getattr(user, "is_active", False)
        and getattr(user, "is_staff", False)
    )


def can_deny(scope) -> bool:
    """Whether the server lets us answer a rejected handshake with a status and a body."""
    return DENIAL_EXTENSION in (scope.get("extensions") or {})


async def deny(scope, send, status: int, error: str) -> bool:
    """Answer the handshake with ``status`` and ``{"error": error}`` where the server supports
    it; returns False when it does not (the caller then closes, and the server answers 403)."""
    if not can_deny(scope):
        return False
    body = json_bytes({"error": error})
    await send({
        "type": "websocket.http.response.start", "status": status,
        "headers": [(b"content-type", JSON_CONTENT_TYPE.encode()), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "websocket.http.response.body", "body": body})
    return True
