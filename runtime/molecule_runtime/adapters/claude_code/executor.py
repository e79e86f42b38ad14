"""ClaudeCodeExecutor: one Claude Code CLI turn per A2A task, behind the A2A skeleton (spec §3.3, §3.5).

- Each task starts the CLI through `claude_agent_sdk.ClaudeSDKClient` with
  `ClaudeAgentOptions(model, permission_mode="bypassPermissions", cwd, system_prompt, resume)`,
  sends the text, reads the answer and closes the CLI. Turns are serialised (one asyncio.Lock).
- One Claude session per A2A context id: the first task of a context starts a new session (the
  `params.metadata.history` goes before the text, in order); later tasks resume it by session id.
  A CLI process error (crash, bad resume) drops the context's session, so the next task starts
  afresh.
- The platform's tools (built-ins and skill tools, schemas from `tools.tool_schemas`) are an
  in-process SDK MCP server `a2a`: Claude sees `mcp__a2a__<name>`, our async tool runs through
  `run_tool_for_model` and the CLI sends its result back as the `tool_result`. Claude's calls
  (its own tools too) fill `tool_trace`.
- 429 / overloaded answers are retried `rate_limit_retries` times (3) after `retry_base_delay`
  seconds, doubling (5, 10, 20 s); other API errors and CLI failures become `Agent error: …`.
- `stream: true` sends Claude's text deltas as A2A artifact chunks (one artifact per model call).
- tasks/cancel interrupts the running turn and closes the CLI.
- The CLI gets an environment that makes no call beyond the model API (no telemetry, error
  reports, auto-update or other non-essential traffic), the platform tools loaded up front
  (no tool search), and `IS_SANDBOX=1` when running as root (a workspace is a sandbox; the CLI
  refuses bypassPermissions for root otherwise).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import contextvars
import json
import logging
import os
from typing import Any, Callable

from ... import telemetry
from ..shared_runtime import LLMExecutor, TextStream, run_tool_for_model, trace_start

log = logging.getLogger(__name__)

MCP_SERVER = "a2a"
MCP_PREFIX = f"mcp__{MCP_SERVER}__"
INTERRUPT_TIMEOUT = 5.0
STDERR_TAIL = 5  # CLI stderr lines kept for an error reply
RATE_LIMIT_STATUSES = (429, 529)
RATE_LIMIT_WORDS = ("rate limit", "rate_limit", "overloaded", "429", "529")
_CONTEXT_ID: contextvars.ContextVar[str] = contextvars.ContextVar("claude_context_id", default="")

CLI_ENV = {
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_BUG_COMMAND": "1",
    "ENABLE_TOOL_SEARCH": "false",  # the platform tools are few: give Claude their schemas up front
}

INTER_AGENT_BLOCK = """## Inter-Agent Communication
You are one agent of a Molecule team. The platform's tools are on the MCP server `a2a`; call them by
their full names:
{tools}
Use mcp__a2a__list_peers to find the workspaces you may delegate to, and mcp__a2a__delegate_task to hand
one of them a task and read its reply. Remember facts with mcp__a2a__commit_memory and recall them with
mcp__a2a__search_memory. A delegation result starting with DELEGATION FAILED is an error: say so, do not
pretend it succeeded."""


class RateLimited(RuntimeError):
    """A 429 / overloaded answer: retried with back-off."""


class ClaudeTurnError(RuntimeError):
    """A turn the CLI ended with an error result."""


class ClaudeCLIError(RuntimeError):
    """The CLI process failed (exit code, bad output); carries the end of its stderr."""


def inter_agent_block(tools: dict[str, Callable[..., Any]]) -> str:
    from ...tools import tool_schemas

    lines = [f"- {MCP_PREFIX}{s['function']['name']}: {s['function']['description']}" for s in tool_schemas(tools)]
    return INTER_AGENT_BLOCK.format(tools="\n".join(lines) or "- (none)")


def mcp_server(tools: dict[str, Callable[..., Any]]):
    """The in-process SDK MCP server exposing ``tools`` with their JSON schemas."""
    from claude_agent_sdk import SdkMcpTool, create_sdk_mcp_server

    from ...tools import tool_schemas

    def handler(name: str):
        async def call(args: dict[str, Any]) -> dict[str, Any]:
            text = await run_tool_for_model(tools, name, dict(args or {}))
            return {"content": [{"type": "text", "text": text}]}
        return call

    sdk_tools = [SdkMcpTool(name=s["function"]["name"], description=s["function"]["description"],
                            input_schema=s["function"]["parameters"], handler=handler(s["function"]["name"]))
                 for s in tool_schemas(tools)]
    return create_sdk_mcp_server(MCP_SERVER, tools=sdk_tools)


def with_history(text: str, history: list[tuple[str, str]]) -> str:
    """A new session's first prompt: the earlier conversation, in order, then the text."""
    if not history:
        return text
    lines = [f"{'User' if role == 'user' else 'Assistant'}: {content}" for role, content in history]
    return "Conversation so far:\n" + "\n".join(lines) + "\n\nNow the user says:\n" + text


def _block_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return "" if content is None else json.dumps(content, default=str)


def short_tool_name(name: str) -> str:
    return name[len(MCP_PREFIX):] if name.startswith(MCP_PREFIX) else name


class ClaudeCodeExecutor(LLMExecutor):
    runtime_label = "claude-code"

    # settings: adapter.ClaudeCodeSettings (not imported: the adapter imports this module)
    def __init__(self, *, settings: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self.sessions: dict[str, str] = {}  # A2A context id -> Claude session id
        self._lock = asyncio.Lock()
        self._lock_loop = None
        self._stderr: collections.deque[str] = collections.deque(maxlen=STDERR_TAIL)

    # -------------------------------------------------------------- CLI options
    def cli_env(self) -> dict[str, str]:
        env = dict(CLI_ENV)
        env["CLAUDE_CODE_MAX_RETRIES"] = str(self.settings.cli_max_retries)
        env.update(dict(self.settings.extra_env))
        if hasattr(os, "getuid") and os.getuid() == 0:  # the CLI accepts only "1"
            env["IS_SANDBOX"] = "1"
        return env

    def options(self, resume: str | None):
        from claude_agent_sdk import ClaudeAgentOptions

        s = self.settings
        prompt = "\n\n".join(p for p in (self.system_prompt, inter_agent_block(self.tools)) if p)
        kwargs: dict[str, Any] = dict(
            model=s.model, permission_mode="bypassPermissions", cwd=s.cwd, system_prompt=prompt,
            mcp_servers={MCP_SERVER: mcp_server(self.tools)} if self.tools else {}, resume=resume,
            env=self.cli_env(), include_partial_messages=s.stream, max_turns=s.max_turns,
            stderr=self._stderr_line)
        if s.cli_path:
            kwargs["cli_path"] = s.cli_path
        return ClaudeAgentOptions(**kwargs)

    def _stderr_line(self, line: str) -> None:
        log.debug("claude: %s", line)
        self._stderr.append(line.rstrip())

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        if self._lock_loop is not loop:  # the executor may be built on another loop than it serves on
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    # -------------------------------------------------------------- A2A
    async def execute(self, context, event_queue) -> None:
        # Imported before the skeleton, which turns every exception into a reply: a broken lazy
        # import must fail here, so smoke mode (§9) sees the ImportError.
        import claude_agent_sdk  # noqa: F401

        token = _CONTEXT_ID.set(context.context_id or "")
        try:
            await super().execute(context, event_queue)
        finally:
            _CONTEXT_ID.reset(token)

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        from claude_agent_sdk import ClaudeSDKError

        context_id = _CONTEXT_ID.get()
        async with self.lock():
            for attempt in range(self.settings.rate_limit_retries + 1):
                resume = self.sessions.get(context_id) if context_id else None
                prompt = text if resume else with_history(text, history)
                try:
                    reply, session_id = await self._turn(prompt, resume, stream, trace)
                except RateLimited as exc:
                    if attempt >= self.settings.rate_limit_retries:
                        raise
                    delay = self.settings.retry_base_delay * (2 ** attempt)
                    log.info("claude-code: %s; retry %d in %.1f s", exc, attempt + 1, delay)
                    await asyncio.sleep(delay)
                    continue
                except (ClaudeTurnError, asyncio.CancelledError):
                    raise
                except ClaudeSDKError as exc:
                    if context_id:  # the CLI failed: the next task of this context starts a new session
                        self.sessions.pop(context_id, None)
                    said = " | ".join(line for line in self._stderr if line)
                    raise ClaudeCLIError(f"{exc}".strip() + (f" (CLI: {said})" if said else "")) from exc
                if context_id and session_id:
                    self.sessions[context_id] = session_id
                return reply
        raise AssertionError("unreachable")

    async def _turn(self, prompt: str, resume: str | None, stream: TextStream,
                    trace: list[dict]) -> tuple[str, str | None]:
        """One CLI run → (final text, session id), as one `chat <model>` span with the usage the
        CLI's result reports (the CLI's own model calls are not visible one by one)."""
        with telemetry.chat_span(self.settings.model, provider="anthropic",
                                 messages=[{"role": "user", "content": prompt}]) as chat:
            return await self._cli_turn(prompt, resume, stream, trace, chat)

    async def _cli_turn(self, prompt: str, resume: str | None, stream: TextStream, trace: list[dict],
                        chat: "telemetry.ChatCall") -> tuple[str, str | None]:
        """One CLI run → (final text, session id). Raises RateLimited / ClaudeTurnError on an error result."""
        from claude_agent_sdk import (AssistantMessage, ClaudeSDKClient, ResultMessage, StreamEvent, TextBlock,
                                      ToolResultBlock, ToolUseBlock, UserMessage)

        self._stderr.clear()
        client = ClaudeSDKClient(self.options(resume))
        calls: dict[str, dict] = {}
        texts: list[str] = []
        error_kind: str | None = None
        result = None
        await client.connect()
        try:
            await client.query(prompt)
            async for message in client.receive_response():
                if isinstance(message, StreamEvent):
                    event = message.event
                    if message.parent_tool_use_id is not None:
                        continue
                    if event.get("type") == "message_start":
                        stream.new_artifact()
                    elif event.get("type") == "content_block_delta" and \
                            (event.get("delta") or {}).get("type") == "text_delta":
                        await stream.write(event["delta"].get("text", ""))
                elif isinstance(message, AssistantMessage):
                    if message.error:
                        error_kind = message.error
                    text = "".join(b.text for b in message.content if isinstance(b, TextBlock))
                    if message.parent_tool_use_id is None and text:
                        texts.append(text)
                        if not self.settings.stream and not message.error:
                            stream.new_artifact()
                            await stream.write(text)
                    for block in message.content:
                        if isinstance(block, ToolUseBlock):
                            calls[block.id] = trace_start(trace, short_tool_name(block.name), block.input)
                elif isinstance(message, UserMessage) and isinstance(message.content, list):
                    for block in message.content:
                        if isinstance(block, ToolResultBlock) and block.tool_use_id in calls:
                            calls[block.tool_use_id]["output_preview"] = _block_text(block.content)[:300]
                elif isinstance(message, ResultMessage):
                    result = message
        except asyncio.CancelledError:  # tasks/cancel: stop the turn, then close the CLI
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(client.interrupt(), INTERRUPT_TIMEOUT)
            raise
        finally:
            with contextlib.suppress(Exception):
                await client.disconnect()
        if result is None:
            raise ClaudeTurnError("the Claude Code CLI ended without a result")
        detail = ""
        if result.is_error:
            detail = (texts[-1] if texts else "") or "; ".join(result.errors or []) or result.subtype
        usage = result.usage or {}
        chat.end(input_tokens=usage.get("input_tokens"), output_tokens=usage.get("output_tokens"),
                 finish_reasons=[result.stop_reason or result.subtype], completion=result.result,
                 error=ClaudeTurnError(detail) if result.is_error else None)
        if result.is_error:
            if result.api_error_status in RATE_LIMIT_STATUSES or error_kind == "rate_limit" or \
                    any(word in detail.lower() for word in RATE_LIMIT_WORDS):
                raise RateLimited(detail)
            raise ClaudeTurnError(detail)
        reply = result.result if result.result is not None else (texts[-1] if texts else "")
        return reply, result.session_id
