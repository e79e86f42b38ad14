"""A local fake LLM server speaking the real OpenAI chat-completions HTTP API.

`POST /v1/chat/completions` answers non-streaming (`chat.completion` JSON) or streaming (SSE
`data: {chat.completion.chunk}` lines, then `data: [DONE]`) exactly as the request's `stream`
flag asks, so the real `openai` SDK and `langchain_openai.ChatOpenAI` code paths run unmodified.
`POST /v1/responses` is the Responses API (what the `codex` CLI speaks): a `response` object, or
with `stream: true` the SSE events `response.created`, `response.output_item.added`,
`response.output_text.delta`…, `response.output_item.done` (a `message` or `function_call` item)
and `response.completed`; a scripted error is an HTTP error with OpenAI's error body.

Tests script the answers in `state.script` (consumed in order; when empty, `state.default`):
- `{"content": "text"}`                                   a final answer
- `{"tool_calls": [{"name": "commit_memory", "arguments": {...}}], "content": ""}`  tool calls
  (Responses API: `"namespace": "mcp__x"` in a call names the `namespace` tool it belongs to)
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
        """Function names offered to the model (chat-completions `tools[].function.name`; Responses
        `tools[].name`, including the tools of a `namespace` tool, as `<namespace>__<name>`)."""
        names = []
        for tool in self.body.get("tools") or []:
            if "function" in tool:
                names.append(tool["function"]["name"])
            elif tool.get("type") == "namespace":
                names.extend(f"{tool.get('name', '')}__{t.get('name', '')}" for t in tool.get("tools") or [])
            elif tool.get("name"):
                names.append(tool["name"])
        return names

    @property
    def input(self) -> list[dict]:
        """Responses API input items (`input` as a string becomes one user message)."""
        raw = self.body.get("input", [])
        if isinstance(raw, str):
            return [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": raw}]}]
        return list(raw or [])


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
    """Content of the last `tool` message in a request (what the agent fed back); for a Responses
    API request, the output of the last `function_call_output` input item."""
    if "messages" not in body and isinstance(body.get("input"), list):
        for item in reversed(body["input"]):
            if isinstance(item, dict) and item.get("type") == "function_call_output":
                output = item.get("output")
                if isinstance(output, list):
                    return "".join(p.get("text", "") for p in output if isinstance(p, dict))
                return str(output)
        return ""
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

    async def scripted(request: Request) -> tuple[dict, dict | JSONResponse]:
        """Record the request, take the next scripted answer, wait its delay; an error spec → its response."""
        body = await request.json()
        state.requests.append(RecordedCall(body=body, headers={k.lower(): v for k, v in request.headers.items()}))
        spec = state.script.pop(0) if state.script else state.default
        if callable(spec):
            spec = spec(body)
        if spec.get("delay"):
            await asyncio.sleep(spec["delay"])
        if spec.get("status"):
            return body, JSONResponse({"error": {"message": spec.get("error", "fake failure"), "type": "server_error",
                                                 "param": None, "code": None}}, status_code=spec["status"])
        return body, spec

    async def completions(request: Request):
        body, spec = await scripted(request)
        if isinstance(spec, JSONResponse):
            return spec
        model = body.get("model", "")
        created = int(time.time())
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        content = spec.get("content", "")
        calls = _tool_calls(spec)
        finish = "tool_calls" if calls else "stop"
        prompt, completion = spec.get("usage", (10, 5))  # a spec may report bigger calls
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

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

    async def responses(request: Request):
        body, spec = await scripted(request)
        return spec if isinstance(spec, JSONResponse) else responses_answer(body, spec)

    return Starlette(routes=[Route("/v1/chat/completions", completions, methods=["POST"]),
                             Route("/v1/responses", responses, methods=["POST"]),
                             Route("/v1/models", models, methods=["GET"])])


def responses_answer(body: dict, spec: dict):
    """A Responses API answer for one scripted `spec` (text and/or function calls)."""
    model = body.get("model", "")
    rid = f"resp_{uuid.uuid4().hex[:16]}"
    content = spec.get("content", "")
    items: list[dict] = []
    if content or not spec.get("tool_calls"):
        items.append({"type": "message", "id": f"msg_{uuid.uuid4().hex[:16]}", "status": "completed",
                      "role": "assistant",
                      "content": [{"type": "output_text", "text": content, "annotations": []}]})
    for call, raw in zip(_tool_calls(spec), spec.get("tool_calls") or []):
        item = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:16]}", "status": "completed",
                "call_id": call["id"], "name": call["function"]["name"], "arguments": call["function"]["arguments"]}
        if raw.get("namespace"):  # a tool of a `namespace` tool (codex's MCP tools: `mcp__<server>`)
            item["namespace"] = raw["namespace"]
        items.append(item)
    usage = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 15}

    def response(status: str, output: list[dict]) -> dict:
        return {"id": rid, "object": "response", "created_at": int(time.time()), "status": status,
                "model": model, "output": output, "parallel_tool_calls": True, "tool_choice": "auto",
                "tools": body.get("tools") or [], "error": None, "incomplete_details": None,
                "usage": usage if status == "completed" else None}

    if not body.get("stream"):
        return JSONResponse(response("completed", items))

    seq = iter(range(1_000_000))

    def event(kind: str, **payload: Any) -> str:
        data = {"type": kind, "sequence_number": next(seq), **payload}
        return f"event: {kind}\ndata: {json.dumps(data)}\n\n"

    async def events():
        yield event("response.created", response=response("in_progress", []))
        yield event("response.in_progress", response=response("in_progress", []))
        for index, item in enumerate(items):
            if item["type"] == "message":
                text = item["content"][0]["text"]
                yield event("response.output_item.added", output_index=index,
                            item={**item, "status": "in_progress", "content": []})
                part = {"type": "output_text", "text": "", "annotations": []}
                yield event("response.content_part.added", item_id=item["id"], output_index=index,
                            content_index=0, part=part)
                for i in range(0, len(text), CHUNK):
                    yield event("response.output_text.delta", item_id=item["id"], output_index=index,
                                content_index=0, delta=text[i:i + CHUNK], logprobs=[])
                yield event("response.output_text.done", item_id=item["id"], output_index=index,
                            content_index=0, text=text, logprobs=[])
                yield event("response.content_part.done", item_id=item["id"], output_index=index,
                            content_index=0, part={**part, "text": text})
            else:
                args = item["arguments"]
                yield event("response.output_item.added", output_index=index,
                            item={**item, "status": "in_progress", "arguments": ""})
                for i in range(0, len(args), CHUNK):
                    yield event("response.function_call_arguments.delta", item_id=item["id"],
                                output_index=index, delta=args[i:i + CHUNK])
                yield event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                            arguments=args, name=item["name"])
            yield event("response.output_item.done", output_index=index, item=item)
        yield event("response.completed", response=response("completed", items))

    return StreamingResponse(events(), media_type="text/event-stream")


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
