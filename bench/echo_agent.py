"""An A2A agent that answers every POST at once with the same JSON-RPC 2.0 result.

Raw ASGI under uvicorn, so ``bench/load.py`` can tell what the platform's A2A proxy adds to a
``message/send`` by calling this agent directly and through ``POST /workspaces/:id/a2a``.
"""

from __future__ import annotations

import json

from raw_asgi import answer, read_body


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["method"] != "POST":
        body, status = b'{"error":"POST only"}', 405
    else:
        try:
            request_id = json.loads(await read_body(receive)).get("id")
        except (ValueError, AttributeError):
            request_id = None
        result = {"kind": "message", "role": "agent", "messageId": "x", "parts": [{"kind": "text", "text": "echo"}]}
        body = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result}, separators=(",", ":")).encode()
        status = 200
    await answer(send, status, body)
