"""Calling the API from a test as the operator's scripts do — the one copy every view test uses.

The root ``conftest.py`` has the fixtures: ``secure`` (dev mode off, :data:`ADMIN_TOKEN` as the
admin token: the production rules) and ``api`` (:func:`call` bound to the test's ``client``).
A module whose every test needs the production rules says
``pytestmark = [..., pytest.mark.usefixtures("secure")]``.
"""

from __future__ import annotations

import json

ADMIN_TOKEN = "test-admin-token"


def call(client, method: str, path: str, body=None, *, token: str | None = ADMIN_TOKEN, **environ):
    """``method path`` through Django's test ``client`` with ``Authorization: Bearer <token>``
    (no header when ``token`` is falsy) and ``body`` as JSON — a str or bytes goes as it is, for
    bad-body tests. ``environ`` adds WSGI keys (``HTTP_X_WORKSPACE_ID=…``)."""
    if token:
        environ = {"HTTP_AUTHORIZATION": f"Bearer {token}", **environ}
    if body is None:
        return client.generic(method.upper(), path, **environ)
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.generic(method.upper(), path, data, content_type="application/json", **environ)
