"""LangGraphExecutor: LangGraph's prebuilt ReAct agent behind the A2A skeleton (spec/runtime.md §3.5).

The graph is `create_react_agent(chat_model(settings), tools, prompt=system_prompt)` — ChatOpenAI,
ChatAnthropic, ChatGoogleGenerativeAI or ChatOllama per the provider map (`providers.py`); each built-in or
skill tool becomes a LangChain `StructuredTool` with the same JSON schema the `openai` adapter
sends (`tool_schemas`). The run is streamed with `astream_events(version="v2")`:
`on_chat_model_stream` text → A2A artifact chunks (one artifact per model call),
`on_tool_start`/`on_tool_end` → `tool_trace`, the last `on_chat_model_end` → the reply.
Recursion limit: `LANGGRAPH_RECURSION_LIMIT` (re-read per task) or `2 * max_tool_rounds + 1`.
A LangChain callback (telemetry.langchain_callback) gives each model call a `chat <model>` span
and adds its usage to the task's `metadata.usage`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import warnings
from typing import Any, Callable

from ... import telemetry
from ..providers import chat_model
from ..shared_runtime import LLMExecutor, LLMSettings, TextStream, run_tool_for_model, trace_start

log = logging.getLogger(__name__)


def content_text(content: Any) -> str:
    """Text of a LangChain message content: a str, or blocks of `type == "text"` (tool blocks skipped)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") if isinstance(b, dict) and b.get("type") == "text" else
                       (b if isinstance(b, str) else "") for b in content)
    return ""


def as_langchain_tools(tools: dict[str, Callable[..., Any]]) -> list:
    """Wrap our tools as LangChain StructuredTools (results come back to the model as JSON text)."""
    from langchain_core.tools import StructuredTool

    from ...tools import tool_schemas

    wrapped = []
    for schema in tool_schemas(tools):
        fn = schema["function"]
        name = fn["name"]

        async def call(_name: str = name, **kwargs: Any) -> str:
            return await run_tool_for_model(tools, _name, kwargs)

        wrapped.append(StructuredTool(name=name, description=fn["description"], args_schema=fn["parameters"],
                                      coroutine=call))
    return wrapped


class LangGraphExecutor(LLMExecutor):
    runtime_label = "langgraph"

    def __init__(self, *, settings: LLMSettings, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self._agent = None
        self._agent_key: tuple | None = None

    def recursion_limit(self) -> int:
        raw = os.environ.get("LANGGRAPH_RECURSION_LIMIT", "").strip()
        if raw:
            try:
                value = int(raw)
                if value > 0:
                    return value
            except ValueError:
                pass
            log.warning("LANGGRAPH_RECURSION_LIMIT=%r is not a positive integer; ignoring it", raw)
        return 2 * self.settings.max_tool_rounds + 1

    def agent_key(self) -> tuple:
        """What the compiled graph depends on: the running loop and the current tool map."""
        return (id(asyncio.get_running_loop()), tuple(sorted(self.tools)), tuple(map(id, self.tools.values())),
                self.system_prompt)

    def build_agent(self, model: Any, tools: list):
        """The graph for a model and LangChain tools (subclasses build another agent)."""
        from langgraph.prebuilt import create_react_agent

        with warnings.catch_warnings():
            # LangGraph 1.x points at langchain.agents.create_agent (the `langchain` package, not
            # a dependency here); the prebuilt ReAct agent stays supported until LangGraph 2.0
            warnings.filterwarnings("ignore", message="create_react_agent has been moved")
            return create_react_agent(model, tools, prompt=self.system_prompt or None)

    def agent(self):
        """The compiled graph for the running loop and current tool map (built lazily)."""
        key = self.agent_key()
        if self._agent is None or self._agent_key != key:
            # built on the running loop: chat_model gives the SDK client an HTTP client of its own
            self._agent = self.build_agent(chat_model(self.settings), as_langchain_tools(self.tools))
            self._agent_key = key
        return self._agent

    def graph_input(self, text: str, history: list[tuple[str, str]]) -> dict:
        messages = [("human" if role == "user" else "ai", content) for role, content in history]
        messages.append(("human", text))
        return {"messages": messages}

    def graph_config(self) -> dict:
        return {"recursion_limit": self.recursion_limit(), "run_name": "a2a-task"}

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        agent = self.agent()
        graph_input = self.graph_input(text, history)
        config = self.graph_config()
        callback = telemetry.langchain_callback(self.settings.model, self.settings.provider)
        if callback is not None:  # a `chat <model>` span per model call, with its usage
            config["callbacks"] = [*config.get("callbacks", []), callback]
        runs: dict[str, dict] = {}
        current_model_run: str | None = None
        final = ""
        async for event in agent.astream_events(graph_input, config=config, version="v2"):
            kind = event["event"]
            data = event.get("data") or {}
            if kind == "on_chat_model_stream":
                if event["run_id"] != current_model_run:
                    current_model_run = event["run_id"]
                    stream.new_artifact()
                chunk = data.get("chunk")
                await stream.write(content_text(getattr(chunk, "content", "")))
            elif kind == "on_chat_model_end":
                output = data.get("output")
                if current_model_run != event["run_id"]:  # not streamed (stream: false): one chunk
                    current_model_run = event["run_id"]
                    stream.new_artifact()
                    await stream.write(content_text(getattr(output, "content", "")))
                final = content_text(getattr(output, "content", ""))
            elif kind == "on_tool_start":
                runs[event["run_id"]] = trace_start(trace, event.get("name", ""), data.get("input", {}))
            elif kind == "on_tool_end":
                entry = runs.pop(event["run_id"], None)
                if entry is not None:
                    output = data.get("output")
                    entry["output_preview"] = str(getattr(output, "content", output))[:300]
        return final
