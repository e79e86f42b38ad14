"""Tiny JSON-RPC helpers for talking to a runtime over real HTTP in tests."""

from __future__ import annotations

import json
import uuid

import httpx


def msg03(text: str, **extra) -> dict:
    return {"role": "user", "messageId": uuid.uuid4().hex, "parts": [{"kind": "text", "text": text}], **extra}


def msg10(text: str, **extra) -> dict:
    return {"role": "ROLE_USER", "messageId": uuid.uuid4().hex, "parts": [{"text": text}], **extra}


def rpc(url: str, method: str, params: dict, *, timeout: float = 10.0, headers: dict | None = None) -> dict:
    body = {"jsonrpc": "2.0", "id": uuid.uuid4().hex[:8], "method": method, "params": params}
    response = httpx.post(url + "/", json=body, timeout=timeout, headers=headers or {})
    assert response.status_code == 200, response.text
    return response.json()


def rpc_stream(url: str, method: str, params: dict, *, timeout: float = 10.0) -> list[dict]:
    body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": params}
    events = []
    with httpx.stream("POST", url + "/", json=body, timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if line.startswith("data:"):
                events.append(json.loads(line[5:]))
    return events


def send03(url: str, text: str, **params) -> dict:
    """0.3 message/send → the result (a Message dict)."""
    out = rpc(url, "message/send", {"message": msg03(text), **params})
    assert "result" in out, out
    return out["result"]
