"""HTTP client for the Molecule platform (wire contract: spec/platform-api.md §7–§13).

One ``PlatformClient`` per runtime process. It owns the workspace bearer token
(``<config_dir>/.auth_token``, mode 0600) and sends it on every platform call, plus
``X-Workspace-ID`` where the platform identifies the caller by that header (discovery, peers,
A2A). Methods return parsed JSON and raise ``PlatformError`` on a non-2xx answer or a transport
failure; the agent-facing tools in ``molecule_runtime.tools`` turn those into ``{"error": ...}``.

The token only ever goes to ``PLATFORM_URL``: every request is a path on that base URL
(``request`` refuses anything else), and peers are reached through the platform's A2A proxy
(``a2a_via_proxy``), never directly, because a peer holding our token could act as us.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from molecule_runtime.attachments import guess_mime
from molecule_runtime.telemetry import inject_trace_headers

logger = logging.getLogger(__name__)

TOKEN_FILENAME = ".auth_token"
INSTRUCTIONS_TIMEOUT = 3.0  # spec/runtime.md §3.1: boot must not wait long for the rules
UPLOAD_TIMEOUT = 60.0  # up to 50 MiB each way (the canvas allows its uploads 60 s too)


class PlatformError(Exception):
    """A platform (or peer) call failed: ``status`` is the HTTP status, or None for a transport error."""

    def __init__(self, message: str, *, status: int | None = None, body: Any = None):
        super().__init__(message)
        self.status = status
        self.body = body


def _error_message(response: httpx.Response) -> str:
    """The platform's ``{"error": "..."}`` string, or a short description of the response."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return f"HTTP {response.status_code}: {body['error']}"
    text = response.text.strip()[:200]
    return f"HTTP {response.status_code}: {text}" if text else f"HTTP {response.status_code}"


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


class PlatformClient:
    """Async client for the platform API, authenticated as one workspace."""

    def __init__(self, *, platform_url: str, workspace_id: str, config_dir: Path, timeout: float = 10.0,
                 initial_token: str | None = None):
        self.platform_url = platform_url.rstrip("/")
        self.workspace_id = workspace_id
        self.config_dir = Path(config_dir)
        self.timeout = timeout
        self.token: str | None = None
        self.reload_token()
        if self.token is None and initial_token:
            # An external agent gets its token from the connection block (MOLECULE_AUTH_TOKEN);
            # keep it where a rotated one would be written.
            try:
                self.save_token(initial_token)
            except OSError as exc:
                logger.error("cannot write %s (%s); keeping the token in memory", self.token_path, exc)
                self.token = initial_token
        self._http = self._new_http()

    # ------------------------------------------------------------------ token handling
    @property
    def token_path(self) -> Path:
        return self.config_dir / TOKEN_FILENAME

    def reload_token(self) -> str | None:
        """Re-read the token file (the provisioner may rotate it while we run)."""
        try:
            value = self.token_path.read_text().strip()
        except (FileNotFoundError, NotADirectoryError):
            value = ""
        except OSError as exc:
            logger.warning("cannot read %s: %s", self.token_path, exc)
            value = ""
        self.token = value or None
        return self.token

    def save_token(self, token: str) -> None:
        """Write the token atomically with mode 0600 and no trailing newline."""
        self.config_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.config_dir / f"{TOKEN_FILENAME}.{uuid.uuid4().hex}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(token)
            os.chmod(tmp, 0o600)  # in case the umask or an odd filesystem widened it
            os.replace(tmp, self.token_path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self.token = token

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def source_headers(self) -> dict[str, str]:
        """Auth headers plus ``X-Workspace-ID`` (marks us as the calling workspace)."""
        return {**self.auth_headers(), "X-Workspace-ID": self.workspace_id}

    # ------------------------------------------------------------------ transport
    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.platform_url, timeout=self.timeout)

    async def reset_connection(self) -> None:
        """Drop the pooled connections and start a fresh HTTP client (after repeated failures)."""
        old, self._http = self._http, self._new_http()
        await old.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        source: bool = False,
        retry_on_401: bool = False,
        expect: tuple[int, ...] | None = None,
        timeout: float | httpx.Timeout | None = None,
        files: list | None = None,
    ) -> httpx.Response:
        """Send one request with the current auth headers; raise PlatformError unless 2xx/``expect``.

        ``retry_on_401``: on 401 re-read the token file and, if the token changed or appeared,
        retry once (the provisioner rotates the token on restart).
        """
        if not path.startswith("/"):
            raise ValueError(f"platform requests take a path under PLATFORM_URL, not {path!r}")
        attempt = 0
        while True:
            headers = self.source_headers() if source else self.auth_headers()
            kwargs: dict[str, Any] = {"headers": headers}
            if json is not None:
                kwargs["json"] = json
            if files is not None:
                kwargs["files"] = files
            if params:
                kwargs["params"] = {k: v for k, v in params.items() if v not in (None, "")}
            if timeout is not None:
                kwargs["timeout"] = timeout
            try:
                response = await self._http.request(method, path, **kwargs)
            except httpx.HTTPError as exc:
                raise PlatformError(f"{type(exc).__name__}: {exc} [{method} {path}]") from exc
            if response.status_code == 401 and retry_on_401 and attempt == 0:
                attempt += 1
                self.reload_token()
                logger.info("platform answered 401 on %s; re-read token file and retrying once", path)
                continue
            ok = response.is_success if expect is None else response.status_code in expect
            if not ok:
                raise PlatformError(
                    _error_message(response), status=response.status_code, body=_json_or_none(response)
                )
            return response

    def _ws(self, suffix: str = "") -> str:
        return f"/workspaces/{self.workspace_id}{suffix}"

    # ------------------------------------------------------------------ registry (§7)
    async def register(self, *, url: str, agent_card: dict) -> None:
        """POST /registry/register; persists the token when the platform issues one."""
        response = await self.request(
            "POST",
            "/registry/register",
            json={"id": self.workspace_id, "url": url, "agent_card": agent_card},
            retry_on_401=True,
        )
        body = _json_or_none(response) or {}
        token = body.get("auth_token") if isinstance(body, dict) else None
        if token:
            try:
                self.save_token(token)
            except OSError as exc:
                # The platform issues a token only once; keep using it from memory rather than
                # losing it, and make the operator aware that a restart will need a new one.
                self.token = token
                logger.error("registered, but cannot save the auth token to %s: %s", self.token_path, exc)
            else:
                logger.info("registered; saved new auth token to %s", self.token_path)

    async def heartbeat(self, payload: dict) -> None:
        """POST /registry/heartbeat; a 401 re-reads the token file and retries once."""
        body = {"workspace_id": self.workspace_id, **payload}
        await self.request("POST", "/registry/heartbeat", json=body, retry_on_401=True)

    async def update_card(self, agent_card: dict) -> None:
        await self.request(
            "POST",
            "/registry/update-card",
            json={"workspace_id": self.workspace_id, "agent_card": agent_card},
            retry_on_401=True,
        )

    # ------------------------------------------------------------------ discovery (§8.3)
    async def discover(self, target_id: str) -> dict:
        """GET /registry/discover/:id → ``{id, url, name}``."""
        response = await self.request("GET", f"/registry/discover/{target_id}", source=True)
        return response.json()

    async def peers(self, q: str = "") -> list[dict]:
        """GET /registry/:self/peers → siblings, children, parent."""
        response = await self.request("GET", f"/registry/{self.workspace_id}/peers", params={"q": q}, source=True)
        data = response.json()
        return data if isinstance(data, list) else []

    async def shared_context(self, workspace_id: str) -> list[dict]:
        """GET /workspaces/:id/shared-context → ``[{path, content}]`` (a parent's shared files)."""
        response = await self.request("GET", f"/workspaces/{workspace_id}/shared-context", source=True)
        data = response.json()
        return data if isinstance(data, list) else []

    async def platform_instructions(self, *, timeout: float = INSTRUCTIONS_TIMEOUT) -> str:
        """GET /workspaces/:self/instructions/resolve → the Markdown rules the platform's operators
        set for this workspace (the body is ``{"workspace_id", "instructions": "<markdown>"}``)."""
        response = await self.request("GET", self._ws("/instructions/resolve"), timeout=timeout)
        body = _json_or_none(response)
        text = body.get("instructions") if isinstance(body, dict) else None
        return text if isinstance(text, str) else ""

    async def get_workspace(self, workspace_id: str | None = None) -> dict:
        response = await self.request("GET", f"/workspaces/{workspace_id or self.workspace_id}")
        return response.json()

    # ------------------------------------------------------------------ A2A (runtime.md §4.3)
    async def a2a_via_proxy(
        self,
        target_id: str,
        text: str,
        *,
        metadata: dict | None = None,
        timeout: float | httpx.Timeout | None = None,
        request_id: str | None = None,
        message_id: str | None = None,
    ) -> httpx.Response:
        """POST a JSON-RPC ``message/send`` to ``target_id`` through the platform proxy
        (``POST /workspaces/:target/a2a``, platform-api.md §8.4), marked as sent by us.

        Returns the raw response (no status check) so the caller can tell a reply, a JSON-RPC
        error, the proxy's 202 ``{"queued": true}`` and its non-2xx ``{"error": ...}`` apart.
        Transport errors propagate as ``httpx`` exceptions so callers can decide what to retry.
        """
        unique = uuid.uuid4().hex
        body = {
            "jsonrpc": "2.0",
            "id": request_id or f"req-{unique}",
            "method": "message/send",
            "params": {
                "message": {
                    "role": "user",
                    "messageId": message_id or f"msg-{unique}",
                    "parts": [{"kind": "text", "text": text}],
                    "metadata": {"source_workspace_id": self.workspace_id, **(metadata or {})},
                }
            },
        }
        # the current trace context travels along, so the proxy's span and the peer's task join it
        return await self._http.post(
            f"/workspaces/{target_id}/a2a",
            json=body,
            headers=inject_trace_headers(self.source_headers()),
            timeout=timeout if timeout is not None else self.timeout,
        )

    # ------------------------------------------------------------------ delegation (§9)
    async def delegate(self, *, target_id: str, task: str, idempotency_key: str | None = None) -> dict:
        body: dict[str, Any] = {"target_id": target_id, "task": task}
        if idempotency_key:
            body["idempotency_key"] = idempotency_key
        response = await self.request("POST", self._ws("/delegate"), json=body)
        return response.json()

    async def delegations(self) -> list[dict]:
        response = await self.request("GET", self._ws("/delegations"))
        data = response.json()
        return data if isinstance(data, list) else []

    # ------------------------------------------------------------------ memory (§11.1)
    async def commit_memory(self, *, content: str, scope: str, namespace: str | None = None) -> dict:
        body: dict[str, Any] = {"content": content, "scope": scope}
        if namespace:
            body["namespace"] = namespace
        response = await self.request("POST", self._ws("/memories"), json=body, expect=(201,))
        return response.json()

    async def memories(self, *, q: str = "", scope: str = "", namespace: str = "", limit: int | None = None) -> list[dict]:
        params = {"q": q, "scope": scope, "namespace": namespace, "limit": limit}
        response = await self.request("GET", self._ws("/memories"), params=params)
        data = response.json()
        return data if isinstance(data, list) else []

    # ------------------------------------------------------------------ approvals (§13)
    async def create_approval(self, *, action: str, reason: str = "", task_id: str | None = None) -> dict:
        body: dict[str, Any] = {"action": action, "reason": reason}
        if task_id:
            body["task_id"] = task_id
        response = await self.request("POST", self._ws("/approvals"), json=body, expect=(201,))
        return response.json()

    async def approvals(self) -> list[dict]:
        response = await self.request("GET", self._ws("/approvals"))
        data = response.json()
        return data if isinstance(data, list) else []

    # ------------------------------------------------------------------ skill promotion (runtime §6.4)
    async def skill_candidates(self) -> list[dict]:
        """GET /workspaces/:self/skills/candidates → the undecided promotion candidates, newest first."""
        response = await self.request("GET", self._ws("/skills/candidates"))
        data = response.json()
        return data if isinstance(data, list) else []

    async def skill_candidate_promote(self, candidate_id: str, *, approval_id: str, name: str = "") -> dict:
        """POST /workspaces/:self/skills/candidates/:cid/promote: a workspace token needs the id of
        an approved approval request of its own."""
        body: dict[str, Any] = {"approval_id": approval_id}
        if name:
            body["name"] = name
        response = await self.request("POST", self._ws(f"/skills/candidates/{quote(candidate_id, safe='')}/promote"),
                                      json=body, expect=(201,))
        return response.json()

    # ------------------------------------------------------------------ activity / notify (§10)
    async def activity(self, *, activity_type: str, **fields: Any) -> None:
        body = {"activity_type": activity_type, **{k: v for k, v in fields.items() if v is not None}}
        await self.request("POST", self._ws("/activity"), json=body)

    # ------------------------------------------------------------------ checkpoints (§19)
    async def checkpoint_upsert(self, *, workflow_id: str, step_name: str, step_index: int, payload: Any,
                                timeout: float | None = None) -> dict:
        body = {"workflow_id": workflow_id, "step_name": step_name, "step_index": step_index, "payload": payload}
        response = await self.request("POST", self._ws("/checkpoints"), json=body, timeout=timeout)
        return response.json()

    async def checkpoint_latest(self, workflow_id: str = "", *, timeout: float | None = None) -> dict:
        """The furthest step of ``workflow_id``, or the workspace's last written one; a 404 raises."""
        response = await self.request("GET", self._ws("/checkpoints/latest"), params={"workflow_id": workflow_id},
                                      timeout=timeout)
        return response.json()

    async def checkpoint_steps(self, workflow_id: str, *, timeout: float | None = None) -> list[dict]:
        response = await self.request("GET", self._ws(f"/checkpoints/{quote(workflow_id, safe='')}"), timeout=timeout)
        data = response.json()
        return data if isinstance(data, list) else []

    async def checkpoint_delete(self, workflow_id: str, *, timeout: float | None = None) -> None:
        await self.request("DELETE", self._ws(f"/checkpoints/{quote(workflow_id, safe='')}"), timeout=timeout)

    # ------------------------------------------------------------------ chat attachments (§14)
    async def upload_chat_files(self, paths: list[Path]) -> list[dict]:
        """POST /workspaces/:self/chat/uploads (multipart field ``files``, mime type guessed)
        → ``[{uri, name, mimeType, size}]``."""
        with contextlib.ExitStack() as stack:
            parts = [("files", (path.name, stack.enter_context(open(path, "rb")), guess_mime(path.name)))
                     for path in paths]
            response = await self.request("POST", self._ws("/chat/uploads"), files=parts,
                                          timeout=UPLOAD_TIMEOUT)
        body = _json_or_none(response)
        uploaded = body.get("files") if isinstance(body, dict) else None
        if not isinstance(uploaded, list):
            raise PlatformError("the platform answered the upload without a files list", body=body)
        return uploaded

    async def download_chat_file(self, uri: str, target: Path, *, max_bytes: int) -> None:
        """GET /workspaces/:self/chat/download?path=<uri>, streamed into ``target`` (at most
        ``max_bytes``: a longer answer is an error and leaves a partial file to the caller)."""
        path = self._ws("/chat/download")
        try:
            async with self._http.stream("GET", path, params={"path": uri}, headers=self.auth_headers(),
                                         timeout=UPLOAD_TIMEOUT) as response:
                if not response.is_success:
                    await response.aread()
                    raise PlatformError(_error_message(response), status=response.status_code,
                                        body=_json_or_none(response))
                written = 0
                with open(target, "wb") as handle:
                    async for chunk in response.aiter_bytes():
                        written += len(chunk)
                        if written > max_bytes:
                            raise PlatformError(f"attachment larger than {max_bytes} bytes")
                        handle.write(chunk)
        except httpx.HTTPError as exc:
            raise PlatformError(f"{type(exc).__name__}: {exc} [GET {path}]") from exc

    async def notify(self, message: str, *, attachments: list[dict] | None = None, type: str | None = None) -> None:
        body: dict[str, Any] = {"message": message}
        if attachments:
            body["attachments"] = attachments
        if type:
            body["type"] = type
        await self.request("POST", self._ws("/notify"), json=body)
