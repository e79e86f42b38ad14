"""An A2A agent that answers every POST at once with the same JSON-RPC 2.0 result.

Raw ASGI under uvicorn, so ``bench/load.py`` can tell what the platform's A2A proxy adds to a
``message/send`` by calling this agent directly and through ``POST /workspaces/:id/a2a``.

With ``ECHO_PLATFORM_URL`` and ``ECHO_WORKSPACE_TOKEN`` set it traces itself as a workspace
runtime does by default (``molecule_runtime.telemetry``, the runtime's own setup: a
BatchSpanProcessor exporting OTLP/HTTP protobuf to ``<platform>/otlp/v1/traces`` with the
workspace's bearer token): each message is an ``a2a.task`` SERVER span, the child of the inbound
``traceparent``, holding one ``chat echo`` CLIENT span, as a task with one model call is.
``OTEL_SDK_DISABLED=true`` turns that off again.
"""

from __future__ import annotations

import json
import os

from raw_asgi import answer, read_body

RESULT = {"kind": "message", "role": "agent", "messageId": "x", "parts": [{"kind": "text", "text": "echo"}]}

telemetry = None
if os.environ.get("ECHO_PLATFORM_URL") and os.environ.get("ECHO_WORKSPACE_TOKEN"):
    from molecule_runtime import telemetry

    if not telemetry.setup_telemetry(workspace_id=os.environ.get("ECHO_WORKSPACE_ID", ""), runtime="bench-echo",
                                     platform_url=os.environ["ECHO_PLATFORM_URL"],
                                     token_provider=lambda: os.environ["ECHO_WORKSPACE_TOKEN"]):
        telemetry = None
    else:
        print("echo agent: tracing to the platform", flush=True)


def _reply(body: bytes) -> bytes:
    try:
        request_id = json.loads(body).get("id")
    except (ValueError, AttributeError):
        request_id = None
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": RESULT}, separators=(",", ":")).encode()


def _traced_reply(scope, body: bytes) -> bytes:
    headers = {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
    attributes = {"workspace.id": os.environ.get("ECHO_WORKSPACE_ID", ""), "a2a.task_id": "t", "a2a.context_id": "c"}
    with telemetry.tracer().start_as_current_span("a2a.task", context=telemetry.extract_trace_context(headers),
                                                  kind=telemetry.SpanKind.SERVER, attributes=attributes):
        call = telemetry.ChatCall("echo", provider="bench")
        reply = _reply(body)
        call.end(input_tokens=1, output_tokens=1, finish_reasons=["stop"], response_model="echo")
    return reply


async def _lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if telemetry is not None:  # what is still queued goes out, as at the runtime's shutdown
                telemetry.shutdown_telemetry()
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        await answer(send, 405, b'{"error":"POST only"}')
        return
    body = await read_body(receive)
    await answer(send, 200, _reply(body) if telemetry is None else _traced_reply(scope, body))
