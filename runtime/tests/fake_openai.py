"""A local fake LLM server speaking the real OpenAI chat-completions HTTP API.

`POST /v1/chat/completions` answers non-streaming (`chat.completion` JSON) or streaming (SSE
`data: {chat.completion.chunk}` lines, then `data: [DONE]`) exactly as the request's `stream`
flag asks, so the real `openai` SDK and `langchain_openai.ChatOpenAI` code paths run unmodified.

Tests script the answers in `state.script` (consumed in order; when empty, `state.default`):
- `{"content": "text"}`                                   a final answer
- `{"tool_calls": [{"name": "commit_memory", "arguments": {...}}], "content": ""}`  tool calls
- `{"status": 500, "error": "boom"}`                      an HTTP error with OpenAI's error body
- a callable `fn(request_body) -> one of the above`       e.g. an answer quoting the tool result
- any of them with `"delay": seconds`                     answer late (a slow model, for tasks/cancel)
Every request is recorded (`state.requests`: JSON body + lower-cased headers).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

CHUNK = 7  # characters per streamed content delta


@dataclass
class RecordedCall:
    body: dict
    headers: dict[str, str]

    @property
    def messages(self) -> list[dict]:
        return self.body.get("messages", [])

    @property
    def tool_names(self) -> list[str]:
        return [t["function"]["name"] for t in self.body.get("tools") or []]


@dataclass
class FakeOpenAIState:
    base_url: str = ""  # http://127.0.0.1:<port>/v1
    script: list[Any] = field(default_factory=list)
    default: Any = field(default_factory=lambda: {"content": "fake answer"})
    requests: list[RecordedCall] = field(default_factory=list)

    def reset(self) -> None:
        base = self.base_url
        self.__init__()  # type: ignore[misc]
        self.base_url = base


def last_tool_result(body: dict) -> str:
    """Content of the last `tool` message in a request (what the agent fed back)."""
    for message in reversed(body.get("messages", [])):
        if message.get("role") == "tool":
            content = message.get("content")
            if isinstance(content, list):  # content parts
                return "".join(p.get("text", "") for p in content if isinstance(p, dict))
            return str(content)
    return ""


def answer_with_tool_result(template: str = "Done. The tool said: {result}") -> Callable[[dict], dict]:
    return lambda body: {"content": template.format(result=last_tool_result(body))}


def _tool_calls(spec: dict) -> list[dict]:
    calls = []
    for i, call in enumerate(spec.get("tool_calls") or []):
        args = call.get("arguments", {})
        calls.append({"id": call.get("id") or f"call_{uuid.uuid4().hex[:8]}_{i}", "type": "function",
                      "function": {"name": call["name"],
                                   "arguments": args if isinstance(args, str) else json.dumps(args)}})
    return calls


def build_app(state: FakeOpenAIState) -> Starlette:

    async def completions(request: Request):
        body = await request.json()
        state.requests.append(RecordedCall(body=body, headers={k.lower(): v for k, v in request.headers.items()}))
        spec = state.script.pop(0) if state.script else state.default
        if callable(spec):
            spec = spec(body)
        if spec.get("delay"):
            await asyncio.sleep(spec["delay"])
        if spec.get("status"):
            return JSONResponse({"error": {"message": spec.get("error", "fake failure"), "type": "server_error",
                                           "param": None, "code": None}}, status_code=spec["status"])
        model = body.get("model", "")
        created = int(time.time())
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        content = spec.get("content", "")
        calls = _tool_calls(spec)
        finish = "tool_calls" if calls else "stop"
        usage = {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}

        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": content or (None if calls else "")}
            if calls:
                message["tool_calls"] = calls
            return JSONResponse({"id": cid, "object": "chat.completion", "created": created, "model": model,
                                 "choices": [{"index": 0, "message": message, "finish_reason": finish,
                                              "logprobs": None}],
                                 "usage": usage})

        def chunk(delta: dict, finish_reason: str | None = None) -> str:
            payload = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}]}
            return f"data: {json.dumps(payload)}\n\n"

        async def events():
            yield chunk({"role": "assistant", "content": ""})
            for i in range(0, len(content), CHUNK):
                yield chunk({"content": content[i:i + CHUNK]})
            for index, call in enumerate(calls):
                yield chunk({"tool_calls": [{"index": index, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]})
                args = call["function"]["arguments"]
                for i in range(0, len(args), CHUNK):
                    yield chunk({"tool_calls": [{"index": index, "function": {"arguments": args[i:i + CHUNK]}}]})
            yield chunk({}, finish)
            if (body.get("stream_options") or {}).get("include_usage"):
                yield f"data: {json.dumps({'id': cid, 'object': 'chat.completion.chunk', 'created': created, 'model': model, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    async def models(request: Request):
        return JSONResponse({"object": "list", "data": [{"id": "fake-model", "object": "model", "created": 0,
                                                         "owned_by": "fake"}]})

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])])


class FakeOpenAIServer:
    """uvicorn on a free loopback port in a background thread."""

    def __init__(self) -> None:
        self.state = FakeOpenAIState()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.state.base_url = f"http://127.0.0.1:{self.port}/v1"
        self._server = uvicorn.Server(uvicorn.Config(build_app(self.state), log_level="warning", lifespan="off",
                                                     timeout_graceful_shutdown=1))
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="fake-openai", daemon=True)

    def start(self) -> "FakeOpenAIServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake OpenAI server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()
