"""Work the runtime starts on its own, and what it keeps across a restart (runtime.md §3.6, §3.7, §2.6).

- **Initial prompt** (first boot only): once the A2A server answers its own card
  (``/.well-known/agent.json``, polled once a second up to 30 times) and the runtime registered,
  the configured ``initial_prompt`` goes to this workspace through the platform's proxy
  (``POST /workspaces/:id/a2a``, ``message/send``, messageId ``initial-<hex8>``, our bearer and
  ``X-Workspace-ID``), 5 attempts with back-off 1, 2, 4, 8 s. The marker
  ``.initial_prompt_done`` is written *before* the send (content ``attempted``, #71: a crash
  mid-send must not replay it), so no later boot sends it again.
- **Idle loop** (``idle_prompt`` set): first wait ``min(interval, 60)``, then every
  ``idle_interval_seconds``; a cycle is skipped while a task runs (``active_tasks > 0``), and
  the send is awaited inside the loop, so two idle prompts never overlap.
- **Pre-stop snapshot**: on a graceful stop (SIGTERM) the runtime writes
  ``{workspace_id, timestamp, current_task, active_tasks, uptime_seconds, session_id?, adapter}``
  with every string scrubbed (``tools.redact.redact_secrets`` plus the values of the secret
  variables of ``secret_env``) and sandbox output dropped; at boot the adapter gets it back
  (``restore_state``).

Where the state files go: the config dir when the runtime may write it (the Docker volume
``/configs``), else ``WORKSPACE_DIR`` (``/workspace``), else ``MOLECULE_STATE_DIR`` (the local
backend's ``private/`` directory, the only one an isolated runtime writes). A marker in any of
them counts. ``AGENT_SNAPSHOT_PATH`` names the snapshot file explicitly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import httpx

from .secret_env import SECRET_ENV_VARS
from .tools.redact import redact_secrets

log = logging.getLogger(__name__)

MARKER_FILE = ".initial_prompt_done"
SNAPSHOT_FILE = ".agent_snapshot.json"
READY_ATTEMPTS = 30
READY_INTERVAL_SECONDS = 1.0
SEND_ATTEMPTS = 5
SEND_BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)
INITIAL_SEND_TIMEOUT_SECONDS = 600.0
IDLE_FIRST_WAIT_CAP_SECONDS = 60.0
SNAPSHOT_TRANSCRIPT_MAX = 200
# Values this short are not worth scrubbing by value (a "1" would blank every digit).
MIN_SECRET_VALUE_LENGTH = 8
SANDBOX_KINDS = frozenset({"sandbox_output", "sandbox"})


# --- where the state files go ----------------------------------------------------------------------

def state_dirs(env: Mapping[str, str], config_path: str | os.PathLike) -> list[Path]:
    dirs = [Path(config_path), Path(env.get("WORKSPACE_DIR") or "/workspace")]
    if env.get("MOLECULE_STATE_DIR"):
        dirs.append(Path(env["MOLECULE_STATE_DIR"]))
    return dirs


def _writable(directory: Path) -> bool:
    return directory.is_dir() and os.access(directory, os.W_OK | os.X_OK)


def writable_state_dir(env: Mapping[str, str], config_path) -> Path | None:
    return next((d for d in state_dirs(env, config_path) if _writable(d)), None)


def initial_prompt_done(env: Mapping[str, str], config_path) -> bool:
    return any((d / MARKER_FILE).exists() for d in state_dirs(env, config_path))


def write_marker(env: Mapping[str, str], config_path, content: str = "attempted") -> Path | None:
    directory = writable_state_dir(env, config_path)
    if directory is None:
        return None
    path = directory / MARKER_FILE
    try:
        path.write_text(content)
    except OSError as exc:
        log.warning("cannot write the initial-prompt marker %s: %s", path, exc)
        return None
    return path


def snapshot_path(env: Mapping[str, str], config_path) -> Path | None:
    if env.get("AGENT_SNAPSHOT_PATH"):
        return Path(env["AGENT_SNAPSHOT_PATH"])
    directory = writable_state_dir(env, config_path)
    return directory / SNAPSHOT_FILE if directory is not None else None


def existing_snapshot_path(env: Mapping[str, str], config_path) -> Path | None:
    if env.get("AGENT_SNAPSHOT_PATH"):
        return Path(env["AGENT_SNAPSHOT_PATH"])
    return next((d / SNAPSHOT_FILE for d in state_dirs(env, config_path) if (d / SNAPSHOT_FILE).is_file()), None)


# --- sending to ourselves ---------------------------------------------------------------------------

def local_base_url(host: str, port: int) -> str:
    if not host or host in ("0.0.0.0", "::", "[::]", "localhost"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


async def wait_until_ready(base_url: str, *, attempts: int = READY_ATTEMPTS,
                           interval: float = READY_INTERVAL_SECONDS) -> bool:
    """Poll our own card until it answers 200 (spec §3.6 readiness)."""
    async with httpx.AsyncClient(timeout=5.0) as http:
        for attempt in range(attempts):
            with contextlib.suppress(httpx.HTTPError):
                if (await http.get(f"{base_url}/.well-known/agent.json")).status_code == 200:
                    return True
            if attempt + 1 < attempts:
                await asyncio.sleep(interval)
    return False


def _retryable(response: httpx.Response) -> bool:
    # 5xx: the platform or the proxy is not ready yet (503 waking / no URL, 502 unreachable)
    return response.status_code >= 500


async def self_send(client, workspace_id: str, text: str, *, kind: str, timeout: float,
                    attempts: int = SEND_ATTEMPTS, backoff=SEND_BACKOFF_SECONDS) -> bool:
    """``message/send`` of ``text`` to this workspace through the platform; True once delivered
    (a reply or the proxy's 202 queued). Transport errors and 5xx are retried with ``backoff``;
    any other refusal is final."""
    for attempt in range(attempts):
        try:
            response = await client.a2a_via_proxy(
                workspace_id, text, timeout=timeout, message_id=f"{kind}-{uuid.uuid4().hex[:8]}",
                metadata={"source": "runtime", "kind": f"{kind}_prompt"},
            )
        except httpx.HTTPError as exc:
            log.warning("%s prompt: attempt %d/%d failed: %s", kind, attempt + 1, attempts, exc)
        else:
            if response.is_success:
                log.info("%s prompt delivered (HTTP %s)", kind, response.status_code)
                return True
            log.warning("%s prompt: attempt %d/%d refused: HTTP %s %s", kind, attempt + 1, attempts,
                        response.status_code, response.text[:200])
            if not _retryable(response):
                return False
        if attempt + 1 < attempts:
            await asyncio.sleep(backoff[min(attempt, len(backoff) - 1)])
    return False


async def send_initial_prompt(client, *, workspace_id: str, prompt: str, env: Mapping[str, str], config_path,
                              base_url: str, ready_attempts: int = READY_ATTEMPTS,
                              ready_interval: float = READY_INTERVAL_SECONDS, backoff=SEND_BACKOFF_SECONDS) -> str:
    """Send the initial prompt unless a marker says it was; returns what happened
    (``skipped`` / ``not ready`` / ``sent`` / ``failed``)."""
    if not prompt.strip():
        return "skipped"
    if initial_prompt_done(env, config_path):
        log.info("initial prompt already sent on an earlier boot; not sending it again")
        return "skipped"
    if not await wait_until_ready(base_url, attempts=ready_attempts, interval=ready_interval):
        log.warning("initial prompt: server not ready after %ds, skipping", ready_attempts)
        return "not ready"
    if write_marker(env, config_path) is None:
        # Without a marker every boot would send it again: better not at all than every time.
        log.warning("initial prompt: no writable state directory for %s; not sending it", MARKER_FILE)
        return "failed"
    ok = await self_send(client, workspace_id, prompt, kind="initial", timeout=INITIAL_SEND_TIMEOUT_SECONDS,
                         backoff=backoff)
    if ok:
        write_marker(env, config_path, "sent")
    return "sent" if ok else "failed"


class IdleLoop:
    """Fires ``prompt`` to this workspace every ``interval`` seconds while no task runs (§3.7)."""

    def __init__(self, client, state, *, workspace_id: str, prompt: str, interval: float,
                 first_wait: float | None = None):
        self.client = client
        self.state = state
        self.workspace_id = workspace_id
        self.prompt = prompt
        self.interval = max(float(interval), 0.01)
        self.first_wait = min(self.interval, IDLE_FIRST_WAIT_CAP_SECONDS) if first_wait is None else first_wait
        self.fired = 0
        self.skipped = 0
        self._task: asyncio.Task | None = None

    @property
    def send_timeout(self) -> float:
        return max(60.0, min(300.0, self.interval))

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="molecule-idle-loop")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def tick(self) -> bool:
        """One cycle: send the idle prompt unless busy; returns whether it was sent."""
        if getattr(self.state, "active_tasks", 0) > 0:
            self.skipped += 1
            log.debug("idle loop: %s task(s) running, skipping this cycle", self.state.active_tasks)
            return False
        self.fired += 1
        await self_send(self.client, self.workspace_id, self.prompt, kind="idle", timeout=self.send_timeout,
                        attempts=1)
        return True

    async def _run(self) -> None:
        await asyncio.sleep(self.first_wait)
        while True:
            try:
                await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop outlives one failed cycle
                log.exception("idle loop cycle failed; continuing")
            await asyncio.sleep(self.interval)


# --- the pre-stop snapshot ----------------------------------------------------------------------------

def _secret_values(env: Mapping[str, str]) -> list[str]:
    values = {env.get(name, "") for name in SECRET_ENV_VARS}
    return sorted((v for v in values if len(v) >= MIN_SECRET_VALUE_LENGTH), key=len, reverse=True)


def _sandbox_output(item: Any) -> bool:
    return isinstance(item, dict) and (item.get("type") in SANDBOX_KINDS or item.get("kind") in SANDBOX_KINDS)


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` with every string redacted, recursively; sandbox output dropped from lists."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "[REDACTED:SECRET_ENV]")
        return redact_secrets(value)
    if isinstance(value, dict):
        return {str(k): scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub(item, secrets) for item in value if not _sandbox_output(item)]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub(str(value), secrets)


def build_snapshot(state, workspace_id: str, adapter_state: dict | None) -> dict:
    adapter_state = dict(adapter_state or {})
    snapshot = {
        "workspace_id": workspace_id,
        "timestamp": datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"),
        "current_task": getattr(state, "current_task", ""),
        "active_tasks": getattr(state, "active_tasks", 0),
        "uptime_seconds": state.uptime_seconds() if hasattr(state, "uptime_seconds") else 0,
        "adapter": adapter_state,
    }
    if adapter_state.get("session_id"):
        snapshot["session_id"] = adapter_state["session_id"]
    return snapshot


def write_snapshot(path: Path | None, snapshot: dict, env: Mapping[str, str]) -> bool:
    """Write the scrubbed snapshot (0600, atomically); never raises."""
    if path is None:
        return False
    tmp = None
    try:
        data = json.dumps(scrub(snapshot, _secret_values(env)), ensure_ascii=False, default=str)
        tmp = path.with_name(f"{path.name}.{uuid.uuid4().hex}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(data)
        os.replace(tmp, path)
        return True
    except Exception as exc:  # noqa: BLE001 - a failed snapshot must not hide the stop
        log.warning("cannot write the pre-stop snapshot %s: %s", path, exc)
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
        return False


def read_snapshot(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        log.warning("ignoring an unreadable snapshot %s: %s", path, exc)
        return None
    return data if isinstance(data, dict) else None


def snapshot_prompt_section(snapshot: dict) -> str:
    """What the agent is told about its previous session (appended to its system prompt)."""
    lines = ["## Before your last restart",
             f"Your previous session stopped at {snapshot.get('timestamp', 'an unknown time')}."]
    if snapshot.get("current_task"):
        lines.append(f"You were working on: {snapshot['current_task']}")
    transcript = (snapshot.get("adapter") or {}).get("transcript") or []
    tail = [entry for entry in transcript if isinstance(entry, dict) and entry.get("text")][-6:]
    if tail:
        lines.append("The last messages of that session:")
        lines += [f"- {entry.get('role', '?')}: {str(entry['text'])[:300]}" for entry in tail]
    return "\n".join(lines)
