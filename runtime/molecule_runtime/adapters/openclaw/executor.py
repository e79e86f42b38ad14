"""OpenClawExecutor: one `openclaw agent` CLI run per A2A message (spec/runtime.md §3.3, §3.5).

`openclaw agent --session-id <A2A context id> --message <text> --json --timeout <t>` runs the turn
through the gateway the adapter started (the CLI finds it through the private config), and the
reply is the text of `result.payloads` in its JSON. openclaw keeps the conversation per session
id, so later messages of the same A2A context continue it; the history the caller sends
(`metadata.history`) is written before the text only on a context's first message here. The CLI
is waited for `timeout + 10` s. `tasks/cancel` kills it (SIGTERM to its process group, SIGKILL
after 3 s). A failed run (`ok: false`, a non-zero exit, no JSON) raises with openclaw's own
error message, which the shared skeleton turns into `Agent error: …`.

The CLI hides the turn's single model calls, so each run is one `chat <model>` span (a child of
the task's span) with what its JSON reports for the whole turn (`result.meta.agentMeta`): the
usage summed over the turn's model calls (input = `input + cacheRead + cacheWrite`, the provider's
prompt tokens), the finish reason (`meta.completion.finishReason`) and the model the provider
answered as (`terminalReceipt.effective.responseModel`); a failed run is an error span without
usage.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import logging
import os
import signal
import subprocess
import uuid
from typing import Any

from ... import telemetry
from ..shared_runtime import LLMExecutor, LLMSettings, TextStream, trace_start

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 120
WAIT_MARGIN = 10  # seconds the CLI gets beyond its own --timeout (the spec's 120 / 130)
KILL_GRACE = 3.0

_session_id: contextvars.ContextVar[str] = contextvars.ContextVar("openclaw_session_id", default="")


class OpenClawError(RuntimeError):
    pass


def history_prefix(history: list[tuple[str, str]]) -> str:
    lines = [f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in history]
    return "Conversation so far:\n" + "\n".join(lines) + "\n\nCurrent message:\n"


def parse_agent_output(stdout: str, stderr: str, returncode: int | None) -> dict:
    """The CLI's `--json` document (stdout); anything else is an OpenClawError naming why."""
    text = stdout.strip()
    start = text.find("{")
    data = None
    if start >= 0:
        with contextlib.suppress(ValueError):
            data = json.loads(text[start:])
    if not isinstance(data, dict):
        reason = next((line.split("Reason:", 1)[1].strip() for line in stderr.splitlines() if "Reason:" in line),
                      "") or (stderr.strip().splitlines() or [text or "no output"])[-1]
        raise OpenClawError(f"openclaw agent exited with code {returncode}: {reason}")
    error = data.get("error")
    if data.get("ok") is False or error or (data.get("status") not in (None, "ok")) or returncode not in (0, None):
        message = error.get("message") if isinstance(error, dict) else (error or data.get("summary") or "")
        raise OpenClawError(str(message or f"openclaw agent failed (status {data.get('status')!r}, "
                                              f"exit {returncode})"))
    return data


def reply_text(data: dict) -> str:
    payloads = ((data.get("result") or {}).get("payloads")) or []
    texts = [str(p.get("text")) for p in payloads if isinstance(p, dict) and p.get("text")]
    return "\n\n".join(texts)


def tool_names(data: dict) -> list[str]:
    meta = (data.get("result") or {}).get("meta") or {}
    summary = meta.get("toolSummary") or (meta.get("agentMeta") or {}).get("toolSummary") or {}
    tools = summary.get("tools") if isinstance(summary, dict) else None
    return [str(t) for t in tools] if isinstance(tools, list) else []


def end_chat(chat: "telemetry.ChatCall", data: dict, reply: str) -> None:
    """End the turn's span with the usage, finish reason and response model of its JSON."""
    meta = (data.get("result") or {}).get("meta") or {}
    agent_meta = meta.get("agentMeta") or {}
    usage = agent_meta.get("usage") if isinstance(agent_meta.get("usage"), dict) else {}

    def tokens(*keys: str) -> int | None:
        values = [usage[k] for k in keys if isinstance(usage.get(k), int)]
        return sum(values) if values else None

    completion = meta.get("completion") or {}
    chat.end(input_tokens=tokens("input", "cacheRead", "cacheWrite"), output_tokens=tokens("output"),
             finish_reasons=[completion.get("finishReason") or meta.get("stopReason")], completion=reply,
             response_model=((agent_meta.get("terminalReceipt") or {}).get("effective") or {}).get("responseModel"))


class OpenClawExecutor(LLMExecutor):
    runtime_label = "openclaw"

    def __init__(self, *, settings: LLMSettings, cli: str | None = None, env: dict[str, str] | None = None,
                 **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self.cli = cli  # set by the adapter once the gateway is up; None under smoke mode
        self.env = env
        self._sessions: set[str] = set()
        self.processes: dict[str, asyncio.subprocess.Process] = {}  # session id -> running CLI

    async def execute(self, context, event_queue) -> None:
        # run() has no request context: the session id rides in a context variable, which the
        # skeleton's inner task copies when it is created
        token = _session_id.set(context.context_id or context.task_id or uuid.uuid4().hex)
        try:
            await super().execute(context, event_queue)
        finally:
            _session_id.reset(token)

    def command(self, session: str, message: str) -> list[str]:
        timeout = int(self.settings.timeout or DEFAULT_TIMEOUT)
        return [self.cli or "openclaw", "agent", "--session-id", session, f"--message={message}", "--json",
                "--timeout", str(timeout)]

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        if self.cli is None or self.env is None:
            raise OpenClawError("the openclaw gateway is not running (smoke mode, or setup did not finish)")
        session = _session_id.get() or uuid.uuid4().hex
        message = (history_prefix(history) + text) if history and session not in self._sessions else text
        with telemetry.chat_span(self.settings.model, provider=self.settings.provider,
                                 messages=[{"role": "user", "content": message}]) as chat:
            data = await self._turn(session, message)
            reply = reply_text(data)
            end_chat(chat, data, reply)
        self._sessions.add(session)
        for name in tool_names(data):
            trace_start(trace, name, "")
        await stream.write(reply)
        return reply

    async def _turn(self, session: str, message: str) -> dict:
        """One `openclaw agent` run → its JSON document; raises OpenClawError when the run failed."""
        timeout = int(self.settings.timeout or DEFAULT_TIMEOUT)
        proc = await asyncio.create_subprocess_exec(
            *self.command(session, message), env=self.env, cwd=self.env.get("HOME"), stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.processes[session] = proc
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout + WAIT_MARGIN)
        except asyncio.TimeoutError:
            await self._kill(proc)
            raise OpenClawError(f"openclaw agent gave no answer in {timeout + WAIT_MARGIN} s") from None
        except asyncio.CancelledError:  # tasks/cancel or shutdown: the CLI must not outlive the task
            await self._kill(proc)
            raise
        finally:
            if self.processes.get(session) is proc:
                self.processes.pop(session, None)
        return parse_agent_output(out.decode(errors="replace"), err.decode(errors="replace"), proc.returncode)

    @staticmethod
    async def _kill(proc: asyncio.subprocess.Process) -> None:
        if proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), KILL_GRACE)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()
