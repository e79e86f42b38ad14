"""WebSocket routes served through Channels (see ``molecule_site.asgi``)."""

from django.urls import path

from activity.consumers import EventsConsumer

websocket_urlpatterns: list = [
    path("ws", EventsConsumer.as_asgi()),
]
