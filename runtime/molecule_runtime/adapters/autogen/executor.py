"""AutoGenExecutor: an AutoGen AgentChat `AssistantAgent` behind the A2A skeleton (spec/runtime.md §3.5).

Per A2A request a fresh `AssistantAgent` runs with:
- `model_client`: `OpenAIChatCompletionClient` (model, endpoint and key from `resolve_llm_settings`;
  one client per event loop). AutoGen knows the capabilities of OpenAI's own model names; any
  other name (Ollama, OpenRouter, vLLM…) gets `model_info` with function calling on (the tools
  need it), no vision/JSON/structured output and family `unknown`, overridable with
  `runtime_config.model_info`. Messages are sent without AutoGen's `name` field.
- `system_message`: the shared system prompt (`build_system_prompt`).
- `model_context`: the prior turns of `params.metadata.history` as User/AssistantMessages, in order.
- `tools`: every built-in and skill tool as an AutoGen tool whose JSON schema is the one the
  `openai` and `langgraph` adapters send (`tool_schemas`), run through `run_tool_for_model`.
- `reflect_on_tool_use=True`, `max_tool_iterations=max_tool_rounds`: after tool rounds the model
  answers in text; after the last allowed round AutoGen asks once more with `tool_choice: none`.
- `model_client_stream=stream`: text deltas (`ModelClientStreamingChunkEvent`) go out as A2A
  artifact chunks, one artifact per model call; without streaming each answer is one chunk.
The reply is the run's last message (the agent's TextMessage). `tasks/cancel` cancels the run's
AutoGen `CancellationToken` (which cancels the in-flight model request and tool calls), then the task.
The client is a subclass tracing each model call as a `chat <model>` span with its usage (telemetry.py).
"""

from __future__ import annotations

import asyncio
import functools
import logging
from typing import Any, Callable

from ... import telemetry
from ..shared_runtime import LLMExecutor, LLMSettings, TextStream, run_tool_for_model, trace_start

AGENT_NAME = "assistant"
# what AutoGen needs to know about a model it has no table entry for
DEFAULT_MODEL_INFO = {"vision": False, "function_calling": True, "json_output": False,
                      "structured_output": False, "family": "unknown"}


class ToolRoundsExceeded(RuntimeError):
    pass


def _prompt(messages: Any) -> list[dict]:
    return [{"role": type(m).__name__, "content": m.content if isinstance(m.content, str) else str(m.content)}
            for m in messages or []]


def _end_chat(chat: "telemetry.ChatCall", result: Any) -> None:
    usage = getattr(result, "usage", None)
    chat.end(input_tokens=getattr(usage, "prompt_tokens", None),
             output_tokens=getattr(usage, "completion_tokens", None),
             finish_reasons=[getattr(result, "finish_reason", None)], completion=getattr(result, "content", None))


@functools.lru_cache(maxsize=1)
def traced_client_class():
    """OpenAIChatCompletionClient whose calls are `chat <model>` spans with their usage (telemetry.py)."""
    from autogen_core.models import CreateResult
    from autogen_ext.models.openai import OpenAIChatCompletionClient

    class TracedOpenAIChatCompletionClient(OpenAIChatCompletionClient):
        molecule_model = ("", "openai")  # (model, provider), set by AutoGenExecutor.model_client

        async def create(self, messages, *args, **kwargs):
            model, provider = self.molecule_model
            with telemetry.chat_span(model, provider=provider, messages=_prompt(messages)) as chat:
                result = await super().create(messages, *args, **kwargs)
                _end_chat(chat, result)
                return result

        async def create_stream(self, messages, *args, **kwargs):
            model, provider = self.molecule_model
            chat = telemetry.ChatCall(model, provider=provider, messages=_prompt(messages))
            if "stream_options" not in (kwargs.get("extra_create_args") or {}):
                kwargs.setdefault("include_usage", True)  # the final chunk carries the call's usage
            try:
                async for item in super().create_stream(messages, *args, **kwargs):
                    if isinstance(item, CreateResult):
                        _end_chat(chat, item)
                    yield item
            except GeneratorExit:
                raise
            except BaseException as exc:
                chat.end(error=exc)
                raise
            finally:
                chat.end()

    return TracedOpenAIChatCompletionClient


def _quiet_autogen_event_log() -> None:
    """AutoGen logs every model call (full prompt and answer) and tool call at INFO on
    `autogen_core.events`; the runtime logs at INFO, so keep that out unless someone set a level."""
    events = logging.getLogger("autogen_core.events")
    if events.level == logging.NOTSET:
        events.setLevel(logging.WARNING)


@functools.lru_cache(maxsize=1)
def _schema_tool_class():
    """A `BaseTool` whose schema is given, not derived from a Python signature (AutoGen imported here)."""
    from autogen_core.tools import BaseTool, ToolSchema
    from pydantic import BaseModel, ConfigDict

    class ToolArgs(BaseModel):
        """Whatever JSON object the model sent; the tool itself checks its arguments."""

        model_config = ConfigDict(extra="allow")

    class SchemaTool(BaseTool[ToolArgs, BaseModel]):
        def __init__(self, tools: dict[str, Callable[..., Any]], schema: dict):
            fn = schema["function"]
            super().__init__(ToolArgs, str, fn["name"], fn["description"])  # type: ignore[arg-type]
            self._tools = tools
            self._parameters = fn["parameters"]

        @property
        def schema(self) -> ToolSchema:
            return ToolSchema(name=self.name, description=self.description, parameters=self._parameters,
                              strict=False)

        async def run(self, args: ToolArgs, cancellation_token) -> str:
            return await run_tool_for_model(self._tools, self.name, args.model_dump())

    return SchemaTool


def as_autogen_tools(tools: dict[str, Callable[..., Any]]) -> list:
    """Our tools as AutoGen tools, with the same JSON schemas the other LLM adapters send.

    Not `FunctionTool(input: str)`: a typed schema lets the model fill named arguments instead of
    JSON inside a string, and not `FunctionTool(fn)`: that re-derives the schema from the Python
    signature through pydantic (titles, defaults, strictness) and so would differ per adapter.
    A tool's answer is `run_tool_for_model`'s text: JSON results, `{"error": …}` for bad calls.
    """
    from ...tools import tool_schemas

    cls = _schema_tool_class()
    return [cls(tools, schema) for schema in tool_schemas(tools)]


def history_messages(history: list[tuple[str, str]]) -> list:
    """Prior turns as AutoGen LLM messages for the agent's model context."""
    from autogen_core.models import AssistantMessage, UserMessage

    return [UserMessage(content=text, source="user") if role == "user" else
            AssistantMessage(content=text, source=AGENT_NAME) for role, text in history]


class AutoGenExecutor(LLMExecutor):
    runtime_label = "autogen"

    def __init__(self, *, settings: LLMSettings, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self.model_info: dict[str, Any] | None = None  # runtime_config.model_info (set by the adapter)
        self._client = None
        self._client_loop = None
        self._tokens: dict[asyncio.Task, Any] = {}  # running run() task -> its CancellationToken

    def model_client(self):
        """An OpenAIChatCompletionClient bound to the running loop (created lazily; AutoGen imported here)."""
        loop = asyncio.get_running_loop()
        if self._client is None or self._client_loop is not loop:
            OpenAIChatCompletionClient = traced_client_class()

            _quiet_autogen_event_log()
            # base_url always given (None = the SDK default): AutoGen would otherwise send claude-*/
            # gemini-* names to its own idea of their endpoint instead of what resolve_llm_settings says
            kwargs: dict[str, Any] = {"model": self.settings.model, "api_key": self.settings.api_key,
                                      "base_url": self.settings.base_url, "max_retries": self.settings.max_retries,
                                      "include_name_in_message": False}
            if self.settings.timeout:
                kwargs["timeout"] = self.settings.timeout
            if self.settings.temperature is not None:
                kwargs["temperature"] = self.settings.temperature
            if self.model_info:
                kwargs["model_info"] = {**DEFAULT_MODEL_INFO, **self.model_info}
                self._client = OpenAIChatCompletionClient(**kwargs)
            else:
                try:  # AutoGen's own table for OpenAI model names
                    self._client = OpenAIChatCompletionClient(**kwargs)
                except ValueError as exc:
                    if "model_info is required" not in str(exc):
                        raise
                    self._client = OpenAIChatCompletionClient(**kwargs, model_info=dict(DEFAULT_MODEL_INFO))
            self._client.molecule_model = (self.settings.model, self.settings.provider)
            self._client_loop = loop
        return self._client

    def build_agent(self, history: list[tuple[str, str]]):
        from autogen_agentchat.agents import AssistantAgent
        from autogen_core.model_context import UnboundedChatCompletionContext

        tools = as_autogen_tools(self.tools) if self.tools else None
        return AssistantAgent(
            AGENT_NAME, model_client=self.model_client(), tools=tools,
            system_message=self.system_prompt or None,
            model_context=UnboundedChatCompletionContext(initial_messages=history_messages(history)),
            model_client_stream=self.settings.stream, reflect_on_tool_use=True,
            max_tool_iterations=self.settings.max_tool_rounds,
        )

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        from autogen_agentchat.base import TaskResult
        from autogen_agentchat.messages import (ModelClientStreamingChunkEvent, TextMessage, ThoughtEvent,
                                                ToolCallExecutionEvent, ToolCallRequestEvent)
        from autogen_core import CancellationToken

        agent = self.build_agent(history)
        token = CancellationToken()
        me = asyncio.current_task()
        self._tokens[me] = token
        calls: dict[str, dict] = {}
        rounds = 0
        final = ""
        streamed = False  # chunks of the current model call went out
        try:
            async for event in agent.run_stream(task=text, cancellation_token=token, output_task_messages=False):
                if isinstance(event, ModelClientStreamingChunkEvent):
                    if not streamed:
                        stream.new_artifact()
                        streamed = True
                    await stream.write(event.content)
                    continue
                if isinstance(event, ToolCallRequestEvent):
                    for call in event.content:
                        calls[call.id] = trace_start(trace, call.name, call.arguments or "{}")
                elif isinstance(event, ToolCallExecutionEvent):
                    rounds += 1
                    for result in event.content:
                        entry = calls.pop(result.call_id, None)
                        if entry is not None:
                            entry["output_preview"] = str(result.content)[:300]
                elif isinstance(event, (TextMessage, ThoughtEvent)) and not self.settings.stream:
                    stream.new_artifact()  # not streamed: each answer's text as one chunk
                    await stream.write(event.content)
                elif isinstance(event, TaskResult):
                    last = event.messages[-1] if event.messages else None
                    content = getattr(last, "content", "")
                    final = content if isinstance(content, str) else ""
                streamed = False  # anything but a chunk ends a model call's text
        except asyncio.CancelledError:
            token.cancel()
            raise
        except RuntimeError as exc:
            # after the last round AutoGen asks with tool_choice "none"; a model that still calls tools
            if rounds >= self.settings.max_tool_rounds and "no valid text response" in str(exc):
                raise ToolRoundsExceeded(f"no final answer after {self.settings.max_tool_rounds} tool rounds "
                                         "(runtime_config.max_tool_rounds)") from exc
            raise
        finally:
            self._tokens.pop(me, None)
        return final

    async def cancel(self, context, event_queue) -> None:
        running = self._running.get(context.task_id or "")
        token = self._tokens.get(running) if running is not None else None
        if token is not None:
            token.cancel()  # AutoGen's own cancellation: the linked model request / tool calls
        await super().cancel(context, event_queue)
