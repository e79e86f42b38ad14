"""WebSocket routes served through Channels (see ``molecule_site.asgi``)."""

websocket_urlpatterns: list = []
