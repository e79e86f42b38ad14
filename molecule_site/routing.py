"""WebSocket routes served through Channels (see ``molecule_site.asgi``)."""

from django.urls import path

from activity.consumers import EventsConsumer
from workspaces.terminal_consumer import TerminalConsumer

websocket_urlpatterns: list = [
    path("ws", EventsConsumer.as_asgi()),
    # Any id reaches the consumer, so a malformed one gets the spec's 404 body, not a bare close.
    path("workspaces/<str:workspace_id>/terminal", TerminalConsumer.as_asgi()),
]
