"""Small building blocks shared by the API views."""

from __future__ import annotations

import uuid

from rest_framework.exceptions import ParseError
from rest_framework.views import APIView

from molecule_site.errors import ApiError


class Api(APIView):
    """An API view whose auth class may differ per HTTP method (``auth_by_method``).

    Several routes of the original share a path but not an auth rule, e.g. ``GET
    /workspaces/:id`` is open while ``PATCH`` needs WorkspaceAuth and ``DELETE`` AdminAuth.
    """

    auth_by_method: dict[str, tuple] = {}

    def get_permissions(self):
        return [permission() for permission in self.auth_by_method.get(self.request.method, ())]


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
