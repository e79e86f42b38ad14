"""``GET /workspaces/:id/terminal`` (WebSocket, spec §18): a shell in the workspace's runtime.

Who may open one, and the opening, are :mod:`workspaces.terminal`; this consumer only moves
bytes. A refused handshake is answered with the refusal's status and ``{"error": …}`` body
where the server supports it (uvicorn; :func:`molecule_site.ws_auth.deny`), else closed before
accept (daphne answers 403). A browser cannot read either (its WebSocket API reports a failed
handshake as a bare 1006), so a client that offers the ``molecule-terminal`` subprotocol — the
canvas — is told in-band instead: accepted, then closed with code ``4000 + status`` and the
error as the close reason (4503 "Docker not available").

Once accepted: binary and text frames are keystrokes, except a text frame holding the JSON
object ``{"type":"resize","cols":N,"rows":M}`` (integers 1–1000; a resize with other values is
ignored). The shell's output goes out as binary frames; when the shell exits the socket closes
with 1000, and when the client goes the shell is hung up. A frame over ``MAX_FRAME_BYTES`` closes
the socket with 1009; a client whose keystrokes pile up unread past ``MAX_PENDING_INPUT_BYTES``
(a shell that stopped reading) with 1013.

The session's ``read`` and ``write`` block, so each runs on a thread of its own (one executor
of one worker per direction): reading the next output only after the last was sent is the
back-pressure on a shell that prints faster than the socket drains, and a write waiting for the
shell never holds up the event loop or the client's disconnect.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import sync_to_async
from channels.consumer import get_handler_name
from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.utils import await_many_dispatch
from django.db import close_old_connections

from molecule_site.ws_auth import deny, first_header, scope_bearer_token, scope_origin_allowed, staff_user
from workspaces import terminal
from workspaces.provisioners.base import TerminalUnavailable

log = logging.getLogger(__name__)

READ_CHUNK = 65536
MAX_FRAME_BYTES = 64 * 1024
MAX_PENDING_INPUT_BYTES = 1024 * 1024
MAX_DIMENSION = 1000
NORMAL_CLOSURE = 1000
MESSAGE_TOO_BIG = 1009
TRY_AGAIN_LATER = 1013
SUBPROTOCOL = "molecule-terminal"
REFUSAL_CLOSE_BASE = 4000
OPEN_FAILED = "could not open a terminal for this workspace"
MAX_CLOSE_REASON_BYTES = 123  # RFC 6455: a close frame's payload is at most 125 bytes


def resize_request(text: str) -> tuple[int, int] | None | bool:
    """``(cols, rows)`` for a valid resize message, ``False`` for a resize message with bad
    values (ignored), ``None`` for anything else (keystrokes)."""
    if not text.startswith("{"):
        return None
    try:
        message = json.loads(text)
    except ValueError:
        return None
    if not isinstance(message, dict) or message.get("type") != "resize":
        return None
    cols, rows = message.get("cols"), message.get("rows")
    if all(type(v) is int and 1 <= v <= MAX_DIMENSION for v in (cols, rows)):
        return cols, rows
    return False


def _open(*, workspace_id: str, principal: str):
    """:func:`terminal.terminal_open` on a worker thread (a fork, the Docker engine), giving its
    database connection to the pool before the thread moves on: Channels' ``database_sync_to_async``
    left one checked out per call here (its cleanup does not run in the context the call used)."""
    try:
        return terminal.terminal_open(workspace_id=workspace_id, principal=principal)
    finally:
        close_old_connections()


async def _open_in_thread(*, workspace_id: str, principal: str):
    try:
        return await sync_to_async(_open, thread_sensitive=False)(workspace_id=workspace_id, principal=principal)
    except TerminalUnavailable:
        raise
    except Exception:  # noqa: BLE001 - a backend or database failure is an answer, not a crash
        log.exception("terminal: opening the terminal of workspace %s failed", workspace_id)
        raise TerminalUnavailable(500, OPEN_FAILED) from None


def _staff_name(scope) -> str | None:
    return scope["user"].get_username() if staff_user(scope) else None


class TerminalConsumer(AsyncWebsocketConsumer):
    """One terminal client: the handshake's checks, then bytes both ways until either side ends."""

    session = None
    workspace_id = ""

    async def __call__(self, scope, receive, send):
        """No channel layer (nothing is sent to a terminal from elsewhere), and the session is
        closed however the connection ends — a client gone, a server shutting down, a bug."""
        self.scope = scope
        self.channel_layer = None
        self.base_send = send
        self.ended = False
        self.tasks: list[asyncio.Task] = []
        try:
            await await_many_dispatch([receive], self.dispatch)
        except StopConsumer:
            pass
        finally:
            await asyncio.shield(self._end())

    async def dispatch(self, message):
        """Channels' dispatch without its ``close_old_connections`` thread hop per message (a
        keystroke each here); the only ORM use, the opening, cleans up after itself."""
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def websocket_connect(self, message):
        self.workspace_id = str(self.scope["url_route"]["kwargs"]["workspace_id"])
        caller_id = (first_header(self.scope, b"x-workspace-id") or "").strip() or None
        subprotocol = SUBPROTOCOL if SUBPROTOCOL in (self.scope.get("subprotocols") or ()) else None
        try:
            principal = await terminal.terminal_principal(
                target_id=self.workspace_id, origin_ok=scope_origin_allowed(self.scope), caller_id=caller_id,
                token=scope_bearer_token(self.scope), staff_name=_staff_name(self.scope),
            )
            session = await _open_in_thread(workspace_id=self.workspace_id, principal=principal)
        except TerminalUnavailable as refusal:
            log.info("terminal: refused workspace %s to %s: %d %s", self.workspace_id, self.scope.get("client"),
                     refusal.status, refusal.error)
            if subprotocol is not None:
                await self.accept(subprotocol=subprotocol)
                reason = refusal.error.encode()[:MAX_CLOSE_REASON_BYTES].decode(errors="ignore")
                await self.close(code=REFUSAL_CLOSE_BASE + refusal.status, reason=reason)
            elif not await deny(self.scope, self.base_send, refusal.status, refusal.error):
                await self.close()
            return
        self.session = session
        self.opened_at = time.monotonic()
        self.bytes_in = self.bytes_out = 0
        self.pending = 0
        self.input: asyncio.Queue = asyncio.Queue()
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="terminal-read")
        self.writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="terminal-write")
        await self.accept(subprotocol=subprotocol)
        self.tasks = [asyncio.create_task(self._pump_output()), asyncio.create_task(self._pump_input())]

    async def receive(self, text_data=None, bytes_data=None):
        if self.session is None or self.ended:
            return
        if text_data is not None:
            resize = resize_request(text_data)
            if resize is False:
                return
            if resize is not None:
                self.input.put_nowait(resize)
                return
            bytes_data = text_data.encode()
        if len(bytes_data) > MAX_FRAME_BYTES:
            log.info("terminal: closing workspace %s's terminal: a %d-byte frame", self.workspace_id, len(bytes_data))
            await self._close_socket(MESSAGE_TOO_BIG)
            return
        if self.pending + len(bytes_data) > MAX_PENDING_INPUT_BYTES:
            log.info("terminal: closing workspace %s's terminal: the shell does not read its input", self.workspace_id)
            await self._close_socket(TRY_AGAIN_LATER)
            return
        self.pending += len(bytes_data)
        self.input.put_nowait(bytes_data)

    async def _pump_output(self):
        loop, session = asyncio.get_running_loop(), self.session
        try:
            while True:
                data = await loop.run_in_executor(self.reader, session.read, READ_CHUNK)
                if not data:
                    break
                self.bytes_out += len(data)
                await self.send(bytes_data=data)
        except Exception:  # noqa: BLE001 - the socket went away under us, or the backend failed
            if not self.ended:
                log.exception("terminal: output of workspace %s failed", self.workspace_id)
        await self._close_socket(NORMAL_CLOSURE)

    async def _pump_input(self):
        loop, session = asyncio.get_running_loop(), self.session
        while True:
            item = await self.input.get()
            try:
                if isinstance(item, tuple):
                    await loop.run_in_executor(self.writer, session.resize, *item)
                else:
                    self.pending -= len(item)
                    self.bytes_in += len(item)
                    await loop.run_in_executor(self.writer, session.write, item)
            except Exception:  # noqa: BLE001 - one failed write must not end the session
                log.exception("terminal: input to workspace %s failed", self.workspace_id)

    async def _close_socket(self, code: int) -> None:
        if self.ended:
            return
        try:
            await self.close(code=code)
        except Exception:  # noqa: BLE001 - the client is already gone
            log.debug("terminal: close after the client left", exc_info=True)

    async def websocket_disconnect(self, message):
        await self._end()
        raise StopConsumer()

    async def _end(self) -> None:
        """Hang up the shell and give its slot back, once."""
        if self.ended:
            return
        self.ended = True
        session, self.session = self.session, None
        if session is None:
            return
        for task in self.tasks:
            task.cancel()
        await asyncio.to_thread(
            terminal.terminal_close, session, workspace_id=self.workspace_id, opened_at=self.opened_at,
            bytes_in=self.bytes_in, bytes_out=self.bytes_out,
        )
        self.reader.shutdown(wait=False)
        self.writer.shutdown(wait=False)
