"""A local fake LLM server speaking Anthropic's real Messages HTTP API.

`POST /v1/messages` answers non-streaming (a `message` JSON object) or streaming (SSE events
`message_start`, `content_block_start`, `ping`, `content_block_delta` with `text_delta` /
`input_json_delta`, `content_block_stop`, `message_delta` with the stop reason and usage,
`message_stop`) exactly as the request's `stream` flag asks, so the real `anthropic` SDK,
`langchain_anthropic.ChatAnthropic` and the Claude Code CLI (`ANTHROPIC_BASE_URL`) run unmodified.
`POST /v1/messages/count_tokens` answers `{"input_tokens": N}`; `HEAD`/`GET /` and any other path
answer 200 `{}` (recorded) so a client probing the endpoint at startup never hangs.

Tests script the answers in `state.script` (consumed in order; when empty, `state.default`), in
the same shapes as `fake_openai`:
- `{"content": "text"}`                                    a final answer (stop_reason `end_turn`)
- `{"tool_calls": [{"name": "commit_memory", "arguments": {...}}], "content": ""}`
                                                           `tool_use` blocks (stop_reason `tool_use`)
- `{"status": 529}` / `{"status": 429}` / `{"status": 500, "error": "boom"}`
                                                           an HTTP error with Anthropic's error body
                                                           `{"type": "error", "error": {"type":
                                                           "overloaded_error" | "rate_limit_error" |
                                                           "api_error", "message": ...}}`
                                                           (`"error_type"` overrides the type)
- a callable `fn(request_body) -> one of the above`        e.g. an answer quoting the tool result
- any of them with `"delay": seconds`                      answer late (a slow model, for cancel)

`state.consumes(body)` decides which requests take the next scripted answer (default: all). A
client that makes side calls (the Claude Code CLI asks a small model for titles / topic checks)
can be given a predicate so only the conversation's calls consume the script; the others get
`state.side_default`. Every request is recorded (`state.requests`: path, JSON body, lower-cased
headers), side calls included; `state.conversation()` lists those that consumed the script.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

CHUNK = 7  # characters per streamed text / partial_json delta

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
               404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 529: "overloaded_error"}
ERROR_MESSAGES = {429: "Number of request tokens has exceeded your per-minute rate limit", 529: "Overloaded"}


@dataclass
class RecordedCall:
    body: dict
    headers: dict[str, str]
    path: str = "/v1/messages"
    scripted: bool = False  # it consumed a scripted answer (see FakeAnthropicState.consumes)

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def tool_names(self) -> list[str]:
        return [t.get("name", "") for t in self.body.get("tools") or []]

    @property
    def system_text(self) -> str:
        """The `system` field as text (a string, or the text of its blocks)."""
        system = self.body.get("system")
        if isinstance(system, list):
            return "\n".join(b.get("text", "") for b in system if isinstance(b, dict))
        return str(system or "")


def _always(body: dict) -> bool:
    return True


@dataclass
class FakeAnthropicState:
    base_url: str = ""  # http://127.0.0.1:<port> (clients add /v1/messages themselves)
    script: list[Any] = field(default_factory=list)
    default: Any = field(default_factory=lambda: {"content": "fake answer"})
    side_default: Any = field(default_factory=lambda: {"content": "ok"})
    consumes: Callable[[dict], bool] = _always
    requests: list[RecordedCall] = field(default_factory=list)

    def reset(self) -> None:
        base = self.base_url
        self.__init__()  # type: ignore[misc]
        self.base_url = base

    def messages_calls(self) -> list[RecordedCall]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    def conversation(self) -> list[RecordedCall]:
        """The `/v1/messages` calls that took a scripted (or default) answer."""
        return [r for r in self.requests if r.scripted]


def block_text(content: Any) -> str:
    """Text of a message `content` (a string or a list of blocks; tool_result blocks included)."""
    if isinstance(content, str):
        return content
    out = []
    for block in content or []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "text":
            out.append(block.get("text", ""))
        elif block.get("type") == "tool_result":
            out.append(block_text(block.get("content")))
    return "".join(out)


def tool_results(body: dict) -> list[dict]:
    """Every `tool_result` block in a request, in order."""
    found = []
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            found.extend(b for b in content if isinstance(b, dict) and b.get("type") == "tool_result")
    return found


def last_tool_result(body: dict) -> str:
    """Text of the last `tool_result` block in a request (what the agent fed back)."""
    results = tool_results(body)
    return block_text(results[-1].get("content")) if results else ""


def answer_with_tool_result(template: str = "Done. The tool said: {result}") -> Callable[[dict], dict]:
    return lambda body: {"content": template.format(result=last_tool_result(body))}


def _tool_uses(spec: dict) -> list[dict]:
    uses = []
    for i, call in enumerate(spec.get("tool_calls") or []):
        args = call.get("arguments", {})
        uses.append({"type": "tool_use", "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:16]}{i}",
                     "name": call["name"], "input": json.loads(args) if isinstance(args, str) else args})
    return uses


def _sse(event: str, data: dict) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def error_response(spec: dict) -> JSONResponse:
    status = int(spec["status"])
    kind = spec.get("error_type") or ERROR_TYPES.get(status, "api_error")
    message = spec.get("error") or ERROR_MESSAGES.get(status, "fake failure")
    headers = {"request-id": f"req_{uuid.uuid4().hex[:16]}"}
    if status in (429, 529) and spec.get("retry_after") is not None:
        headers["retry-after"] = str(spec["retry_after"])
    return JSONResponse({"type": "error", "error": {"type": kind, "message": message}}, status_code=status,
                        headers=headers)


def build_app(state: FakeAnthropicState) -> Starlette:

    def record(request: Request, body: dict, path: str | None = None) -> RecordedCall:
        call = RecordedCall(body=body, headers={k.lower(): v for k, v in request.headers.items()},
                            path=path or request.url.path)
        state.requests.append(call)
        return call

    async def messages(request: Request):
        body = await request.json()
        call = record(request, body, "/v1/messages")
        if state.consumes(body):
            call.scripted = True
            spec = state.script.pop(0) if state.script else state.default
        else:
            spec = state.side_default
        if callable(spec):
            spec = spec(body)
        if spec.get("delay"):
            await asyncio.sleep(spec["delay"])
        if spec.get("status"):
            return error_response(spec)
        model = body.get("model", "")
        mid = f"msg_{uuid.uuid4().hex[:20]}"
        content = spec.get("content", "")
        uses = _tool_uses(spec)
        stop = "tool_use" if uses else "end_turn"
        blocks: list[dict] = ([{"type": "text", "text": content}] if content or not uses else []) + uses
        usage = {"input_tokens": 10, "output_tokens": 5, "cache_creation_input_tokens": 0,
                 "cache_read_input_tokens": 0}
        headers = {"request-id": f"req_{uuid.uuid4().hex[:16]}"}

        if not body.get("stream"):
            return JSONResponse({"id": mid, "type": "message", "role": "assistant", "model": model,
                                 "content": blocks, "stop_reason": stop, "stop_sequence": None, "usage": usage},
                                headers=headers)

        async def events():
            yield _sse("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": model, "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": {**usage, "output_tokens": 1}}})
            yield _sse("ping", {"type": "ping"})
            for index, block in enumerate(blocks):
                if block["type"] == "text":
                    yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "text", "text": ""}})
                    text = block["text"]
                    for i in range(0, len(text), CHUNK):
                        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "text_delta", "text": text[i:i + CHUNK]}})
                else:
                    yield _sse("content_block_start", {"type": "content_block_start", "index": index,
                                                       "content_block": {"type": "tool_use", "id": block["id"],
                                                                         "name": block["name"], "input": {}}})
                    args = json.dumps(block["input"])
                    for i in range(0, len(args), CHUNK):
                        yield _sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                           "delta": {"type": "input_json_delta",
                                                                     "partial_json": args[i:i + CHUNK]}})
                yield _sse("content_block_stop", {"type": "content_block_stop", "index": index})
            yield _sse("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": stop, "stop_sequence": None},
                                         "usage": {"output_tokens": usage["output_tokens"]}})
            yield _sse("message_stop", {"type": "message_stop"})

        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    async def count_tokens(request: Request):
        body = await request.json()
        record(request, body)
        return JSONResponse({"input_tokens": max(1, len(json.dumps(body.get("messages", []))) // 4)})

    async def models(request: Request):
        record(request, {})
        return JSONResponse({"data": [{"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5",
                                       "created_at": "2025-09-29T00:00:00Z"}],
                             "has_more": False, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"})

    async def anything(request: Request):
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = {"raw": raw.decode("utf-8", "replace")}
        record(request, body if isinstance(body, dict) else {"json": body})
        if request.method == "HEAD":
            return Response(status_code=200)
        return JSONResponse({})

    methods = ["GET", "POST", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"]
    return Starlette(routes=[Route("/v1/messages", messages, methods=["POST"]),
                             Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"]),
                             Route("/", anything, methods=methods),
                             Route("/{path:path}", anything, methods=methods)])


class FakeAnthropicServer:
    """The fake on a free loopback port, served by the tests' `ThreadServer` (uvicorn in a thread)."""

    def __init__(self) -> None:
        try:
            from .conftest import ThreadServer, free_port
        except ImportError:  # imported as a top-level module (tests/ on sys.path)
            from conftest import ThreadServer, free_port

        self.state = FakeAnthropicState()
        self._server = ThreadServer(build_app(self.state), free_port())
        self.port = self._server.port
        self.state.base_url = self._server.url  # http://127.0.0.1:<port>, no /v1 (clients add it)

    def start(self) -> "FakeAnthropicServer":
        self._server.__enter__()
        return self

    def stop(self) -> None:
        self._server.__exit__(None, None, None)
