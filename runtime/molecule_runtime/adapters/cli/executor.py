"""CLIExecutor: one agent-CLI subprocess per A2A message (spec/runtime.md §3.3 CLI row, §3.5).

The prompt is the user text, preceded by the conversation so far when A2A history is given
(`User: …` / `Assistant: …` lines). Per preset:

- `codex`: `codex exec --json --skip-git-repo-check --ephemeral -C <cwd> [-m <model>] <args…> -`
  with the prompt on stdin and `CODEX_HOME` a private directory whose `config.toml` names the
  model provider `molecule` (base URL + `wire_api = "responses"`, key in env
  `MOLECULE_CODEX_API_KEY`), `approval_policy = "never"`, the sandbox mode
  (`runtime_config.sandbox`, default `danger-full-access`: the workspace container is the
  sandbox; codex's own Landlock/seccomp sandbox does not work in most containers),
  `developer_instructions` = our system prompt, and `[mcp_servers.molecule]` =
  `python -m molecule_runtime.mcp_server` with this workspace's id, platform URL and config dir.
  The JSONL events are read as they come: each `agent_message` is streamed as an artifact, the
  last one is the reply, `mcp_tool_call` items go to `tool_trace`, `turn.failed`/`error` events
  are the error text.
- `custom`: `command` + `args`; `{message}` (the prompt), `{system_prompt}` and `{model}` are
  replaced inside each arg. When no arg has `{message}`, the prompt is written to stdin. The same
  three values are in env `MOLECULE_MESSAGE`, `MOLECULE_SYSTEM_PROMPT`, `MOLECULE_MODEL`, and
  with tracing on `TRACEPARENT` names the run's `invoke_agent` span (OpenTelemetry's environment
  carrier), so a command that traces itself continues the task's trace.
  stdout (stripped) is the reply.

Telemetry: a codex run is one `chat <model>` span with the usage of its `turn.completed` events;
a custom command's run is one `invoke_agent <command name>` span (its model calls, if any, are
out of sight: no token counts), status error on a non-zero exit or a timeout.

The process runs in its own session (process group): `runtime_config.timeout` (300 s) and
`tasks/cancel` kill the whole group (SIGTERM, then SIGKILL after 3 s). A non-zero exit is
`Agent error: <CLI> exited with status N: <stderr tail>` (secrets redacted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...tools.redact import redact_secrets
from ... import telemetry
from ..shared_runtime import LLMExecutor, TextStream, trace_start

log = logging.getLogger(__name__)

STDERR_TAIL = 1500
KILL_GRACE = 3.0
CODEX_KEY_ENV = "MOLECULE_CODEX_API_KEY"
PROVIDER_ID = "molecule"
MCP_SERVER_NAME = "molecule"
# env the platform tools read (tools/__init__.py), forwarded to the MCP server when set
TOOL_ENV = ("DELEGATION_TIMEOUT", "DELEGATION_RETRY_ATTEMPTS", "DELEGATION_RETRY_DELAY", "APPROVAL_TIMEOUT",
            "APPROVAL_POLL_INTERVAL", "AWARENESS_URL", "AWARENESS_NAMESPACE", "LOG_LEVEL")


@dataclass
class CLIPlan:
    """What the adapter resolved at setup: which CLI, how to reach the model and the platform."""

    preset: str  # "codex" | "custom"
    command: str  # resolved path of the binary
    args: list[str] = field(default_factory=list)
    model: str = ""
    timeout: float = 300.0
    cwd: str = "."
    base_url: str | None = None
    api_key: str | None = None
    max_retries: int = 2
    sandbox: str = "danger-full-access"
    codex_home: str = ""
    mcp_env: dict[str, str] = field(default_factory=dict)
    mcp_command: list[str] = field(default_factory=list)


class CLIError(RuntimeError):
    pass


def toml_str(value: str) -> str:
    """A TOML basic string."""
    out = ['"']
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def codex_config_toml(plan: CLIPlan, system_prompt: str) -> str:
    lines = []
    if plan.model:
        lines.append(f"model = {toml_str(plan.model)}")
    lines += [
        f"model_provider = {toml_str(PROVIDER_ID)}",
        'approval_policy = "never"',
        f"sandbox_mode = {toml_str(plan.sandbox)}",
    ]
    if system_prompt:
        lines.append(f"developer_instructions = {toml_str(system_prompt)}")
    lines += [
        "",
        f"[model_providers.{PROVIDER_ID}]",
        'name = "Molecule (OpenAI-compatible)"',
        f"base_url = {toml_str(plan.base_url or 'https://api.openai.com/v1')}",
        f"env_key = {toml_str(CODEX_KEY_ENV)}",
        'wire_api = "responses"',
        f"request_max_retries = {int(plan.max_retries)}",
        f"stream_max_retries = {int(plan.max_retries)}",
    ]
    if plan.mcp_command:
        command, *args = plan.mcp_command
        lines += [
            "",
            f"[mcp_servers.{MCP_SERVER_NAME}]",
            f"command = {toml_str(command)}",
            "args = [" + ", ".join(toml_str(a) for a in args) + "]",
            "required = true",  # wait for it: an optional server still starting is left out of the turn
            "startup_timeout_sec = 30",
            f"tool_timeout_sec = {int(max(plan.timeout, 1))}",
            "",
            f"[mcp_servers.{MCP_SERVER_NAME}.env]",
        ]
        lines += [f"{name} = {toml_str(value)}" for name, value in sorted(plan.mcp_env.items())]
    return "\n".join(lines) + "\n"


def build_prompt(text: str, history: list[tuple[str, str]]) -> str:
    if not history:
        return text
    turns = "\n".join(f"{'User' if role == 'user' else 'Assistant'}: {content}" for role, content in history)
    return f"Conversation so far:\n{turns}\n\nNew message from the user:\n{text}"


def substitute(arg: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        arg = arg.replace("{" + name + "}", value)
    return arg


async def kill_group(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM the process group, SIGKILL it if it is still there after KILL_GRACE seconds."""
    if proc.returncode is not None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # children the leader left behind
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), KILL_GRACE)
    except asyncio.TimeoutError:
        pass
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(proc.wait(), KILL_GRACE)


class CLIExecutor(LLMExecutor):
    runtime_label = "cli"

    def __init__(self, *, plan: CLIPlan, **kwargs: Any):
        kwargs.pop("settings", None)
        super().__init__(**kwargs)
        self.plan = plan
        self.processes: dict[int, asyncio.subprocess.Process] = {}  # pid → running process (tests, cancel)

    # -------------------------------------------------------------- command line
    def command_line(self, prompt: str) -> tuple[list[str], str | None, dict[str, str]]:
        """(argv, stdin text or None, extra env) for one message."""
        plan = self.plan
        if plan.preset == "codex":
            home = Path(plan.codex_home)
            home.mkdir(parents=True, exist_ok=True, mode=0o700)
            (home / "config.toml").write_text(codex_config_toml(plan, self.system_prompt), encoding="utf-8")
            argv = [plan.command, "exec", "--json", "--skip-git-repo-check", "--ephemeral", "-C", plan.cwd]
            if plan.model:
                argv += ["-m", plan.model]
            argv += list(plan.args) + ["-"]
            return argv, prompt, {"CODEX_HOME": str(home), CODEX_KEY_ENV: plan.api_key or ""}
        values = {"message": prompt, "system_prompt": self.system_prompt, "model": plan.model}
        argv = [plan.command] + [substitute(a, values) for a in plan.args]
        stdin = None if any("{message}" in a for a in plan.args) else prompt
        return argv, stdin, {"MOLECULE_MESSAGE": prompt, "MOLECULE_SYSTEM_PROMPT": self.system_prompt,
                             "MOLECULE_MODEL": plan.model}

    def redact(self, text: str) -> str:
        if self.plan.api_key:
            text = text.replace(self.plan.api_key, "[REDACTED]")
        return redact_secrets(text)

    # -------------------------------------------------------------- run
    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        if self.plan.preset != "codex":
            # what the command does with a model is out of sight: one `invoke_agent` span, no usage
            with telemetry.agent_span(Path(self.plan.command).name, model=self.plan.model):
                return await self._run_cli(text, history, stream, trace, None)
        # one `chat <model>` span per codex run, with the usage of its `turn.completed` events
        with telemetry.chat_span(self.plan.model or "codex", provider="openai",
                                 messages=[{"role": "user", "content": text}]) as chat:
            return await self._run_cli(text, history, stream, trace, chat)

    async def _run_cli(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict],
                       chat: "telemetry.ChatCall | None") -> str:
        argv, stdin, extra_env = self.command_line(build_prompt(text, history))
        env = {**os.environ, **extra_env}
        if chat is None and (traceparent := telemetry.get_current_traceparent()):
            env["TRACEPARENT"] = traceparent  # a custom command that traces itself joins the invoke_agent span
        name = Path(argv[0]).name
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, cwd=self.plan.cwd, env=env, start_new_session=True)
        self.processes[proc.pid] = proc
        codex = self.plan.preset == "codex"
        events = CodexEvents(stream, trace) if codex else None
        out_chunks: list[bytes] = []
        err_tail = bytearray()

        async def feed() -> None:
            if stdin is not None:
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    proc.stdin.write(stdin.encode())
                    await proc.stdin.drain()
            with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                proc.stdin.close()

        async def read_out() -> None:
            while True:
                line = await proc.stdout.readline()
                if not line:
                    return
                if events is not None:
                    await events.line(line)
                else:
                    out_chunks.append(line)

        async def read_err() -> None:
            while True:
                chunk = await proc.stderr.read(4096)
                if not chunk:
                    return
                err_tail.extend(chunk)
                del err_tail[:-8 * STDERR_TAIL]

        async def whole() -> int:
            await asyncio.gather(feed(), read_out(), read_err())
            return await proc.wait()

        try:
            rc = await asyncio.wait_for(whole(), self.plan.timeout)
        except asyncio.TimeoutError:
            await kill_group(proc)
            raise CLIError(f"{name} timed out after {self.plan.timeout:g}s (runtime_config.timeout)") from None
        except BaseException:  # tasks/cancel (CancelledError) or a failure reading the output
            await asyncio.shield(kill_group(proc))
            raise
        finally:
            self.processes.pop(proc.pid, None)
        await kill_group(proc)  # nothing of this message outlives it
        stderr = err_tail.decode(errors="replace").strip()
        if rc != 0:
            detail = (events.error if events and events.error else "") or stderr[-STDERR_TAIL:] or "(no output)"
            raise CLIError(self.redact(f"{name} exited with status {rc}: {detail}"))
        if events is not None:
            if chat is not None:
                chat.end(input_tokens=events.usage.get("input_tokens"), output_tokens=events.usage.get("output_tokens"),
                         completion=events.reply)
            if events.error and not events.reply:
                raise CLIError(self.redact(f"{name}: {events.error}"))
            return events.reply
        reply = b"".join(out_chunks).decode(errors="replace").strip()
        await stream.write(reply)
        return reply


class CodexEvents:
    """Reads `codex exec --json` JSONL: thread/turn events and `item.*` events."""

    def __init__(self, stream: TextStream, trace: list[dict]):
        self.stream = stream
        self.trace = trace
        self.reply = ""
        self.error = ""
        self.usage: dict[str, int] = {}  # summed over the run's `turn.completed` events
        self._calls: dict[str, dict] = {}

    async def line(self, raw: bytes) -> None:
        try:
            event = json.loads(raw)
        except ValueError:
            log.debug("codex: not JSON: %r", raw[:200])
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "turn.completed" and isinstance(event.get("usage"), dict):
            for key in ("input_tokens", "output_tokens"):
                value = event["usage"].get(key)
                if isinstance(value, int):
                    self.usage[key] = self.usage.get(key, 0) + value
        elif kind == "turn.failed":
            self.error = str((event.get("error") or {}).get("message") or "turn failed")
        elif kind == "error":
            self.error = str(event.get("message") or "error")
        elif kind in ("item.started", "item.completed"):
            await self.item(kind, event.get("item") or {})

    async def item(self, kind: str, item: dict) -> None:
        itype = item.get("type")
        if itype == "agent_message" and kind == "item.completed":
            text = str(item.get("text") or "")
            if text:
                self.stream.new_artifact()
                await self.stream.write(text)
                self.reply = text
        elif itype == "mcp_tool_call":
            key = str(item.get("id") or len(self._calls))
            entry = self._calls.get(key)
            if entry is None:
                entry = trace_start(self.trace, str(item.get("tool") or ""), item.get("arguments") or {})
                entry["server"] = str(item.get("server") or "")
                self._calls[key] = entry
            if kind == "item.completed":
                result, error = item.get("result"), item.get("error")
                if error:
                    entry["output_preview"] = str(error.get("message") if isinstance(error, dict) else error)[:300]
                elif isinstance(result, dict):
                    texts = [c.get("text", "") for c in result.get("content") or [] if isinstance(c, dict)]
                    entry["output_preview"] = "".join(texts)[:300]
        elif itype == "command_execution" and kind == "item.completed":
            entry = trace_start(self.trace, "shell", str(item.get("command") or ""))
            entry["output_preview"] = str(item.get("aggregated_output") or "")[:300]
