"""Small building blocks shared by the API views."""

from __future__ import annotations

import functools
import json
import uuid

from django.http import HttpResponse
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import APIException, MethodNotAllowed, ParseError
from rest_framework.views import APIView

from molecule_site.adb import DatabaseBusy
from molecule_site.errors import ApiError
from molecule_site.wire import datastore_busy_response, json_response, not_found_response, storable_json


OPEN = ()  # an ``auth_by_method`` entry for a method anyone may call (spec §4 "Open")

# Methods a route may serve; HEAD is answered like GET (Django's View makes ``head`` call ``get``).
_HANDLER_METHODS = ("get", "post", "put", "patch", "delete")


class Api(APIView):
    """An API view whose permission classes are declared per HTTP method (``auth_by_method``).

    Several routes of the original share a path but not an auth rule, e.g. ``GET
    /workspaces/:id`` is open while ``PATCH`` needs WorkspaceAuth and ``DELETE`` AdminAuth.

    One rule for every method (docs/security.md): ``auth_by_method`` lists every method the
    route serves (``OPEN`` for the open ones — a class that defines a handler without listing
    it fails at import); HEAD goes through GET's classes — never none, which once let HEAD
    answer 200 with the real ``Content-Length`` where GET answered 401; any other method
    (OPTIONS included: CORS preflights are answered by the CORS middleware before any view)
    is gin's 404 before a handler runs.
    """

    auth_by_method: dict[str, tuple] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        unlisted = [name.upper() for name in _HANDLER_METHODS
                    if name in cls.http_method_names and callable(getattr(cls, name, None))
                    and name.upper() not in cls.auth_by_method]
        if unlisted:
            raise TypeError(f"{cls.__name__} serves {', '.join(unlisted)} without an auth_by_method entry")

    def get_permissions(self):
        method = "GET" if self.request.method == "HEAD" else self.request.method
        if method not in self.auth_by_method:
            raise MethodNotAllowed(self.request.method)  # answered as gin's 404 (wire.exception_handler)
        return [permission() for permission in self.auth_by_method[method]]


def json_body(request, error: str = "invalid request body", *, default=None):
    """The parsed JSON body; a malformed one raises ``error``. An empty body gives ``default``."""
    try:
        data = request.data
    except ParseError:
        raise ApiError(error) from None
    if not data and default is not None:
        return default
    return data


def parse_uuid(value, error: str = "invalid workspace ID", status: int = 400) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ApiError(error, status=status) from None


def query_int(request, name: str, default: int) -> int | None:
    """An integer query parameter, ``default`` when absent, None when malformed."""
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        return None


# --- Async routes (the hot paths: no DRF, no thread) -------------------------------------------------

def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def parse_json(request, error: str = "invalid request body", *, default=None):
    """The JSON body of a plain Django request, read as DRF's parser would: whatever the
    Content-Type, strict (no NaN/Infinity), empty → ``default``; malformed or not storable
    (``wire.storable_json``) → ``ApiError(error)``."""
    raw = request.body
    if not raw.strip():
        return default
    try:
        return storable_json(json.loads(raw.decode("utf-8"), parse_constant=_reject_constant), raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(error) from None


def async_api(*methods: str):
    """An async view that answers ``methods`` (others: gin's 404) and renders what it returns
    or raises the way DRF views do (``ApiError``, auth errors, a busy datastore)."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        async def run(request, *args, **kwargs):
            if request.method not in methods:
                return not_found_response()
            try:
                result = await view(request, *args, **kwargs)
            except ApiError as exc:
                return json_response(exc.body, status=exc.status)
            except APIException as exc:
                detail = exc.detail if isinstance(exc.detail, dict) else {"error": str(exc.detail)}
                return json_response(detail, status=exc.status_code)
            except DatabaseBusy:
                return datastore_busy_response()
            return result if isinstance(result, HttpResponse) else json_response(result)

        return run

    return decorate
