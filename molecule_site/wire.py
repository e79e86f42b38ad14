"""The one wire contract (spec §0): compact JSON, ``{"error": ...}`` bodies, gin-style 404s.

Clients of the original platform match literal substrings such as ``"status":"ok"``, so every
JSON body leaves through :func:`json_bytes` (no spaces after ``:`` or ``,``).
"""

from __future__ import annotations

import io
import json
import re

from django import db
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.views.defaults import server_error
from psycopg_pool import PoolTimeout
from rest_framework import exceptions, status
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response

from molecule_site.adb import DatabaseBusy
from molecule_site.errors import ApiError

JSON_CONTENT_TYPE = "application/json; charset=utf-8"
NOT_FOUND_BODY = "404 page not found"


def json_bytes(data) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def json_response(data, status: int = 200) -> HttpResponse:
    """A compact JSON response for plain Django views (DRF views use the renderer below)."""
    return HttpResponse(json_bytes(data), status=status, content_type=JSON_CONTENT_TYPE)


def error_response(message: str, status: int, **extra) -> HttpResponse:
    return json_response({"error": message, **extra}, status=status)


def not_found_response() -> HttpResponse:
    return HttpResponse(NOT_FOUND_BODY, status=404, content_type="text/plain")


class CompactJSONRenderer(JSONRenderer):
    """DRF renderer with the original's separators and an explicit utf-8 charset."""

    charset = "utf-8"

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        return json_bytes(data)


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable(value):
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("NUL character in a string")
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_storable(item) for item in value]
    if isinstance(value, dict):
        return {_storable(key): _storable(item) for key, item in value.items()}
    return value


def storable_json(data, raw: bytes):
    """A parsed JSON body made fit for PostgreSQL, which stores neither NUL characters (in text
    or jsonb) nor unpaired surrogates (not UTF-8): a ``\\u0000`` anywhere is a ``ValueError``
    (the original answers 500 when the write fails; here it is a bad body), an unpaired
    ``\\ud800``–``\\udfff`` becomes U+FFFD as Go's decoder makes it. Both only arrive as
    ``\\u`` escapes, so a body without one is returned as it is, unwalked (the hot paths)."""
    return _storable(data) if b"\\u" in raw else data


class AnyContentTypeJSONParser(JSONParser):
    """Bodies are JSON whatever Content-Type says: gin binds JSON without looking at the header,
    and scripts written against it send ``curl -d '{...}'`` (form content type) or nothing.
    A body PostgreSQL could not store is a parse error (:func:`storable_json`)."""

    media_type = "*/*"

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        data = super().parse(io.BytesIO(raw), media_type, parser_context)
        try:
            return storable_json(data, raw)
        except ValueError as exc:
            raise exceptions.ParseError(f"JSON parse error - {exc}") from None


DATASTORE_BUSY_RETRY_AFTER_SECONDS = 1


def datastore_busy_response() -> HttpResponse:
    """503 for a request that waited ``DB_POOL_TIMEOUT_SECONDS`` without getting a connection."""
    response = error_response(
        "platform datastore busy — retry shortly", 503, code="platform_busy",
        retry_after=DATASTORE_BUSY_RETRY_AFTER_SECONDS,
    )
    response["Retry-After"] = str(DATASTORE_BUSY_RETRY_AFTER_SECONDS)
    return response


def is_pool_exhausted(exc: BaseException) -> bool:
    """A busy-datastore error from either pool (Django wraps psycopg's PoolTimeout)."""
    return isinstance(exc, DatabaseBusy) or (
        isinstance(exc, db.OperationalError) and isinstance(exc.__cause__, PoolTimeout)
    )


def handler400(request, exception=None):
    """Requests Django refuses before any view (a ``Host`` outside ALLOWED_HOSTS, a malformed
    body it cannot parse): the API's error shape instead of Django's HTML page."""
    message = "invalid Host header" if isinstance(exception, DisallowedHost) else "bad request"
    return error_response(message, 400)


def handler404(request, exception=None):
    """Unknown routes answer like gin: plain text ``404 page not found``."""
    return not_found_response()


def handler500(request):
    """An uncaught error: the API's error shape (``{"error": …}``, compact JSON) for API clients; a
    browser navigating to a page (``Accept: text/html``) gets Django's HTML page. The traceback is
    in the log, never in the answer."""
    if "text/html" in request.headers.get("Accept", ""):
        return server_error(request)
    return error_response("internal server error", 500)


def exception_handler(exc, context):
    """Map DRF exceptions to ``{"error": ...}``; a wrong method is a 404 as in gin."""
    if isinstance(exc, ApiError):
        return Response(exc.body, status=exc.status)
    if is_pool_exhausted(exc):
        return datastore_busy_response()
    if isinstance(exc, exceptions.MethodNotAllowed):
        return not_found_response()
    if isinstance(exc, exceptions.ParseError):
        return Response({"error": "invalid request body"}, status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, exceptions.APIException):
        detail = exc.detail
        if isinstance(detail, dict) and "error" in detail:
            body = detail
        elif isinstance(detail, (list, dict)):
            body = {"error": "invalid request body", "details": detail}
        else:
            body = {"error": str(detail)}
        response = Response(body, status=exc.status_code)
        if getattr(exc, "wait", None):
            response["Retry-After"] = str(int(exc.wait))
        return response
    return None


def rfc3339(moment) -> str:
    """UTC timestamp as the original prints it: ``2026-04-27T11:36:15.123456Z``."""
    from datetime import timezone as dt_timezone

    return moment.astimezone(dt_timezone.utc).isoformat().replace("+00:00", "Z")
