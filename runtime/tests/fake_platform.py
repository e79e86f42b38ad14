"""A small in-memory Molecule platform for runtime tests (runtime.md §11 "A fake platform for tests").

It speaks the platform wire contract closely enough for the runtime's client and tools, and it
records every request (method, path, query, headers, JSON body) so tests can assert on
``Authorization`` and ``X-Workspace-ID``. Tests steer it through ``FakePlatformState`` fields.

It also hosts fake peer agents at ``POST /_peers/{peer_id}`` (A2A JSON-RPC ``message/send``)
whose behaviour is chosen per peer in ``state.peer_modes``:
``"echo"`` (default; replies ``"echo: <text>"``), ``"sleep:<s>"`` (sleeps, then echoes),
``"rpc_error"`` (JSON-RPC error), ``"agent_error"`` (reply text ``"Agent error: boom"``),
``"queued"`` (HTTP 202 ``{"queued": true}``), ``"http_500"``.

Its A2A proxy (``POST /workspaces/{id}/a2a``, platform-api.md §8.4) applies the caller token
rule, forwards to the target's registered URL with ``X-Molecule-Inbound-Secret`` when
``state.inbound_secrets`` has one for the target (and never the caller's ``Authorization``),
answers an agent status >= 300 with ``{"error": ...}``, and drops the connection of the next
``state.proxy_disconnects`` calls mid-answer (a transport error for the caller).

Platform instructions: ``GET /workspaces/{id}/instructions/resolve`` answers
``state.instructions[id]`` (``""`` by default) or, with ``state.instructions_status`` set, that
error. Checkpoints: ``POST|PUT /workspaces/{id}/checkpoints``, ``GET …/checkpoints/latest``
(``?workflow_id=``), ``GET|DELETE …/checkpoints/{workflow_id}`` keep rows in
``state.checkpoints[id]`` keyed by ``(workflow_id, step_name)``; ``state.checkpoints_status`` fails them all.

Chat attachments: ``POST /workspaces/{id}/chat/uploads`` keeps each multipart ``files`` part in
``state.chat_files`` (``uri -> (bytes, mime type)``, also what ``GET /chat/download?path=``
serves) and its answer's files in ``state.uploads``.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

MEMORY_SCOPES = ("LOCAL", "TEAM", "GLOBAL")
ACTIVITY_TYPES = ("a2a_send", "a2a_receive", "task_update", "agent_log", "skill_promotion", "memory_write", "error")


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, separators=(",", ":")), status_code=status,
                    media_type="application/json; charset=utf-8")


def _bearer(request: Request) -> str | None:
    raw = request.headers.get("authorization", "").split(",")[0]
    return raw[len("Bearer "):].strip() if raw.startswith("Bearer ") else None


class DroppedConnection(Response):
    """Starts a response and fails before its body, so uvicorn closes the connection mid-answer."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"100")]})
        raise ConnectionAbortedError("fake platform drops this connection on purpose")


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    json: Any


@dataclass
class FakePlatformState:
    """Everything the fake platform knows; tests read and tweak it directly."""

    base_url: str = ""
    requests: list[Recorded] = field(default_factory=list)
    tokens: dict[str, set[str]] = field(default_factory=dict)  # workspace id -> live tokens
    token_counter: int = 0
    registered: dict[str, dict] = field(default_factory=dict)  # id -> {url, agent_card}
    heartbeats: list[dict] = field(default_factory=list)
    heartbeat_status: int = 200  # set to 500 to make every heartbeat fail
    cards: dict[str, dict] = field(default_factory=dict)
    workspaces: dict[str, dict] = field(default_factory=dict)  # GET /workspaces/:id rows
    peers: dict[str, list[dict]] = field(default_factory=dict)  # GET /registry/:id/peers
    discover_overrides: dict[str, tuple[int, dict]] = field(default_factory=dict)
    peer_modes: dict[str, str] = field(default_factory=dict)
    peer_hits: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    proxy_queued: bool = False
    proxy_disconnects: int = 0
    inbound_secrets: dict[str, str] = field(default_factory=dict)  # workspace id -> X-Molecule-Inbound-Secret
    delegations: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))  # newest first
    memories: list[dict] = field(default_factory=list)
    approvals: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    # decide every new approval after N polls: (status, decided_by, polls) or None = never
    approval_auto_decision: tuple[str, str, int] | None = None
    approval_polls: int = 0
    activity: list[dict] = field(default_factory=list)
    notifications: list[dict] = field(default_factory=list)
    chat_files: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # uri -> (bytes, mime type)
    uploads: list[list[dict]] = field(default_factory=list)  # each /chat/uploads answer's files
    awareness: dict[str, list[dict]] = field(default_factory=lambda: defaultdict(list))
    shared_context: dict[str, list[dict]] = field(default_factory=dict)  # GET /workspaces/:id/shared-context
    instructions: dict[str, str] = field(default_factory=dict)  # GET /workspaces/:id/instructions/resolve
    instructions_status: int = 200  # e.g. 404 (a platform without the route) or 500
    # POST/GET/DELETE /workspaces/:id/checkpoints…: workspace id -> {(workflow_id, step_name): row}
    checkpoints: dict[str, dict[tuple[str, str], dict]] = field(default_factory=lambda: defaultdict(dict))
    checkpoints_status: int = 200  # e.g. 500: every checkpoint call fails

    def reset(self) -> None:
        base = self.base_url
        self.__init__()  # type: ignore[misc]
        self.base_url = base

    # ----- helpers for tests
    def requests_to(self, path: str, method: str | None = None) -> list[Recorded]:
        return [r for r in self.requests if r.path == path and (method is None or r.method == method)]

    def peer_url(self, peer_id: str) -> str:
        return f"{self.base_url}/_peers/{peer_id}"

    def add_peer(self, workspace_id: str, peer_id: str, *, name: str = "Peer", mode: str = "echo",
                 role: str | None = "worker") -> None:
        """Make ``peer_id`` discoverable by ``workspace_id`` and listed among its peers."""
        self.peer_modes[peer_id] = mode
        self.registered[peer_id] = {"url": self.peer_url(peer_id), "agent_card": {"name": name}}
        self.workspaces[peer_id] = {"id": peer_id, "name": name, "role": role, "status": "online"}
        self.peers.setdefault(workspace_id, []).append({
            "id": peer_id, "name": name, "role": role, "tier": 1, "status": "online",
            "agent_card": None, "url": "", "parent_id": None, "active_tasks": 0,
        })


def build_app(state: FakePlatformState) -> Starlette:

    async def record(request: Request) -> Any:
        raw = await request.body()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        state.requests.append(Recorded(
            method=request.method, path=request.url.path, query=dict(request.query_params),
            headers={k.lower(): v for k, v in request.headers.items()}, json=body,
        ))
        return body

    def token_error(request: Request, workspace_id: str, subject: str = "workspace") -> Response | None:
        """Registry/WorkspaceAuth rule (and, with subject "caller", the A2A caller rule): once a
        workspace has a token, the bearer must match it."""
        live = state.tokens.get(workspace_id)
        if not live:
            return None
        token = _bearer(request)
        if token is None:
            return _json({"error": f"missing {subject} auth token"}, 401)
        if token not in live:
            return _json({"error": f"invalid {subject} auth token"}, 401)
        return None

    # ------------------------------------------------------------------ registry
    async def register(request: Request) -> Response:
        body = await record(request)
        if not isinstance(body, dict) or not body.get("id") or not body.get("url") or not body.get("agent_card"):
            return _json({"error": "invalid request body"}, 400)
        ws = body["id"]
        if (err := token_error(request, ws)) is not None:
            return err
        state.registered[ws] = {"url": body["url"], "agent_card": body["agent_card"]}
        if not state.tokens.get(ws):
            state.token_counter += 1
            token = f"tok-{ws}-{state.token_counter}"
            state.tokens[ws] = {token}
            return _json({"status": "registered", "auth_token": token})
        return _json({"status": "registered"})

    async def heartbeat(request: Request) -> Response:
        body = await record(request)
        if not isinstance(body, dict) or not body.get("workspace_id"):
            return _json({"error": "invalid request body"}, 400)
        if (err := token_error(request, body["workspace_id"])) is not None:
            return err
        if state.heartbeat_status != 200:
            return _json({"error": "failed to update"}, state.heartbeat_status)
        state.heartbeats.append(body)
        return _json({"status": "ok"})

    async def update_card(request: Request) -> Response:
        body = await record(request)
        if not isinstance(body, dict) or not body.get("workspace_id") or not body.get("agent_card"):
            return _json({"error": "invalid request body"}, 400)
        if (err := token_error(request, body["workspace_id"])) is not None:
            return err
        state.cards[body["workspace_id"]] = body["agent_card"]
        return _json({"status": "updated"})

    async def discover(request: Request) -> Response:
        await record(request)
        caller = request.headers.get("x-workspace-id")
        if not caller:
            return _json({"error": "X-Workspace-ID header is required"}, 400)
        if (err := token_error(request, caller)) is not None:
            return err
        target = request.path_params["id"]
        if target in state.discover_overrides:
            status, body = state.discover_overrides[target]
            return _json(body, status)
        if target not in state.registered:
            return _json({"error": "workspace not found"}, 404)
        name = state.workspaces.get(target, {}).get("name", target)
        return _json({"id": target, "url": state.registered[target]["url"], "name": name})

    async def peers(request: Request) -> Response:
        await record(request)
        ws = request.path_params["id"]
        if (err := token_error(request, ws)) is not None:
            return err
        return _json(state.peers.get(ws, []))

    # ------------------------------------------------------------------ workspaces
    async def workspace_get(request: Request) -> Response:
        await record(request)
        ws = request.path_params["id"]
        if ws not in state.workspaces:
            return _json({"error": "workspace not found"}, 404)
        return _json(state.workspaces[ws])

    async def a2a_proxy(request: Request) -> Response:
        body = await record(request)
        target = request.path_params["id"]
        caller = request.headers.get("x-workspace-id")
        if caller and caller != target and (err := token_error(request, caller, "caller")) is not None:
            return err
        if state.proxy_disconnects > 0:
            state.proxy_disconnects -= 1
            return DroppedConnection()
        if state.proxy_queued:
            return _json({"queued": True, "queue_id": str(uuid.uuid4()), "queue_depth": 1,
                          "message": "workspace agent busy — request queued, will dispatch when capacity available"},
                         202)
        if target not in state.registered:
            return _json({"error": "workspace not found"}, 404)
        if not isinstance(body, dict):
            return _json({"error": "invalid JSON"}, 400)
        if "jsonrpc" not in body:
            body = {"jsonrpc": "2.0", "id": str(uuid.uuid4()), "method": body.get("method"),
                    "params": body.get("params")}
        message = (body.get("params") or {}).get("message")
        if isinstance(message, dict) and "messageId" not in message:
            message["messageId"] = str(uuid.uuid4())
        secret = state.inbound_secrets.get(target)
        headers = {"X-Molecule-Inbound-Secret": secret} if secret else {}
        async with httpx.AsyncClient(timeout=30) as http:
            try:
                resp = await http.post(state.registered[target]["url"], json=body, headers=headers)
            except httpx.HTTPError:
                return _json({"error": "failed to reach workspace agent"}, 502)
        if resp.status_code >= 300:
            try:
                agent_error = resp.json().get("error")
            except (ValueError, AttributeError):
                agent_error = None
            message = agent_error if isinstance(agent_error, str) else resp.reason_phrase
            return _json({"error": message}, resp.status_code)
        return Response(resp.content, status_code=resp.status_code, media_type="application/json")

    def workspace_auth(handler):
        async def wrapped(request: Request) -> Response:
            if (err := token_error(request, request.path_params["id"])) is not None:
                await record(request)
                return err
            return await handler(request)
        return wrapped

    async def delegate(request: Request) -> Response:
        body = await record(request)
        ws = request.path_params["id"]
        if not isinstance(body, dict) or not body.get("target_id") or not body.get("task"):
            return _json({"error": "invalid delegation request"}, 400)
        if body["target_id"] == ws:
            return _json({"error": "self-delegation not permitted"}, 400)
        key = body.get("idempotency_key")
        for row in state.delegations[ws]:
            if key and row.get("idempotency_key") == key:
                return _json({"delegation_id": row["delegation_id"], "status": row["status"],
                              "target_id": row["target_id"], "idempotent_hit": True})
        delegation_id = str(uuid.uuid4())
        state.delegations[ws].insert(0, {
            "id": str(uuid.uuid4()), "type": "delegation", "source_id": ws, "target_id": body["target_id"],
            "summary": f"Delegating to {body['target_id']}", "status": "pending", "created_at": _now(),
            "delegation_id": delegation_id, "idempotency_key": key, "task": body["task"],
        })
        return _json({"delegation_id": delegation_id, "status": "delegated", "target_id": body["target_id"]}, 202)

    async def delegations_list(request: Request) -> Response:
        await record(request)
        rows = [{k: v for k, v in row.items() if k not in ("idempotency_key", "task")}
                for row in state.delegations[request.path_params["id"]]]
        return _json(rows[:50])

    async def delegations_record(request: Request) -> Response:
        body = await record(request)
        if not isinstance(body, dict) or not all(body.get(k) for k in ("target_id", "task", "delegation_id")):
            return _json({"error": "invalid request body"}, 400)
        ws = request.path_params["id"]
        state.delegations[ws].insert(0, {
            "id": str(uuid.uuid4()), "type": "delegation", "source_id": ws, "target_id": body["target_id"],
            "summary": f"Delegating to {body['target_id']}", "status": "dispatched", "created_at": _now(),
            "delegation_id": body["delegation_id"],
        })
        return _json({"delegation_id": body["delegation_id"], "status": "recorded"}, 202)

    async def delegations_update(request: Request) -> Response:
        body = await record(request)
        status = body.get("status") if isinstance(body, dict) else None
        if status not in ("completed", "failed"):
            return _json({"error": "status must be 'completed' or 'failed'"}, 400)
        did = request.path_params["delegation_id"]
        for row in state.delegations[request.path_params["id"]]:
            if row.get("delegation_id") == did:
                row["status"] = status
                if body.get("error"):
                    row["error"] = body["error"]
                if body.get("response_preview"):
                    row["response_preview"] = body["response_preview"][:300]
        return _json({"status": status, "delegation_id": did})

    async def memories(request: Request) -> Response:
        body = await record(request)
        ws = request.path_params["id"]
        if request.method == "POST":
            if not isinstance(body, dict) or not body.get("content") or not body.get("scope"):
                return _json({"error": "invalid request body"}, 400)
            if body["scope"] not in MEMORY_SCOPES:
                return _json({"error": "scope must be LOCAL, TEAM, or GLOBAL"}, 400)
            row = {"id": str(uuid.uuid4()), "workspace_id": ws, "content": body["content"], "scope": body["scope"],
                   "namespace": body.get("namespace") or "general", "created_at": _now()}
            state.memories.insert(0, row)
            return _json({"id": row["id"], "scope": row["scope"], "namespace": row["namespace"]}, 201)
        scope = request.query_params.get("scope", "")
        q = request.query_params.get("q", "").lower()
        rows = [m for m in state.memories
                if (m["scope"] == scope if scope else m["workspace_id"] == ws)
                and (not q or q in m["content"].lower())]
        return _json(rows[:50])

    async def activity(request: Request) -> Response:
        body = await record(request)
        if request.method == "GET":
            return _json(list(reversed(state.activity)))
        if not isinstance(body, dict) or not body.get("activity_type"):
            return _json({"error": "invalid request body"}, 400)
        if body["activity_type"] not in ACTIVITY_TYPES:
            return _json({"error": "invalid activity_type, must be one of: " + ", ".join(ACTIVITY_TYPES)}, 400)
        source = body.get("source_id")
        if source and source != request.path_params["id"]:
            return _json({"error": "source_id must match authenticated workspace"}, 403)
        state.activity.append(body)
        return _json({"status": "logged"})

    async def notify(request: Request) -> Response:
        body = await record(request)
        if not isinstance(body, dict) or not body.get("message"):
            return _json({"error": "message is required"}, 400)
        state.notifications.append(body)
        return _json({"status": "sent"})

    async def chat_uploads(request: Request) -> Response:
        """Stores each multipart ``files`` part in ``state.chat_files`` as the platform would name it."""
        raw = await request.body()
        state.requests.append(Recorded(method="POST", path=request.url.path, query={},
                                       headers={k.lower(): v for k, v in request.headers.items()}, json=None))
        head = f"Content-Type: {request.headers.get('content-type', '')}\r\n\r\n".encode()
        form = email.message_from_bytes(head + raw, policy=email.policy.HTTP)
        if not form.is_multipart():
            return _json({"error": "expected a multipart/form-data body"}, 400)
        stored = []
        for part in form.iter_parts():
            if part.get_param("name", header="content-disposition") != "files":
                continue
            name = part.get_filename() or "file"
            data = part.get_payload(decode=True) or b""
            uri = f"workspace:/workspace/.molecule/chat-uploads/{uuid.uuid4().hex}-{name}"
            state.chat_files[uri] = (data, part.get_content_type())
            stored.append({"uri": uri, "name": name, "mimeType": part.get_content_type(), "size": len(data)})
        if not stored:
            return _json({"error": "no files uploaded (multipart field 'files')"}, 400)
        state.uploads.append(stored)
        return _json({"files": stored})

    async def chat_download(request: Request) -> Response:
        await record(request)
        path = request.query_params.get("path", "")
        found = state.chat_files.get(path) or state.chat_files.get(f"workspace:{path}")
        if found is None:
            return _json({"error": "file not found"}, 404)
        data, mime = found
        return Response(data, media_type=mime, headers={"Content-Disposition": "attachment"})

    async def approvals(request: Request) -> Response:
        body = await record(request)
        ws = request.path_params["id"]
        if request.method == "POST":
            if not isinstance(body, dict) or not body.get("action"):
                return _json({"error": "invalid request body"}, 400)
            row = {"id": str(uuid.uuid4()), "task_id": body.get("task_id"), "action": body["action"],
                   "reason": body.get("reason"), "status": "pending", "decided_by": None, "decided_at": None,
                   "created_at": _now()}
            state.approvals[ws].insert(0, row)
            state.approval_polls = 0
            return _json({"approval_id": row["id"], "status": "pending"}, 201)
        state.approval_polls += 1
        auto = state.approval_auto_decision
        if auto and state.approval_polls >= auto[2]:
            for row in state.approvals[ws]:
                if row["status"] == "pending":
                    row.update(status=auto[0], decided_by=auto[1], decided_at=_now())
        return _json(state.approvals[ws][:50])

    async def shared_context(request: Request) -> Response:
        await record(request)
        return _json(state.shared_context.get(request.path_params["id"], []))

    async def instructions_resolve(request: Request) -> Response:
        await record(request)
        if state.instructions_status != 200:
            return _json({"error": "instructions unavailable"}, state.instructions_status)
        ws = request.path_params["id"]
        return _json({"workspace_id": ws, "instructions": state.instructions.get(ws, "")})

    async def checkpoints_write(request: Request) -> Response:
        body = await record(request)
        if state.checkpoints_status != 200:
            return _json({"error": "checkpoints unavailable"}, state.checkpoints_status)
        ws = request.path_params["id"]
        key = (body["workflow_id"], body["step_name"])
        old = state.checkpoints[ws].get(key)
        now = _now()
        row = {"id": old["id"] if old else str(uuid.uuid4()), "workspace_id": ws, "workflow_id": key[0],
               "step_name": key[1], "step_index": body.get("step_index", 0), "payload": body.get("payload", {}),
               "created_at": old["created_at"] if old else now, "updated_at": now}
        state.checkpoints[ws].pop(key, None)
        state.checkpoints[ws][key] = row  # insertion order = last written last
        return _json(row, 200 if old else 201)

    async def checkpoints_latest(request: Request) -> Response:
        await record(request)
        if state.checkpoints_status != 200:
            return _json({"error": "checkpoints unavailable"}, state.checkpoints_status)
        rows = list(state.checkpoints[request.path_params["id"]].values())
        wf = request.query_params.get("workflow_id")
        if wf:
            rows = sorted((r for r in rows if r["workflow_id"] == wf), key=lambda r: r["step_index"])
        if not rows:
            return _json({"error": "no checkpoint found"}, 404)
        return _json(rows[-1])

    async def checkpoints_workflow(request: Request) -> Response:
        await record(request)
        if state.checkpoints_status != 200:
            return _json({"error": "checkpoints unavailable"}, state.checkpoints_status)
        steps = state.checkpoints[request.path_params["id"]]
        wf = request.path_params["wfid"]
        mine = [k for k, r in steps.items() if r["workflow_id"] == wf]
        if request.method == "DELETE":
            for k in mine:
                del steps[k]
            return _json({"status": "deleted", "deleted": len(mine)})
        return _json(sorted((steps[k] for k in mine), key=lambda r: r["step_index"]))

    # ------------------------------------------------------------------ fake peers & awareness
    async def peer_agent(request: Request) -> Response:
        body = await record(request)
        pid = request.path_params["peer_id"]
        state.peer_hits[pid] += 1
        mode = state.peer_modes.get(pid, "echo")
        rpc_id = body.get("id") if isinstance(body, dict) else None
        if mode.startswith("sleep:"):
            await asyncio.sleep(float(mode.split(":", 1)[1]))
        if mode == "queued":
            return _json({"queued": True, "queue_id": "q-1", "queue_depth": 1, "message": "busy"}, 202)
        if mode == "http_500":
            return _json({"error": "internal error"}, 500)
        if mode == "rpc_error":
            return _json({"jsonrpc": "2.0", "id": rpc_id, "error": {"code": -32603, "message": "kaput"}})
        try:
            text = body["params"]["message"]["parts"][0]["text"]
        except (KeyError, IndexError, TypeError):
            text = ""
        reply = "Agent error: boom" if mode == "agent_error" else f"echo: {text}"
        return _json({"jsonrpc": "2.0", "id": rpc_id, "result": {
            "kind": "message", "role": "agent", "messageId": str(uuid.uuid4()),
            "parts": [{"kind": "text", "text": reply}],
        }})

    async def awareness(request: Request) -> Response:
        body = await record(request)
        ns = request.path_params["ns"]
        if request.method == "POST":
            row = {"id": f"aw-{len(state.awareness[ns]) + 1}", **(body or {})}
            state.awareness[ns].append(row)
            return _json({"id": row["id"]}, 201)
        return _json({"memories": state.awareness[ns]})

    wa = workspace_auth
    routes = [
        Route("/registry/register", register, methods=["POST"]),
        Route("/registry/heartbeat", heartbeat, methods=["POST"]),
        Route("/registry/update-card", update_card, methods=["POST"]),
        Route("/registry/discover/{id}", discover, methods=["GET"]),
        Route("/registry/{id}/peers", peers, methods=["GET"]),
        Route("/workspaces/{id}", workspace_get, methods=["GET"]),
        Route("/workspaces/{id}/a2a", a2a_proxy, methods=["POST"]),
        Route("/workspaces/{id}/delegate", wa(delegate), methods=["POST"]),
        Route("/workspaces/{id}/delegations", wa(delegations_list), methods=["GET"]),
        Route("/workspaces/{id}/delegations/record", wa(delegations_record), methods=["POST"]),
        Route("/workspaces/{id}/delegations/{delegation_id}/update", wa(delegations_update), methods=["POST"]),
        Route("/workspaces/{id}/memories", wa(memories), methods=["GET", "POST"]),
        Route("/workspaces/{id}/activity", wa(activity), methods=["GET", "POST"]),
        Route("/workspaces/{id}/notify", wa(notify), methods=["POST"]),
        Route("/workspaces/{id}/chat/uploads", wa(chat_uploads), methods=["POST"]),
        Route("/workspaces/{id}/chat/download", wa(chat_download), methods=["GET"]),
        Route("/workspaces/{id}/approvals", wa(approvals), methods=["GET", "POST"]),
        Route("/workspaces/{id}/shared-context", wa(shared_context), methods=["GET"]),
        Route("/workspaces/{id}/instructions/resolve", wa(instructions_resolve), methods=["GET"]),
        Route("/workspaces/{id}/checkpoints", wa(checkpoints_write), methods=["POST", "PUT"]),
        Route("/workspaces/{id}/checkpoints/latest", wa(checkpoints_latest), methods=["GET"]),
        Route("/workspaces/{id}/checkpoints/{wfid}", wa(checkpoints_workflow), methods=["GET", "DELETE"]),
        Route("/_peers/{peer_id}", peer_agent, methods=["POST"]),
        Route("/_awareness/api/v1/namespaces/{ns}/memories", awareness, methods=["GET", "POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.fake = state
    return app


class FakePlatformServer:
    """Runs the fake platform with uvicorn on a free loopback port in a background thread."""

    def __init__(self) -> None:
        self.state = FakePlatformState()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.state.base_url = self.url
        config = uvicorn.Config(build_app(self.state), log_level="warning", lifespan="off",
                                timeout_graceful_shutdown=1)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._sock]},
                                        name="fake-platform", daemon=True)

    def start(self) -> "FakePlatformServer":
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake platform did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=5)
        self._sock.close()
