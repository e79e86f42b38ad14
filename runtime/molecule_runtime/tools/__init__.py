"""Built-in tools every agent gets (runtime.md §7.1–§7.3): memory, delegation, peers, approvals,
activity. ``build_tools(client)`` returns ``{name: async callable}``.

Contract for adapters: each tool is an ``async def`` with type-annotated keyword-compatible
parameters and a docstring whose first paragraph describes it to the model (see
``tool_schemas``). Tools return JSON-serialisable dicts and never raise for expected failures:
errors come back as ``{"error": "..."}`` (usually with ``"success": False``) so an LLM can read
them and decide what to do.

Environment (re-read on every call so tests and operators can change it):
``DELEGATION_TIMEOUT`` (300 s), ``DELEGATION_RETRY_ATTEMPTS`` (3), ``DELEGATION_RETRY_DELAY``
(5 s × attempt number, connect/timeout errors only), ``APPROVAL_TIMEOUT`` (300 s),
``APPROVAL_POLL_INTERVAL`` (5 s), ``AWARENESS_URL`` / ``AWARENESS_NAMESPACE`` (memory backend).
Approvals are awaited by polling ``GET /workspaces/:id/approvals``; the original's optional
WebSocket wait (``APPROVAL_USE_WEBSOCKET``) is not implemented.
"""

from __future__ import annotations

import asyncio
import hashlib
import inspect
import json
import logging
import os
import time
import uuid
from typing import Any, Awaitable, Callable

import httpx

from molecule_runtime.a2a_reply import reply_text
from molecule_runtime.attachments import files_to_send
from molecule_runtime.platform import PlatformClient, PlatformError
from molecule_runtime.telemetry import traced_tool
from molecule_runtime.tools.redact import redact_secrets

logger = logging.getLogger(__name__)

Tool = Callable[..., Awaitable[Any]]

MEMORY_SCOPES = ("LOCAL", "TEAM", "GLOBAL")
ACTIVITY_TYPES = ("a2a_send", "a2a_receive", "task_update", "agent_log", "skill_promotion", "memory_write", "error")
SCOPE_ERROR = "scope must be LOCAL, TEAM, or GLOBAL"
DELEGATION_FAILED_HINT = (
    "You should either: (1) try a different peer, (2) handle this task yourself, or (3) inform the user."
)


# ---------------------------------------------------------------------------------- helpers
def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        logger.warning("%s=%r is not a number; using %s", name, raw, default)
        return default
    return value if value >= 0 else default


def _env_int(name: str, default: int) -> int:
    return max(1, int(_env_float(name, float(default))))


def _fmt_seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def idempotency_key(target_id: str, task: str) -> str:
    """First 32 hex chars of sha256("<target>:<task>") (runtime.md §4.3)."""
    return hashlib.sha256(f"{target_id}:{task}".encode()).hexdigest()[:32]


def sse_results(body: str) -> list:
    """The JSON-RPC ``result`` of each ``data:`` event of a streamed answer (``message/stream``)."""
    results = []
    for line in body.splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:].strip())
        except ValueError:
            continue
        if isinstance(event, dict) and "result" in event:
            results.append(event["result"])
    return results


def _error(message: str, **extra: Any) -> dict:
    return {"success": False, "error": message, **extra}


def tool_schemas(tools: dict[str, Tool]) -> list[dict]:
    """OpenAI-style function schemas derived from the tools' signatures and docstrings."""
    kinds = {str: "string", int: "integer", float: "number", bool: "boolean", dict: "object", list: "array"}
    schemas = []
    for name, fn in tools.items():
        sig = inspect.signature(fn)
        hints = getattr(fn, "__annotations__", {})
        props: dict[str, Any] = {}
        required = []
        for pname, param in sig.parameters.items():
            hint = hints.get(pname, str)
            if isinstance(hint, str):  # postponed annotations
                hint = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict, "list": list}.get(
                    hint.split("|")[0].strip(), str
                )
            props[pname] = {"type": kinds.get(hint, "string")}
            if hint is list:
                props[pname]["items"] = {"type": "string"}  # providers want an item type; ours take strings
            if param.default is inspect.Parameter.empty:
                required.append(pname)
        doc = inspect.getdoc(fn) or name
        schemas.append({
            "type": "function",
            "function": {
                "name": name,
                "description": doc.split("\n\n")[0].replace("\n", " "),
                "parameters": {"type": "object", "properties": props, "required": required},
            },
        })
    return schemas


def skill_promotion_packet(content: str) -> dict | None:
    """The memory packet when ``content`` asks to be promoted to a skill (runtime §6.4), else None."""
    text = (content or "").strip()
    if not text.startswith("{"):
        return None
    try:
        packet = json.loads(text)
    except ValueError:
        return None
    return packet if isinstance(packet, dict) and packet.get("promote_to_skill") else None


# ---------------------------------------------------------------------------------- tools
def build_tools(client: PlatformClient) -> dict[str, Tool]:
    """The built-in tools bound to one workspace's platform client."""

    ws = client.workspace_id

    async def _log_activity(activity_type: str, **fields: Any) -> None:
        try:
            await client.activity(activity_type=activity_type, **fields)
        except Exception as exc:  # noqa: BLE001 — activity is best-effort
            logger.debug("activity report failed: %s", exc)

    def _awareness() -> tuple[str, str] | None:
        base = os.environ.get("AWARENESS_URL", "").strip().rstrip("/")
        namespace = os.environ.get("AWARENESS_NAMESPACE", "").strip() or (f"workspace:{ws}" if ws else "")
        if base and namespace:
            return base, namespace
        return None

    # ------------------------------------------------------------------ memory
    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        """Save a fact to long-term memory so you (or your team) can recall it later.

        scope: LOCAL (only you), TEAM (your parent and siblings) or GLOBAL (everyone; root
        workspaces only). Secrets in the content are redacted before it is stored.
        """
        scope = (scope or "LOCAL").strip().upper()
        if scope not in MEMORY_SCOPES:
            return {"error": SCOPE_ERROR}
        if not content or not str(content).strip():
            return _error("content is required")
        content = redact_secrets(str(content))
        awareness = _awareness()
        try:
            if awareness:
                base, namespace = awareness
                async with httpx.AsyncClient(timeout=10.0) as http:
                    resp = await http.post(
                        f"{base}/api/v1/namespaces/{namespace}/memories", json={"content": content, "scope": scope}
                    )
                if resp.status_code not in (200, 201):
                    return _error(f"awareness HTTP {resp.status_code}: {resp.text[:200]}")
                memory_id = str((resp.json() or {}).get("id", ""))
            else:
                body = await client.commit_memory(content=content, scope=scope)
                memory_id = str(body.get("id", ""))
        except (PlatformError, httpx.HTTPError, ValueError) as exc:
            return _error(str(exc))
        preview = content[:80] + ("…" if len(content) > 80 else "")
        await _log_activity(
            "memory_write", workspace_id=ws, summary=f"[{scope}] {preview} (id={memory_id[:24]})", status="ok"
        )
        await _maybe_log_skill_promotion(content, scope, memory_id)
        return {"success": True, "id": memory_id, "scope": scope}

    async def _maybe_log_skill_promotion(content: str, scope: str, memory_id: str) -> None:
        """Runtime §6.4: a memory that is a JSON object with a truthy ``promote_to_skill`` is a
        repeated, successful procedure worth a skill. Recorded as a ``skill_promotion`` activity
        (the platform lists it as a promotion candidate), then announced in a heartbeat's
        ``current_task``. Best effort, 5 s, with the workspace's token (HEAD sent neither with auth)."""
        packet = skill_promotion_packet(content)
        if packet is None:
            return
        summary = str(packet.get("summary") or packet.get("title") or packet.get("what changed")
                      or "Repeatable workflow promoted to skill candidate")[:256]
        try:
            await asyncio.wait_for(client.activity(
                activity_type="skill_promotion", method="memory/skill-promotion", summary=summary, status="ok",
                source_id=ws, request_body=packet,
                metadata={"source": "memory-curation", "scope": scope, "memory_id": memory_id,
                          "promote_to_skill": True, "repetition_signal": packet.get("repetition_signal"),
                          "memory_packet": packet},
            ), timeout=5.0)
            await asyncio.wait_for(client.heartbeat({
                "active_tasks": 1, "current_task": f"Skill promotion: {summary}"[:256]}), timeout=5.0)
        except Exception as exc:  # noqa: BLE001 — the memory is saved whatever happens here
            logger.debug("skill promotion signal failed: %s", exc)

    async def search_memory(query: str = "", scope: str = "") -> dict:
        """Search long-term memory. Empty query lists recent memories; scope LOCAL, TEAM, GLOBAL or empty for your own."""
        scope = (scope or "").strip().upper()
        if scope and scope not in MEMORY_SCOPES:
            return {"error": SCOPE_ERROR}
        awareness = _awareness()
        try:
            if awareness:
                base, namespace = awareness
                params = {k: v for k, v in {"q": query, "scope": scope}.items() if v}
                async with httpx.AsyncClient(timeout=10.0) as http:
                    resp = await http.get(f"{base}/api/v1/namespaces/{namespace}/memories", params=params)
                if resp.status_code != 200:
                    return _error(f"awareness HTTP {resp.status_code}: {resp.text[:200]}")
                data = resp.json()
                memories = data.get("memories", []) if isinstance(data, dict) else data
            else:
                memories = await client.memories(q=query or "", scope=scope)
        except (PlatformError, httpx.HTTPError, ValueError) as exc:
            return _error(str(exc))
        return {"success": True, "count": len(memories), "memories": memories}

    # ------------------------------------------------------------------ peers
    async def list_peers() -> dict:
        """List the workspaces you may talk to (siblings, children, parent) with their id, name, role and status."""
        try:
            peers = await client.peers()
        except PlatformError as exc:
            return _error(str(exc))
        items = [
            {
                "id": p.get("id"),
                "name": p.get("name"),
                "role": p.get("role"),
                "status": p.get("status"),
                "tier": p.get("tier"),
                "parent_id": p.get("parent_id"),
                "active_tasks": p.get("active_tasks"),
            }
            for p in peers
            if isinstance(p, dict)
        ]
        result: dict[str, Any] = {"success": True, "count": len(items), "peers": items}
        if not items:
            result["message"] = "No peers available (this workspace may be isolated)"
        return result

    # ------------------------------------------------------------------ delegation
    async def delegate_task(workspace_id: str, task: str) -> dict:
        """Send a task to a peer workspace and wait for its answer (synchronous delegation).

        Asks the platform about the peer, then sends the task through the platform's A2A proxy.
        Use list_peers to find workspace ids. For long work prefer delegate_task_async.
        """
        # Discovery checks that we may talk to the peer and gives its name; the URL it returns is
        # not used: only the platform proxy gets our bearer token (platform.py).
        if not workspace_id or not task:
            return _error("workspace_id and task are required")
        try:
            peer = await client.discover(workspace_id)
        except PlatformError as exc:
            return _error(f"DELEGATION FAILED to {workspace_id}: discovery failed: {exc}. {DELEGATION_FAILED_HINT}",
                          workspace_id=workspace_id)
        name = (peer.get("name") if isinstance(peer, dict) else None) or workspace_id

        timeout = _env_float("DELEGATION_TIMEOUT", 300.0)
        attempts = _env_int("DELEGATION_RETRY_ATTEMPTS", 3)
        delay = _env_float("DELEGATION_RETRY_DELAY", 5.0)
        http_timeout = httpx.Timeout(timeout, connect=min(30.0, timeout))
        task_id = uuid.uuid4().hex[:12]
        target = f"[target={workspace_id}]"
        started = time.monotonic()
        await _log_activity("a2a_send", target_id=workspace_id, method="message/send",
                            summary=f"Delegating to {name}"[:256], status="ok")

        async def finish(result: dict, *, ok: bool, detail: str = "") -> dict:
            await _log_activity(
                "a2a_receive", target_id=workspace_id, method="message/send",
                summary=(f"Reply from {name}" if ok else f"Delegation to {name} failed")[:256],
                status="ok" if ok else "error", error_detail=(detail[:4096] or None),
                duration_ms=int((time.monotonic() - started) * 1000),
            )
            return result

        def failed(detail: str, **extra: Any) -> dict:
            return _error(f"DELEGATION FAILED to {name}: {detail}. {DELEGATION_FAILED_HINT}",
                          workspace_id=workspace_id, **extra)

        last_error = ""
        for attempt in range(1, attempts + 1):
            try:
                response = await client.a2a_via_proxy(
                    workspace_id, task, timeout=http_timeout, request_id=f"delegation-{task_id}-{attempt}",
                    metadata={"parent_task_id": task_id},
                )
            except (httpx.TimeoutException, httpx.ConnectError, httpx.RemoteProtocolError) as exc:
                last_error = f"[A2A_ERROR] {type(exc).__name__}: {exc or 'timed out'} {target}"
                logger.info("delegation attempt %d/%d to %s failed: %s", attempt, attempts, workspace_id, last_error)
                if attempt < attempts:
                    await asyncio.sleep(delay * attempt)
                continue
            except httpx.HTTPError as exc:
                detail = f"[A2A_ERROR] {type(exc).__name__}: {exc} {target}"
                return await finish(failed(detail, attempts=attempt), ok=False, detail=detail)

            if response.headers.get("content-type", "").startswith("text/event-stream"):
                body = {"result": sse_results(response.text)}  # a peer that streamed its answer
            else:
                try:
                    body = response.json()
                except ValueError:
                    body = None
            if response.status_code == 202 and isinstance(body, dict) and body.get("queued"):
                return await finish({
                    "success": True, "status": "queued", "workspace_id": workspace_id,
                    "message": f"{name} is busy; the task was queued and will run when it has capacity. "
                               "Do not retry and do not do the work yourself.",
                    "queue_id": body.get("queue_id"),
                }, ok=True)
            if response.status_code >= 400 or not isinstance(body, dict):
                err = body.get("error") if isinstance(body, dict) else None
                detail = f"[A2A_ERROR] HTTP {response.status_code}: {err or response.text[:200]} {target}"
                return await finish(failed(detail, attempts=attempt), ok=False, detail=detail)
            if body.get("error") is not None:
                err = body["error"]
                if isinstance(err, dict):
                    detail = f"[A2A_ERROR] {err.get('message', err)} (code={err.get('code')}) {target}"
                else:
                    detail = f"[A2A_ERROR] {err} {target}"
                return await finish(failed(detail, attempts=attempt), ok=False, detail=detail)
            text = reply_text(body.get("result"))
            if text.startswith("Agent error:"):
                detail = f"[A2A_ERROR] {text}"
                return await finish(failed(detail, attempts=attempt), ok=False, detail=detail)
            return await finish({"success": True, "workspace_id": workspace_id, "peer": name, "response": text},
                                ok=True)
        return await finish(failed(last_error or "no attempt made", attempts=attempts), ok=False, detail=last_error)

    async def delegate_task_async(workspace_id: str, task: str) -> dict:
        """Hand a task to a peer workspace through the platform and return at once with a delegation_id.

        Check progress later with check_delegation_status. Do not do the delegated work yourself.
        """
        if not workspace_id or not task:
            return _error("workspace_id and task are required")
        try:
            body = await client.delegate(target_id=workspace_id, task=task,
                                         idempotency_key=idempotency_key(workspace_id, task))
        except PlatformError as exc:
            return _error(str(exc), workspace_id=workspace_id)
        result = {
            "success": True,
            "delegation_id": body.get("delegation_id"),
            "workspace_id": workspace_id,
            "status": "delegated",
            "note": "Use check_delegation_status with this delegation_id to get the result; do not retry.",
        }
        if body.get("idempotent_hit"):
            result["status"] = body.get("status") or "delegated"
            result["idempotent_hit"] = True
        return result

    async def check_delegation_status(delegation_id: str = "") -> dict:
        """Status and result of a delegation started with delegate_task_async (empty id: the 10 most recent).

        Statuses: pending, dispatched, queued (wait, never retry), completed, failed.
        """
        try:
            entries = await client.delegations()
        except PlatformError as exc:
            return _error(str(exc))

        def view(entry: dict) -> dict:
            keys = ("delegation_id", "target_id", "status", "summary", "response_preview", "error", "created_at")
            out = {k: entry.get(k) for k in keys if entry.get(k) not in (None, "")}
            out.setdefault("delegation_id", entry.get("id"))
            return out

        if not delegation_id:
            seen: dict[str, dict] = {}
            for entry in entries:  # newest first: keep the newest row of each delegation
                key = str(entry.get("delegation_id") or entry.get("id"))
                seen.setdefault(key, view(entry))
            items = list(seen.values())
            return {"success": True, "count": len(items), "delegations": items[:10]}
        for entry in entries:  # newest first, so a result row wins over the original request row
            if delegation_id in (entry.get("delegation_id"), entry.get("id")):
                return {"success": True, **view(entry)}
        return {"success": False, "delegation_id": delegation_id, "status": "not_found"}

    # ------------------------------------------------------------------ approvals
    async def request_approval(action: str, reason: str = "") -> dict:
        """Ask a human to approve an action and wait for the decision (up to APPROVAL_TIMEOUT seconds).

        Returns approved true/false; only proceed with the action when approved is true.
        """
        if not action:
            return _error("action is required")
        timeout = _env_float("APPROVAL_TIMEOUT", 300.0)
        interval = max(0.01, _env_float("APPROVAL_POLL_INTERVAL", 5.0))
        try:
            created = await client.create_approval(action=action, reason=reason or "")
        except PlatformError as exc:
            return {"approved": False, "error": f"could not create approval request: {exc}"}
        approval_id = created.get("approval_id")
        deadline = time.monotonic() + timeout
        while True:
            try:
                rows = await client.approvals()
            except PlatformError as exc:
                logger.info("approval poll failed: %s", exc)
                rows = []
            for row in rows:
                if isinstance(row, dict) and row.get("id") == approval_id and row.get("status") in ("approved", "denied"):
                    decided_by = row.get("decided_by") or "human"
                    if row["status"] == "approved":
                        return {"approved": True, "approval_id": approval_id, "decided_by": decided_by}
                    return {"approved": False, "approval_id": approval_id, "decided_by": decided_by,
                            "message": "Denied by human"}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return {"approved": False, "approval_id": approval_id,
                        "error": f"Timed out after {_fmt_seconds(timeout)}s waiting for human decision"}
            await asyncio.sleep(min(interval, remaining))

    # ------------------------------------------------------------------ skills (runtime §6.4)
    async def promote_skill(approval_id: str, name: str = "", candidate_id: str = "") -> dict:
        """Turn a recorded skill promotion candidate into a skill of this workspace.

        First ask with request_approval (e.g. action "promote skill <name>"); pass the approval_id it
        returns once approved is true. candidate_id: which candidate (default: the newest one);
        name: the skill's name (default: the one the candidate suggests). The skill loads at once.
        """
        if not approval_id:
            return _error("approval_id is required: ask with request_approval first")
        try:
            if not candidate_id:
                pending = await client.skill_candidates()
                if not pending:
                    return _error("no skill promotion candidate to promote")
                candidate_id = str(pending[0].get("id", ""))
            promoted = await client.skill_candidate_promote(candidate_id, approval_id=approval_id, name=name)
        except PlatformError as exc:
            return _error(str(exc))
        return {"success": True, "skill": promoted.get("skill"), "version": promoted.get("version")}

    # ------------------------------------------------------------------ activity / user
    async def report_activity(activity_type: str = "agent_log", summary: str = "", status: str = "ok",
                              target_id: str = "", error_detail: str = "") -> dict:
        """Record what you are doing in the workspace activity log shown on the canvas.

        activity_type: agent_log, task_update, a2a_send, a2a_receive, skill_promotion, memory_write or error.
        """
        if activity_type not in ACTIVITY_TYPES:
            return _error("invalid activity_type, must be one of: " + ", ".join(ACTIVITY_TYPES))
        try:
            await client.activity(
                activity_type=activity_type, summary=summary or None, status=status or "ok",
                target_id=target_id or None, error_detail=error_detail or None,
            )
        except PlatformError as exc:
            return _error(str(exc))
        return {"success": True, "status": "logged"}

    async def send_message_to_user(message: str, attachments: list | None = None) -> dict:
        """Send a message to the human watching this workspace on the canvas.

        attachments: absolute paths of files to send with it (up to 25 MiB each, 50 MiB in total).
        """
        if not message:
            return _error("message is required")
        try:
            # a model may pass one path as a plain string
            paths = files_to_send([attachments] if isinstance(attachments, str) else list(attachments or []))
        except (TypeError, ValueError) as exc:
            return _error(str(exc))
        try:
            uploaded = await client.upload_chat_files(paths) if paths else []
            await client.notify(message, attachments=uploaded)
        except PlatformError as exc:
            return _error(str(exc))
        sent = f" with {len(uploaded)} attachment(s)" if uploaded else ""
        return {"success": True, "message": f"Message sent to user{sent}"}

    tools: dict[str, Tool] = {
        "commit_memory": commit_memory,
        "search_memory": search_memory,
        "delegate_task": delegate_task,
        "delegate_task_async": delegate_task_async,
        "check_delegation_status": check_delegation_status,
        "list_peers": list_peers,
        "request_approval": request_approval,
        "promote_skill": promote_skill,
        "report_activity": report_activity,
        "send_message_to_user": send_message_to_user,
    }
    # each call runs in an `execute_tool <name>` span (a no-op one unless tracing is on)
    return {name: traced_tool(name, fn) for name, fn in tools.items()}


__all__ = ["build_tools", "tool_schemas", "sse_results", "idempotency_key", "ACTIVITY_TYPES", "MEMORY_SCOPES"]
