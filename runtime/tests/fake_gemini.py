"""A local fake LLM server speaking Google's real Gemini API (generativelanguage `v1beta`).

- `POST /v1beta/models/{model}:generateContent` answers one `GenerateContentResponse` JSON;
- `POST /v1beta/models/{model}:streamGenerateContent?alt=sse` answers the same response split into
  SSE `data: {GenerateContentResponse}` events (text in chunks of `CHUNK` characters, function calls
  in the last event, `finishReason` + `usageMetadata` on the last one), as Gemini does.

Answers are `candidates[0].content = {"role": "model", "parts": [...]}` with `text` and
`functionCall {name, args, id}` parts, `finishReason` `STOP`, `usageMetadata` and `modelVersion`;
errors use Google's body `{"error": {"code", "message", "status"}}`. So the real `google-genai`
client (and google-adk on top of it) runs unmodified: point it here with
`http_options.base_url` or env `GOOGLE_GEMINI_BASE_URL` = `state.base_url`.

Tests script the answers in `state.script` (consumed in order; when empty, `state.default`):
- `{"text": "answer"}`                                          a final answer
- `{"function_calls": [{"name": "commit_memory", "args": {...}, "id": "fc-1"}], "text": ""}`
- `{"status": 500, "error": "boom"}`                            an HTTP error (`status` name derived)
- a callable `fn(request_body) -> one of the above`             e.g. an answer quoting a tool result
- any of them with `"delay": seconds`                           answer late (tasks/cancel tests)
- an answer with `"usage": {"promptTokenCount": n, ...}`          that `usageMetadata` (else one
  estimated from the text: a quarter of the characters, plus one)
- an answer with `"finish_reason": "MAX_TOKENS"`                  another `finishReason` than `STOP`
Every request is recorded in `state.requests` (JSON body, lower-cased headers, model, method, query).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

CHUNK = 7  # characters of text per streamed event
STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


@dataclass
class GeminiCall:
    body: dict
    headers: dict[str, str]
    model: str  # e.g. "gemini-2.5-flash" (without "models/")
    method: str  # "generateContent" or "streamGenerateContent"
    query: dict[str, str]
    path: str

    @property
    def stream(self) -> bool:
        return self.method == "streamGenerateContent"

    @property
    def contents(self) -> list[dict]:
        return self.body.get("contents", [])

    @property
    def system_text(self) -> str:
        parts = (self.body.get("systemInstruction") or {}).get("parts") or []
        return "".join(p.get("text", "") for p in parts)

    @property
    def function_declarations(self) -> list[dict]:
        return [d for tool in self.body.get("tools") or [] for d in tool.get("functionDeclarations") or []]

    @property
    def tool_names(self) -> list[str]:
        return [d["name"] for d in self.function_declarations]

    def texts(self) -> list[tuple[str, str]]:
        """[(role, text)] of the contents' text parts, in order (function parts skipped)."""
        return [(c.get("role", ""), "".join(p["text"] for p in c.get("parts") or [] if "text" in p))
                for c in self.contents if any("text" in p for p in c.get("parts") or [])]


@dataclass
class FakeGeminiState:
    base_url: str = ""  # http://127.0.0.1:<port> (the client adds /v1beta/…)
    script: list[Any] = field(default_factory=list)
    default: Any = field(default_factory=lambda: {"text": "fake gemini answer"})
    requests: list[GeminiCall] = field(default_factory=list)

    def reset(self) -> None:
        base = self.base_url
        self.__init__()  # type: ignore[misc]
        self.base_url = base


def function_responses(body: dict) -> list[dict]:
    """The `functionResponse` parts of a request, in order."""
    return [p["functionResponse"] for c in body.get("contents", []) for p in c.get("parts") or []
            if "functionResponse" in p]


def last_function_response(body: dict) -> str:
    """JSON text of the last `functionResponse.response` in a request (what the agent fed back)."""
    responses = function_responses(body)
    return json.dumps(responses[-1].get("response")) if responses else ""


def answer_with_function_response(template: str = "Done. The tool said: {result}") -> Callable[[dict], dict]:
    return lambda body: {"text": template.format(result=last_function_response(body))}


def _parts(spec: dict) -> list[dict]:
    parts: list[dict] = []
    if spec.get("text"):
        parts.append({"text": spec["text"]})
    for i, call in enumerate(spec.get("function_calls") or []):
        fc = {"name": call["name"], "args": call.get("args", {})}
        fc["id"] = call.get("id") or f"fc-{uuid.uuid4().hex[:8]}-{i}"
        parts.append({"functionCall": fc})
    return parts


def _usage(body: dict, spec: dict) -> dict:
    prompt = sum(len(p.get("text", "")) for c in body.get("contents", []) for p in c.get("parts") or []) // 4 + 1
    out = len(spec.get("text", "")) // 4 + 1
    return {"promptTokenCount": prompt, "candidatesTokenCount": out, "totalTokenCount": prompt + out}


def _response(parts: list[dict], model: str, *, finish: str | None, usage: dict | None, response_id: str) -> dict:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": model, "responseId": response_id}
    if usage:
        out["usageMetadata"] = usage
    return out


def build_app(state: FakeGeminiState) -> Starlette:

    async def generate(request: Request):
        path = request.url.path
        target = request.path_params["target"]  # "<model>:<method>" after ".../models/"
        model, _, method = target.rpartition(":")
        if method not in ("generateContent", "streamGenerateContent"):
            return JSONResponse({"error": {"code": 404, "message": f"unknown method {method!r}",
                                           "status": "NOT_FOUND"}}, status_code=404)
        body = await request.json()
        state.requests.append(GeminiCall(body=body, headers={k.lower(): v for k, v in request.headers.items()},
                                         model=model, method=method, query=dict(request.query_params), path=path))
        spec = state.script.pop(0) if state.script else state.default
        if callable(spec):
            spec = spec(body)
        if spec.get("delay"):
            await asyncio.sleep(spec["delay"])
        if spec.get("status"):
            code = int(spec["status"])
            return JSONResponse({"error": {"code": code, "message": spec.get("error", "fake failure"),
                                           "status": spec.get("status_name") or STATUS_NAMES.get(code, "UNKNOWN")}},
                                status_code=code)
        response_id = uuid.uuid4().hex[:16]
        parts = _parts(spec)
        usage = spec.get("usage") or _usage(body, spec)
        finish = spec.get("finish_reason", "STOP")
        if method == "generateContent":
            return JSONResponse(_response(parts, model, finish=finish, usage=usage, response_id=response_id))
        if request.query_params.get("alt") != "sse":
            return JSONResponse({"error": {"code": 400, "message": "this fake streams only with alt=sse",
                                           "status": "INVALID_ARGUMENT"}}, status_code=400)

        text = spec.get("text", "")
        calls = [p for p in parts if "functionCall" in p]
        pieces = [text[i:i + CHUNK] for i in range(0, len(text), CHUNK)]
        events: list[list[dict]] = [[{"text": piece}] for piece in pieces]
        if calls:
            events.append(calls)
        if not events:
            events.append([{"text": ""}])

        async def sse():
            for n, event_parts in enumerate(events):
                last = n == len(events) - 1
                payload = _response(event_parts, model, finish=finish if last else None,
                                    usage=usage if last else None, response_id=response_id)
                yield f"data: {json.dumps(payload)}\r\n\r\n"
                await asyncio.sleep(0)

        return StreamingResponse(sse(), media_type="text/event-stream")

    return Starlette(routes=[Route("/v1beta/models/{target:path}", generate, methods=["POST"])])


class FakeGeminiServer:
    """The fake on a free loopback port, served by the tests' `ThreadServer` (uvicorn in a thread)."""

    def __init__(self) -> None:
        from .conftest import ThreadServer, free_port

        self.state = FakeGeminiState()
        self._server = ThreadServer(build_app(self.state), free_port())
        self.port = self._server.port
        self.state.base_url = self._server.url

    def start(self) -> "FakeGeminiServer":
        self._server.__enter__()
        return self

    def stop(self) -> None:
        self._server.__exit__(None, None, None)
