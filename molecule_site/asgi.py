"""ASGI entry point of the web processes: HTTP goes to Django, WebSockets through Channels routing."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "molecule_site.settings")

import django  # noqa: E402

django.setup(set_prefix=False)  # before the routing imports models, as get_asgi_application() does

from molecule_site.handler import MoleculeASGIHandler  # noqa: E402

django_application = MoleculeASGIHandler()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core import signals  # noqa: E402
from django.db import close_old_connections, reset_queries  # noqa: E402

from molecule_site.routing import websocket_urlpatterns  # noqa: E402



def release_connections_in_middleware() -> None:
    """Django's per-request connection receivers are sync: under ASGI each costs a thread hop per
    request. ReleaseDatabaseConnectionsMiddleware returns connections to the pool instead, and
    only after views that used one; the query log they reset exists only with DEBUG."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    if not settings.DEBUG:
        signals.request_started.disconnect(reset_queries)


release_connections_in_middleware()

application = ProtocolTypeRouter(
    {
        "http": django_application,
        "websocket": AuthMiddlewareStack(URLRouter(websocket_urlpatterns)),
    }
)
