"""The ``/ws`` event stream (spec §15): every event to the canvas, topology-filtered to workspaces.

A client without ``X-Workspace-ID`` is a *canvas client* and receives every frame. A client that
sends ``X-Workspace-ID`` is a *workspace client* and receives only frames whose ``workspace_id``
it may talk to under :func:`registry.selectors.can_communicate` (itself included); frames with an
empty ``workspace_id`` never reach it. Frames come from :func:`activity.events.emit` through the
``events`` group of the Redis channel layer, so every web replica sees every event. Messages from
clients are read and ignored.

Handshake rules, in order:

1. ``Origin`` (when sent — non-browser clients send none) must case-insensitively equal one of
   ``CORS_ORIGINS`` or be same-origin (its ``host[:port]`` equals the ``Host`` header). As in the
   original, an empty ``CORS_ORIGINS`` allows any origin — in dev mode only
   (:mod:`molecule_site.ws_auth`, shared with the terminal).
2. ``X-Workspace-ID``: must be a UUID. The first ``Authorization: Bearer`` value must validate
   for it, or be ``ADMIN_TOKEN``; a workspace with no live token connects without one in dev
   mode only (the original's grandfathering). A database error during the check rejects the
   handshake (fail closed, like the original's in-handler re-checks).
3. No ``X-Workspace-ID`` outside dev mode: the client must be a logged-in active staff user
   (session cookie) or present ``ADMIN_TOKEN`` — beyond the original, which serves canvas
   clients unauthenticated.

Deviation from the original: it answers a failed workspace check with HTTP 401 and
``{"error":"missing workspace auth token"}`` / ``{"error":"invalid workspace auth token"}`` (500
``{"error":"auth check failed"}`` on DB errors), and a bad origin with 403. An ASGI server cannot
send a status or body for a rejected WebSocket handshake, so every rejection closes before accept
(daphne answers 403) and the spec's error string is logged instead.

The original gives each client a send buffer of 256 frames and drops frames for a full one.
Here the channel layer (``molecule_site.channel_layer``) keeps a queue of ``WS_CLIENT_QUEUE_SIZE``
frames per client; a client that falls that far behind (its socket does not drain: the server
awaits each send) is closed with 1013 "try again later" instead of silently missing frames, and
reconnects to a fresh snapshot. Idle connections are kept alive by the server's WebSocket pings.
"""

from __future__ import annotations

import functools
import logging

from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings

from activity.events import EVENTS_GROUP
from molecule_site.channel_layer import dispatch_in_order
from molecule_site.metrics import WEBSOCKET_CONNECTIONS
from molecule_site.ws_auth import first_header, scope_bearer_token, scope_origin_allowed, staff_user
from registry import selectors, services
from registry.auth import is_admin_token

log = logging.getLogger(__name__)

MISSING_TOKEN = "missing workspace auth token"
INVALID_TOKEN = "invalid workspace auth token"
AUTH_CHECK_FAILED = "auth check failed"
BAD_ORIGIN = "origin not allowed"
ADMIN_REQUIRED = "admin auth required"
TRY_AGAIN_LATER = 1013


async def _workspace_auth_error(workspace_id: str, token: str | None) -> str | None:
    """None when the client may connect as ``workspace_id``, else the spec's error string."""
    if selectors.as_uuid(workspace_id) is None:
        return INVALID_TOKEN  # the original's UUID-typed query errors, so the check fails closed
    if is_admin_token(token):
        return None
    try:
        if settings.DEV_MODE and not await selectors.aworkspace_has_live_token(workspace_id):
            return None
        if token is None:
            return MISSING_TOKEN
        if await services.atoken_validate(token=token, workspace_id=workspace_id) is None:
            return INVALID_TOKEN
    except Exception:  # noqa: BLE001 - any failure of the check rejects the client
        log.exception("ws: auth check for workspace %s failed", workspace_id)
        return AUTH_CHECK_FAILED
    return None


async def _may_see(client_workspace_id: str, event_workspace_id: str) -> bool:
    """The hierarchy rule, from the per-process cache while the org tree is unchanged."""
    try:
        return await selectors.acan_communicate(client_workspace_id, event_workspace_id)
    except Exception:  # noqa: BLE001 - a failed lookup hides the frame (fail closed)
        log.exception("ws: can_communicate(%s, %s) failed", client_workspace_id, event_workspace_id)
        return False


class EventsConsumer(AsyncWebsocketConsumer):
    """One ``/ws`` client: a canvas (all events) or a workspace (events it may communicate with)."""

    workspace_id: str | None = None
    accepted = False
    joined = False

    async def connect(self):
        reason = await self._handshake_error()
        if reason is not None:
            log.info("ws: rejected handshake from %s: %s", self.scope.get("client"), reason)
            await self.close()
            return
        await self.channel_layer.group_add(EVENTS_GROUP, self.channel_name)
        self.joined = True
        await self.accept()
        self.accepted = True
        WEBSOCKET_CONNECTIONS.inc()

    async def _handshake_error(self) -> str | None:
        if not scope_origin_allowed(self.scope):
            return BAD_ORIGIN
        token = scope_bearer_token(self.scope)
        workspace_id = (first_header(self.scope, b"x-workspace-id") or "").strip()
        if workspace_id:
            error = await _workspace_auth_error(workspace_id, token)
            if error is None:
                self.workspace_id = workspace_id
            return error
        if not settings.DEV_MODE and not (staff_user(self.scope) or is_admin_token(token)):
            return ADMIN_REQUIRED
        return None

    async def __call__(self, scope, receive, send):
        """Channels' consumer entry point (AsyncConsumer.__call__), dispatching through
        :func:`dispatch_in_order`: a fan-out to a thousand clients is a thousand dispatches."""
        self.scope = scope
        self.channel_layer = get_channel_layer(self.channel_layer_alias)
        self.channel_name = await self.channel_layer.new_channel()
        self.channel_receive = functools.partial(self.channel_layer.receive, self.channel_name)
        self.base_send = send
        try:
            await dispatch_in_order([receive, self.channel_receive], self.dispatch)
        except StopConsumer:
            pass

    async def dispatch(self, message):
        """Channels' dispatch, minus the ``close_old_connections`` it runs in a thread before every
        message (to recycle ORM connections): this consumer never touches the ORM, and that hop,
        once per client per event, was 40 % of a fan-out's CPU (docs/performance.md)."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def receive(self, text_data=None, bytes_data=None):
        """Client messages are read and ignored (spec §15)."""

    async def disconnect(self, code):
        if self.joined:
            self.joined = False
            await self.channel_layer.group_discard(EVENTS_GROUP, self.channel_name)
        if self.accepted:
            self.accepted = False
            WEBSOCKET_CONNECTIONS.dec()

    async def event_message(self, message):
        """A frame from :func:`activity.events.emit` (serialised once there), forwarded if this
        client may see it."""
        if not self.accepted:
            return
        if self.workspace_id is not None:
            event_workspace_id = message["workspace_id"]
            if not event_workspace_id or not await _may_see(self.workspace_id, event_workspace_id):
                return
        await self.send(text_data=message["text"])

    async def layer_overflow(self, message):
        """This client fell ``WS_CLIENT_QUEUE_SIZE`` frames behind: let it reconnect and re-sync."""
        log.warning("ws: closing %s, which could not keep up with the event stream", self.scope.get("client"))
        await self.close(code=TRY_AGAIN_LATER)
