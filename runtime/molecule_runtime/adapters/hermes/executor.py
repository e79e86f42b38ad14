"""HermesExecutor: one hermes `AIAgent.run_conversation` per A2A task (spec/runtime.md §3.5, §7).

hermes' loop is synchronous (it calls the model with the openai SDK and runs tools in its own
threads), so each task runs it in a worker thread:

- a fresh `AIAgent(base_url, api_key, provider, model, enabled_toolsets=["molecule", *toolsets],
  quiet_mode=True, skip_context_files=True, skip_memory=True)` per task (as hermes' own gateway
  does per message), then `run_conversation(text, system_message=<workspace prompt>,
  conversation_history=<A2A history as chat messages>, task_id=<run id>)`;
- the Molecule tools are hermes registry tools (toolset `molecule`) whose handler looks the run up
  by the `task_id` hermes passes to every handler and runs the tool on the runtime's event loop
  (`run_tool_for_model`: the model's mistakes come back to it as `{"error": …}`); `tool_trace`
  records each call. hermes' agent loop dispatches `delegate_task` itself (to its sub-agents):
  `_MoleculeAgent` routes that name to the Molecule `delegate_task` instead;
- model text deltas (`stream_delta_callback`) go out as A2A artifact chunks, one artifact per model
  turn (hermes sends None between turns);
- `result["failed"]` (provider error after hermes' retries) raises → `Agent error: <error>`;
- `tasks/cancel` calls `AIAgent.interrupt()`, which aborts the in-flight model request;
- each model request of the loop (`_interruptible_streaming_api_call` / `_interruptible_api_call`,
  retries included) is a `chat <model>` span, a child of the task's span, with the response's
  usage as hermes normalises it (`normalize_usage`: input = prompt tokens, cached ones included),
  finish reason and model; hermes' calls outside that path (its auxiliary client's context
  compression, the summary asked for after `max_iterations`) are not traced.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable

from ... import telemetry
from ..shared_runtime import LLMExecutor, LLMSettings, TextStream, run_tool_for_model, trace_start

log = logging.getLogger(__name__)

TOOLSET = "molecule"
_END = object()


@dataclass
class _Run:
    loop: asyncio.AbstractEventLoop
    tools: dict[str, Callable[..., Any]]
    trace: list[dict]
    agent: Any = None
    cancelled: bool = False


# hermes' tool registry is process-wide: handlers find their task through the task_id hermes passes
_RUNS: dict[str, _Run] = {}
_REGISTER_LOCK = threading.Lock()
_AGENT_CLASS = None


def _call_tool(name: str, args: Any, run_id: str) -> str:
    """A Molecule tool called by hermes (from one of its threads): run it on the runtime's loop."""
    run = _RUNS.get(run_id or "")
    if run is None or run.cancelled:
        return json.dumps({"error": f"{name}: the Molecule task that called it is no longer running"})
    entry = trace_start(run.trace, name, args if isinstance(args, (str, dict)) else {})
    future = asyncio.run_coroutine_threadsafe(run_tool_for_model(run.tools, name, args), run.loop)
    result = future.result()
    entry["output_preview"] = result[:300]
    return result


def _handler(name: str) -> Callable[..., str]:
    def handler(args: dict, **kwargs: Any) -> str:
        return _call_tool(name, args, kwargs.get("task_id") or "")

    handler.__name__ = f"molecule_{name}"
    return handler


def register_tools(tools: dict[str, Callable[..., Any]]) -> list[str]:
    """Put the tools into hermes' registry as toolset `molecule` (imports hermes: call it in a thread).

    Our `delegate_task` replaces hermes' own (override); tools of a previous skill set that are
    gone are deregistered. Returns the registered names.
    """
    import model_tools  # noqa: F401 — hermes' built-in tool discovery runs first

    from tools.registry import registry

    from ...tools import tool_schemas

    with _REGISTER_LOCK:
        wanted = {s["function"]["name"]: s["function"] for s in tool_schemas(tools)}
        for name in registry.get_tool_names_for_toolset(TOOLSET):
            if name not in wanted:
                registry.deregister(name)
        for name, schema in wanted.items():
            entry = registry.get_entry(name)
            if entry is not None and entry.toolset == TOOLSET and entry.schema == schema:
                continue
            registry.register(name=name, toolset=TOOLSET, schema=schema, handler=_handler(name),
                              description=schema.get("description", ""), emoji="🧬",
                              override=entry is not None and entry.toolset != TOOLSET)
        return sorted(wanted)


def _end_chat(hermes_agent: Any, chat: "telemetry.ChatCall", response: Any) -> None:
    """End a model request's span with what the response says (hermes' own usage normalisation)."""
    from agent.usage_pricing import normalize_usage

    raw = getattr(response, "usage", None)
    usage = normalize_usage(raw, provider=hermes_agent.provider, api_mode=hermes_agent.api_mode) if raw else None
    choice = next(iter(getattr(response, "choices", None) or []), None)
    chat.end(input_tokens=usage.prompt_tokens if usage else None, output_tokens=usage.output_tokens if usage else None,
             finish_reasons=[getattr(choice, "finish_reason", None)],
             completion=getattr(getattr(choice, "message", None), "content", None),
             response_model=getattr(response, "model", None))


def agent_class():
    """`run_agent.AIAgent` with hermes' `delegate_task` dispatch routed to the Molecule tool and
    each model request traced as a `chat <model>` span."""
    global _AGENT_CLASS
    if _AGENT_CLASS is None:
        from run_agent import AIAgent

        class _MoleculeAgent(AIAgent):
            molecule_run_id = ""
            molecule_provider = "openai"  # gen_ai.system (the LLMSettings provider)

            def _dispatch_delegate_task(self, function_args: dict) -> str:
                return _call_tool("delegate_task", function_args, self.molecule_run_id)

            def _traced(self, api_kwargs: dict, call: Callable[[], Any]) -> Any:
                messages = api_kwargs.get("messages") or api_kwargs.get("input")
                with telemetry.chat_span(str(api_kwargs.get("model") or self.model), provider=self.molecule_provider,
                                         messages=messages) as chat:
                    response = call()
                    _end_chat(self, chat, response)
                    return response

            def _interruptible_api_call(self, api_kwargs: dict):
                return self._traced(api_kwargs, lambda: super(_MoleculeAgent, self)._interruptible_api_call(api_kwargs))

            def _interruptible_streaming_api_call(self, api_kwargs: dict, *, on_first_delta: Callable | None = None):
                return self._traced(api_kwargs, lambda: super(_MoleculeAgent, self)._interruptible_streaming_api_call(
                    api_kwargs, on_first_delta=on_first_delta))

        _AGENT_CLASS = _MoleculeAgent
    return _AGENT_CLASS


def _offered_tools(toolsets: tuple[str, ...]) -> set[str]:
    import model_tools

    return {t["function"]["name"] for t in model_tools.get_tool_definitions(
        enabled_toolsets=[TOOLSET, *toolsets], quiet_mode=True)}


async def health_probe(tools: dict[str, Callable[..., Any]], toolsets: tuple[str, ...] = ()) -> None:
    """Setup's probe (skipped in smoke mode): hermes imports and offers every Molecule tool."""

    def probe() -> None:
        try:
            names = register_tools(tools)
        except ImportError as exc:
            raise RuntimeError(f"hermes-agent failed to import: {exc}") from exc
        missing = sorted(set(names) - _offered_tools(toolsets))
        if missing:
            raise RuntimeError(f"hermes does not offer the Molecule tool(s) {', '.join(missing)}")

    await asyncio.to_thread(probe)


class HermesExecutor(LLMExecutor):
    runtime_label = "hermes"

    def __init__(self, *, settings: LLMSettings, hermes: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self.hermes = hermes

    def _new_agent(self, run_id: str, deltas: Callable[[str | None], None]):
        agent = agent_class()(
            base_url=self.settings.base_url or "https://api.openai.com/v1", api_key=self.settings.api_key,
            provider=self.hermes.hermes_provider, model=self.settings.model,
            max_iterations=self.hermes.max_iterations, tool_delay=0,
            enabled_toolsets=[TOOLSET, *self.hermes.toolsets], quiet_mode=True,
            skip_context_files=True, skip_memory=True, stream_delta_callback=deltas,
        )
        agent.molecule_run_id = run_id
        agent.molecule_provider = self.settings.provider or "openai"
        agent._print_fn = lambda *a, **_k: log.info("hermes: %s", " ".join(str(x) for x in a))
        return agent

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        loop = asyncio.get_running_loop()
        tools = self.tools
        await asyncio.to_thread(register_tools, tools)
        run_id = f"molecule-{uuid.uuid4().hex[:12]}"
        run = _Run(loop=loop, tools=tools, trace=trace)
        queue: asyncio.Queue = asyncio.Queue()

        def on_delta(delta: str | None) -> None:  # hermes' thread → the loop, in order
            loop.call_soon_threadsafe(queue.put_nowait, delta)

        async def pump() -> None:
            stream.new_artifact()
            while (item := await queue.get()) is not _END:
                if item is None:
                    stream.new_artifact()  # hermes: a new model turn
                else:
                    await stream.write(item)

        def work() -> dict:
            agent = self._new_agent(run_id, on_delta)
            run.agent = agent
            if run.cancelled:
                agent.interrupt("cancelled")
            return agent.run_conversation(
                text, system_message=self.system_prompt or None, task_id=run_id,
                conversation_history=[{"role": role, "content": content} for role, content in history])

        _RUNS[run_id] = run
        pumping = asyncio.ensure_future(pump())
        try:
            result = await asyncio.to_thread(work)
        except asyncio.CancelledError:
            run.cancelled = True
            if run.agent is not None:
                run.agent.interrupt("cancelled by tasks/cancel")
            pumping.cancel()
            raise
        finally:
            _RUNS.pop(run_id, None)
        loop.call_soon(queue.put_nowait, _END)
        await pumping
        if result.get("failed"):
            raise RuntimeError(result.get("error") or result.get("final_response") or "hermes run failed")
        reply = result.get("final_response")
        if not reply:
            raise RuntimeError(f"hermes gave no final answer ({result.get('turn_exit_reason') or 'no reason given'})")
        return str(reply)
