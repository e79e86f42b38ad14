"""The A2A HTTP app (spec/runtime.md §4.1-4.2) on a2a-sdk 1.x.

- JSON-RPC at `/`. The SDK speaks the 1.0 names natively (`SendMessage`,
  `SendStreamingMessage`, `GetTask`, `CancelTask`, …) and, with `enable_v0_3_compat=True`,
  its own v0.3 adapter handles the 0.3 names and shapes (`message/send`, `message/stream`,
  `tasks/get`, `tasks/cancel`, …) on the same endpoint. Every internal caller (platform proxy,
  delegation tool, canvas) uses the 0.3 names, so this flag is what keeps them working.
- The card at `/.well-known/agent-card.json` (1.0) and `/.well-known/agent.json` (0.3 path);
  both serve the current card from a `CardHolder`, so a skills hot reload shows up at once.
- With an inbound secret (env `MOLECULE_INBOUND_SECRET`, set by the platform's provisioner),
  JSON-RPC answers only calls carrying it in `X-Molecule-Inbound-Secret` (`InboundSecretGuard`).
"""

from __future__ import annotations

import hmac
import json
import logging

from a2a.server.agent_execution import AgentExecutor
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes, create_jsonrpc_routes
from a2a.server.tasks import InMemoryTaskStore
from a2a.types import AgentCard
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse

from .telemetry import TraceContextMiddleware, TracedExecutor

log = logging.getLogger(__name__)

# a2a-sdk warns on every card request when `skills` is empty; a workspace without skills is
# normal here, so drop just that one message.
logging.getLogger("a2a.utils.proto_utils").addFilter(
    lambda record: "REQUIRED fields missing or empty: skills" not in record.getMessage())

CARD_PATHS = ("/.well-known/agent-card.json", "/.well-known/agent.json")
INBOUND_SECRET_ENV = "MOLECULE_INBOUND_SECRET"
INBOUND_SECRET_HEADER = "X-Molecule-Inbound-Secret"
INBOUND_SECRET_ERROR = "platform credential required (X-Molecule-Inbound-Secret missing or invalid)"
# the 1.0 JSON-RPC method names (a2a-sdk JsonRpcDispatcher.METHOD_TO_MODEL)
V10_METHODS = frozenset({
    "SendMessage", "SendStreamingMessage", "GetTask", "ListTasks", "CancelTask", "SubscribeToTask",
    "CreateTaskPushNotificationConfig", "GetTaskPushNotificationConfig",
    "ListTaskPushNotificationConfigs", "DeleteTaskPushNotificationConfig", "GetExtendedAgentCard",
})


def flatten_task_result(payload: dict) -> dict:
    """0.3 `message/send`: turn a finished Task result into its final agent Message.

    a2a-sdk 1.x does not let an executor send a bare Message after task events, so the reply
    travels as the terminal status message. 0.3 callers (platform proxy, delegation tool,
    canvas) read `result.parts[0].text`, which is what the 0.3-era runtime returned; give them
    that shape, carrying `taskId`/`contextId` so `tasks/get` still works.
    """
    result = payload.get("result")
    if not isinstance(result, dict) or result.get("kind") != "task":
        return payload
    message = (result.get("status") or {}).get("message")
    if not isinstance(message, dict) or not message.get("parts"):
        return payload
    flat = dict(message)
    flat["kind"] = "message"
    flat.setdefault("taskId", result.get("id"))
    flat.setdefault("contextId", result.get("contextId"))
    return {**payload, "result": flat}


def final_stream_message(event: dict) -> dict | None:
    """0.3 `message/stream`: the Message carried by a final status-update, as its own event."""
    result = event.get("result") if isinstance(event, dict) else None
    if not isinstance(result, dict) or result.get("kind") != "status-update" or not result.get("final"):
        return None
    message = (result.get("status") or {}).get("message")
    if not isinstance(message, dict) or not message.get("parts"):
        return None
    flat = {**message, "kind": "message"}
    flat.setdefault("taskId", result.get("taskId"))
    flat.setdefault("contextId", result.get("contextId"))
    return {"jsonrpc": "2.0", "id": event.get("id"), "result": flat}


def _sse_events(chunk: bytes) -> list[dict]:
    events = []
    for line in chunk.decode("utf-8", "replace").splitlines():
        if line.startswith("data:"):
            try:
                events.append(json.loads(line[5:]))
            except ValueError:
                pass
    return events


class JsonRpcNormaliser:
    """ASGI layer in front of the SDK's JSON-RPC route (POST /), for both method generations.

    - A 1.0 method name without an `A2A-Version` header gets `A2A-Version: 1.0` (the SDK reads
      a missing header as 0.3 and would refuse the 1.0 method); the method name already says
      which generation the caller speaks.
    - A 0.3 `message/send` result that is a finished Task is flattened to its Message
      (`flatten_task_result`).
    - A 0.3 `message/stream` ends, as the 0.3 contract says, with the final Message: after the
      final status-update (which carries it) the same Message is sent as one more event.
    The 0.3 names themselves are routed by the SDK's own v0.3 adapter (`enable_v0_3_compat`).
    """

    def __init__(self, app, rpc_path: str = "/"):
        self.app = app
        self.rpc_path = rpc_path

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.rpc_path:
            return await self.app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        try:
            request = json.loads(body)
        except ValueError:
            request = None
        method = request.get("method") if isinstance(request, dict) else None

        headers = list(scope.get("headers", []))
        if method in V10_METHODS and not any(k.lower() == b"a2a-version" for k, _ in headers):
            headers.append((b"a2a-version", b"1.0"))
            scope = {**scope, "headers": headers}

        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        if method == "message/stream":
            async def add_final_message(message):
                await send(message)
                if message["type"] == "http.response.body" and message.get("body"):
                    for event in _sse_events(message["body"]):
                        extra = final_stream_message(event)
                        if extra is not None:
                            data = json.dumps(extra, separators=(",", ":"))
                            await send({"type": "http.response.body", "body": f"data: {data}\r\n\r\n".encode(),
                                        "more_body": True})

            return await self.app(scope, replay, add_final_message)
        if method != "message/send":
            return await self.app(scope, replay, send)

        start: dict | None = None
        chunks: list[bytes] = []

        async def capture(message):
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
                return
            if message["type"] != "http.response.body":
                return await send(message)
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            raw = b"".join(chunks)
            try:
                raw = json.dumps(flatten_task_result(json.loads(raw)), separators=(",", ":")).encode()
            except (ValueError, AttributeError):
                pass
            out_headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            out_headers.append((b"content-length", str(len(raw)).encode()))
            await send({**start, "headers": out_headers})
            await send({"type": "http.response.body", "body": raw, "more_body": False})

        return await self.app(scope, replay, capture)


class InboundSecretGuard:
    """ASGI layer refusing JSON-RPC calls that lack the platform's inbound secret (beyond the original).

    Anything that can reach the agent's port (another process on the host, a peer that learnt its
    URL) could otherwise make it work, and spend its credentials, without the platform's
    hierarchy and budget checks. The platform sends the secret on every call its proxy forwards;
    a missing or different value is a 401 with ``{"error": INBOUND_SECRET_ERROR}``, compared in
    constant time. Every path is guarded but an allow-list (so a route added later is guarded
    by default): the agent card stays public because A2A cards exist to be discovered, carry
    nothing secret (the platform's registry hands the same card to every peer) and cannot start
    any work; ``/health`` reports liveness only; and ``/transcript`` has its own bearer check.
    """

    header = INBOUND_SECRET_HEADER.lower().encode()
    open_paths = frozenset({*CARD_PATHS, "/health", "/transcript"})

    def __init__(self, app, secret: str):
        self.app = app
        self.secret = secret.encode()

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] not in self.open_paths:
            # raw bytes: compare_digest refuses non-ASCII str, and a header may carry any byte
            presented = next((value for name, value in scope["headers"] if name == self.header), b"")
            if not hmac.compare_digest(presented, self.secret):
                refusal = JSONResponse({"error": INBOUND_SECRET_ERROR}, status_code=401)
                return await refusal(scope, receive, send)
        return await self.app(scope, receive, send)


class CardHolder:
    """The card currently served (swapped after setup and after every skills reload)."""

    def __init__(self, card: AgentCard):
        self.card = card

    async def current(self, _card: AgentCard) -> AgentCard:
        return self.card


def _bearer_ok(request: Request, token_provider) -> bool:
    """Fail closed: no token configured, no header, or a mismatch are all refusals."""
    expected = token_provider() if token_provider else None
    header = request.headers.get("authorization", "")
    if not expected or not header.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(header[7:].strip(), expected)


def _inbound_secret_ok(request: Request, secret: str | None) -> bool:
    sent = request.headers.get(INBOUND_SECRET_HEADER, "")
    return bool(secret) and bool(sent) and hmac.compare_digest(sent, secret)


def build_app(executor: AgentExecutor, cards: CardHolder, *, adapter=None, token_provider=None,
              inbound_secret: str | None = None) -> Starlette:
    """The A2A app. `token_provider()` returns the workspace token that guards `/transcript` (the
    inbound secret opens it too);
    `inbound_secret`, when given, guards JSON-RPC (`InboundSecretGuard`). Every task runs in an
    `a2a.task` span continuing the request's `traceparent` (telemetry.py)."""
    handler = DefaultRequestHandler(agent_executor=TracedExecutor(executor), task_store=InMemoryTaskStore(),
                                    agent_card=cards.card)
    routes = []
    for path in CARD_PATHS:
        routes += create_agent_card_routes(cards.card, card_modifier=cards.current, card_url=path)
    routes += create_jsonrpc_routes(request_handler=handler, rpc_url="/", enable_v0_3_compat=True)
    app = Starlette(routes=routes)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def transcript(request: Request) -> JSONResponse:
        # the workspace's own token, or the platform proxying GET /workspaces/:id/transcript for the
        # canvas or an admin (it proves itself with the inbound secret, as on JSON-RPC)
        if not (_bearer_ok(request, token_provider) or _inbound_secret_ok(request, inbound_secret)):
            return JSONResponse({"error": "unauthorized"}, status_code=401)
        try:
            since = max(0, int(request.query_params.get("since", 0)))
            limit = min(1000, max(1, int(request.query_params.get("limit", 100))))
        except ValueError:
            return JSONResponse({"error": "since and limit must be integers"}, status_code=400)
        if adapter is None or not hasattr(adapter, "transcript_lines"):
            return JSONResponse({"runtime": "", "supported": False, "lines": [], "cursor": since,
                                 "more": False, "source": None})
        return JSONResponse(await adapter.transcript_lines(since=since, limit=limit))

    app.add_route("/health", health, methods=["GET"])
    app.add_route("/transcript", transcript, methods=["GET"])
    app.state.cards = cards
    app.state.adapter = adapter
    app.add_middleware(JsonRpcNormaliser)
    app.add_middleware(TraceContextMiddleware)
    if inbound_secret:
        # added last, so outermost: a refused call is answered before its body is read
        app.add_middleware(InboundSecretGuard, secret=inbound_secret)
    return app
