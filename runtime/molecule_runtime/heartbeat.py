"""Heartbeat: what the runtime reports to the platform (runtime.md §5, platform-api.md §7.2).

``HeartbeatState`` is the in-process truth about running tasks (executors call
``task_started``/``task_finished``; adapters call ``mark_wedged``). ``HeartbeatLoop`` posts it
to ``/registry/heartbeat`` immediately on start, then every ``interval`` seconds, plus an
immediate push whenever a task starts or ends (``beat_now``). A failed beat is logged and the
loop carries on; it never dies because the platform is down.

Unlike the original (whose ``error_rate`` was always 0 because nothing recorded errors),
``error_rate`` is real: failed / total tasks finished within a sliding time window, so a
runtime whose tasks keep failing turns ``degraded`` (platform rule: rate ≥ 0.5) and recovers
once successes dominate again (rate < 0.1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from collections import deque
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_INTERVAL = 30.0
ERROR_WINDOW_SECONDS = 300.0
ERROR_WINDOW_MAX = 200
CURRENT_TASK_MAX = 200
SAMPLE_ERROR_MAX = 500
RESET_CLIENT_AFTER_FAILURES = 10
SEEN_DELEGATIONS_CAP = 200
SELF_MESSAGE_COOLDOWN = 60.0
SELF_MESSAGE_TIMEOUT = 120.0


def brief_task(text: str, limit: int = CURRENT_TASK_MAX) -> str:
    """A one-line preview of a task for ``current_task``."""
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= limit else one_line[: limit - 1] + "…"


class HeartbeatState:
    """Counters and flags that make up the heartbeat payload."""

    def __init__(self, *, window_seconds: float = ERROR_WINDOW_SECONDS, clock=time.monotonic):
        self._clock = clock
        self.window_seconds = window_seconds
        self.started_at = clock()
        self.active_tasks = 0
        self.current_task = ""
        self.sample_error = ""
        self.wedge_reason: str | None = None
        # Set by the server from the adapter: {"capabilities": {...}, "idle_timeout_seconds": n}
        self.capabilities: dict[str, bool] = {}
        self.idle_timeout_seconds: int | None = None
        self._outcomes: deque[tuple[float, bool, str | None]] = deque(maxlen=ERROR_WINDOW_MAX)

    # ---------------------------------------------------------------- task tracking
    def task_started(self, brief: str) -> None:
        self.active_tasks += 1
        self.current_task = brief_task(brief)

    def task_finished(self, ok: bool, error: str | None = None) -> None:
        self.active_tasks = max(0, self.active_tasks - 1)
        if self.active_tasks == 0:
            self.current_task = ""
        error_text = (error or "task failed")[:SAMPLE_ERROR_MAX] if not ok else None
        self._outcomes.append((self._clock(), bool(ok), error_text))
        if error_text:
            self.sample_error = error_text

    # ---------------------------------------------------------------- wedge
    def mark_wedged(self, reason: str) -> None:
        self.wedge_reason = (reason or "wedged")[:SAMPLE_ERROR_MAX]

    def clear_wedge(self) -> None:
        self.wedge_reason = None

    def is_wedged(self) -> bool:
        return self.wedge_reason is not None

    # ---------------------------------------------------------------- derived values
    def _prune(self) -> None:
        horizon = self._clock() - self.window_seconds
        while self._outcomes and self._outcomes[0][0] < horizon:
            self._outcomes.popleft()

    @property
    def error_rate(self) -> float:
        self._prune()
        if not self._outcomes:
            return 0.0
        failed = sum(1 for _, ok, _ in self._outcomes if not ok)
        return failed / len(self._outcomes)

    def _sample_error(self) -> str:
        self._prune()
        for _, ok, err in reversed(self._outcomes):
            if not ok:
                return err or ""
        return ""

    def uptime_seconds(self) -> int:
        return int(self._clock() - self.started_at)

    def runtime_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"capabilities": dict(self.capabilities)}
        if isinstance(self.idle_timeout_seconds, int) and self.idle_timeout_seconds > 0:
            meta["idle_timeout_seconds"] = self.idle_timeout_seconds
        return meta

    def payload(self, workspace_id: str) -> dict[str, Any]:
        """The body of ``POST /registry/heartbeat``."""
        payload: dict[str, Any] = {
            "workspace_id": workspace_id,
            "error_rate": round(self.error_rate, 4),
            "sample_error": self._sample_error(),
            "active_tasks": self.active_tasks,
            "uptime_seconds": self.uptime_seconds(),
            "current_task": self.current_task,
            "runtime_state": "",
            "runtime_metadata": self.runtime_metadata(),
        }
        if self.is_wedged():
            payload["runtime_state"] = "wedged"
            payload["sample_error"] = self.wedge_reason
        return payload


class HeartbeatLoop:
    """Posts ``state.payload()`` immediately, then every ``interval`` seconds, until stopped."""

    def __init__(self, client, state: HeartbeatState, workspace_id: str, interval: float = DEFAULT_INTERVAL,
                 *, delegation_results_file: str | os.PathLike | None = None, poll_delegations: bool = True,
                 wake_on_results: bool = True, self_message_cooldown: float = SELF_MESSAGE_COOLDOWN,
                 baseline_existing: bool = True):
        self.client = client
        self.state = state
        self.workspace_id = workspace_id
        self.interval = interval
        self.poll_delegations = poll_delegations
        self.delegation_results_file = Path(
            delegation_results_file
            or os.environ.get("DELEGATION_RESULTS_FILE")
            or "/tmp/delegation_results.jsonl"
        )
        self.beats_sent = 0
        self.consecutive_failures = 0
        self.wake_on_results = wake_on_results
        self.self_message_cooldown = self_message_cooldown
        self._seen_delegations: dict[str, None] = {}  # insertion-ordered set
        # The original replays every finished delegation (≤50) after each restart, spamming the
        # user and waking the agent for old work. We take the first successful poll as a baseline
        # instead; a result that landed while the runtime was down is still readable through
        # check_delegation_status.
        self._baseline_pending = baseline_existing
        self._pending_wake: list[dict] = []
        self._last_self_message: float | None = None
        self._parent_name: str | None | bool = False  # False = not looked up yet
        self._background: set[asyncio.Task] = set()
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start the background loop; its first beat goes out immediately."""
        if self.running:
            return
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="molecule-heartbeat")

    async def stop(self) -> None:
        self._stop.set()
        task, self._task = self._task, None
        tasks = [t for t in (task, *self._background) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    async def beat_now(self) -> bool:
        """Send one heartbeat now (task start/end push). Never raises; returns success."""
        async with self._lock:
            try:
                await self.client.heartbeat(self.state.payload(self.workspace_id))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 — a beat must never take the runtime down
                self.consecutive_failures += 1
                n = self.consecutive_failures
                if n <= 3 or n % 10 == 0:
                    logger.warning("heartbeat failed (%d in a row): %s", n, exc)
                if n % RESET_CLIENT_AFTER_FAILURES == 0 and hasattr(self.client, "reset_connection"):
                    with contextlib.suppress(Exception):
                        await self.client.reset_connection()
                return False
            if self.consecutive_failures:
                logger.info("heartbeat recovered after %d failures", self.consecutive_failures)
            self.consecutive_failures = 0
            self.beats_sent += 1
            return True

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.beat_now()
                if self.poll_delegations:
                    await self.check_delegations()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001
                logger.exception("heartbeat cycle failed; continuing")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval)

    # ---------------------------------------------------------------- delegation results
    async def check_delegations(self) -> list[dict]:
        """Append newly finished delegations that we started to the results file (runtime.md §5).

        Entries whose ``source_id`` is not this workspace are ignored (injection guard).
        Returns the new results. Never raises.
        """
        try:
            entries = await self.client.delegations()
        except Exception as exc:  # noqa: BLE001
            logger.debug("delegation poll failed: %s", exc)
            return []
        if self._baseline_pending:
            self._baseline_pending = False
            for entry in entries:
                if isinstance(entry, dict) and entry.get("status") in ("completed", "failed"):
                    key = str(entry.get("delegation_id") or entry.get("id") or "")
                    if key:
                        self._remember(key)
            return []
        new: list[dict] = []
        for entry in entries:
            if not isinstance(entry, dict) or entry.get("status") not in ("completed", "failed"):
                continue
            key = str(entry.get("delegation_id") or entry.get("id") or "")
            if not key or key in self._seen_delegations:
                continue
            self._remember(key)
            if entry.get("source_id") != self.workspace_id:
                logger.warning("ignoring delegation %s with foreign source_id %r", key, entry.get("source_id"))
                continue
            new.append({
                "delegation_id": key,
                "target_id": entry.get("target_id"),
                "source_id": entry.get("source_id"),
                "status": entry.get("status"),
                "summary": entry.get("summary", ""),
                "response_preview": entry.get("response_preview", ""),
                "error": entry.get("error", ""),
                "timestamp": time.time(),
            })
        if new:
            try:
                self.delegation_results_file.parent.mkdir(parents=True, exist_ok=True)
                with self.delegation_results_file.open("a", encoding="utf-8") as fh:
                    for item in new:
                        fh.write(json.dumps(item, ensure_ascii=False) + "\n")
            except OSError as exc:
                logger.warning("cannot write %s: %s", self.delegation_results_file, exc)
            for item in new:
                await self._notify_result(item)
            self._pending_wake.extend(new)
        if self._pending_wake and self.wake_on_results:
            now = time.monotonic()
            if self._last_self_message is None or now - self._last_self_message >= self.self_message_cooldown:
                results, self._pending_wake = self._pending_wake, []
                self._last_self_message = now
                task = asyncio.create_task(self._wake_self(results), name="molecule-delegation-wake")
                self._background.add(task)
                task.add_done_callback(self._background.discard)
        elif not self.wake_on_results:
            self._pending_wake.clear()
        return new

    async def _notify_result(self, item: dict) -> None:
        """Tell the canvas user about a finished delegation (POST /workspaces/:id/notify)."""
        message = f"Delegation {item['status']}: {str(item.get('summary') or '')[:100]}"
        if item.get("response_preview"):
            message += f"\nResult: {str(item['response_preview'])[:200]}"
        try:
            await self.client.notify(message, type="delegation_result")
        except Exception as exc:  # noqa: BLE001
            logger.debug("delegation notify failed: %s", exc)

    async def _lookup_parent_name(self) -> str | None:
        if self._parent_name is False:
            name = None
            try:
                me = await self.client.get_workspace()
                if me.get("parent_id"):
                    parent = await self.client.get_workspace(me["parent_id"])
                    name = parent.get("name") or me["parent_id"]
            except Exception as exc:  # noqa: BLE001 — retry on the next wake-up
                logger.debug("parent lookup failed: %s", exc)
                return None
            self._parent_name = name
        return self._parent_name or None

    def self_message_text(self, results: list[dict], parent_name: str | None) -> str:
        """The wake-up prompt; lists statuses and summaries, never the raw response preview."""
        lines = ["[Delegation results are ready]"]
        for item in results:
            line = f"- [{item['status']}] Delegation {item['delegation_id'][:8]}: {str(item.get('summary') or '')[:80]}"
            if item.get("error"):
                line += f" Error: {str(item['error'])[:100]}"
            lines.append(line)
        lines.append("")
        lines.append("Use check_delegation_status to read the full results.")
        if parent_name:
            lines.append(f"Then report the outcome to your parent ({parent_name}) with delegate_task or "
                         "delegate_task_async, and tell the user with send_message_to_user.")
        else:
            lines.append("Then tell the user the outcome with send_message_to_user.")
        return "\n".join(lines)

    async def _wake_self(self, results: list[dict]) -> None:
        """Send the wake-up to ourselves through the platform proxy (marked as agent-originated)."""
        try:
            text = self.self_message_text(results, await self._lookup_parent_name())
            response = await self.client.a2a_via_proxy(self.workspace_id, text, timeout=SELF_MESSAGE_TIMEOUT)
            if not response.is_success:
                logger.warning("delegation wake-up self-message refused: HTTP %s %s",
                               response.status_code, response.text[:200])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001
            logger.warning("delegation wake-up self-message failed: %s", exc)

    def _remember(self, key: str) -> None:
        self._seen_delegations[key] = None
        if len(self._seen_delegations) > SEEN_DELEGATIONS_CAP:
            keep = list(self._seen_delegations)[-(SEEN_DELEGATIONS_CAP // 2):]
            self._seen_delegations = dict.fromkeys(keep)
