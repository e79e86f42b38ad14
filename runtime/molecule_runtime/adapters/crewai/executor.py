"""CrewAIExecutor: a one-agent CrewAI crew behind the A2A skeleton (spec/runtime.md §3.3, §3.5).

Per A2A request, built inside a worker thread:
- `LLM("openai/<model>", base_url, api_key, max_retries, timeout, temperature)`: crewAI's native
  OpenAI provider (the `openai` SDK) for every `resolve_llm_settings` provider (they all speak
  OpenAI chat completions). The base URL is always passed (api.openai.com when nothing else is
  set), so crewAI routes any model name natively instead of to LiteLLM (not installed). The LLM
  crewAI's routing builds is re-made, with the same fields, as `TracedOpenAICompletion` (below).
- `Agent(role=<first line of the system prompt>, goal=GOAL, backstory=<the system prompt>)` with
  the built-in and skill tools as CrewAI `BaseTool`s whose args schema is built from
  `tools.tool_schemas` (crewAI sends it as a strict OpenAI function schema, so optional arguments
  arrive as `null` and are dropped before our tool runs). No delegation, no cache (a second
  identical `commit_memory` must run again), no agent-level retries (a provider error is the
  task's error), `max_iter = max_tool_rounds`, `respect_context_window=False` (crewAI would count
  the input tokens before every model call — on api.openai.com with an extra request to its count
  endpoint — and summarize with hidden model calls; an oversized conversation is the provider's
  error instead, as in the other adapters).
- `Task(description=<"Conversation so far:" + prior turns + the message>, expected_output=…)`.
- `Crew(process=sequential, memory=False, cache=False, tracing=False, verbose=False)`; `kickoff()`
  with no inputs (so braces in a message are never template placeholders).

Threading: `kickoff()` is synchronous, so it runs in a daemon thread of its own (not
`asyncio.to_thread`: the loop's default executor is joined at shutdown, and a kickoff cannot be
interrupted), in a copy of the A2A task's context (so its model calls and tool calls see the
task's span and usage, telemetry.py). Each tool call hops back to the runtime's loop with
`asyncio.run_coroutine_threadsafe` (the platform client and tools are async and loop-bound), and
the thread blocks on that future.

Telemetry: `TracedOpenAICompletion` subclasses crewAI's `OpenAICompletion`; each `call`/`acall`
that gets past the before_llm_call hooks (a cancelled run's blocked call is no model call) is a
`chat <model>` span, a child of the `a2a.task` span. crewAI's own provider code reports what the
response said through methods the subclass extends: the usage (`_track_token_usage_internal`,
every API path; a response without usage leaves the span without token counts and adds nothing
to the task's usage), the finish reason and answer (`_emit_call_completed_event`; a tool that
crewAI runs itself inside the call, with `available_functions`, emits none, so that span has no
finish reason) and the response's model (`_extract_openai_token_usage`, chat completions only;
the Responses API fallback for responses-only OpenAI models reports usage and status but no
response model). The usage is added to the task's (`ChatCall.end`), so it rides on the reply.

Cancel: a running kickoff cannot be killed from outside its thread. `tasks/cancel` therefore
ends the A2A task at once (status canceled, by `LLMExecutor.cancel`) and then tells the thread to
stop: tool calls in flight are cancelled on the loop, later tool calls return an error without
running, and crewAI's next model call is blocked by a `before_llm_call` hook. A model request
already on the wire finishes in the background; whatever the thread produces after the cancel is
dropped (the A2A task is already final and nothing is sent for it).

Network: crewAI's telemetry, its trace upload and first-run "view your traces?" prompt, and its
PyPI version check are switched off through their environment variables (`CREWAI_ENV`, set
before crewAI is imported); memory, knowledge and embeddings are never configured, so nothing
loads chromadb/lancedb or downloads an embedding model. What crewAI still writes is local: the
latest kickoff's task outputs (SQLite under ~/.local/share/$CREWAI_STORAGE_DIR, default
`molecule-crewai`) and its first-run marker under ~/.config/crewai.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import contextvars
import functools
import logging
import os
import threading
from typing import Any, Callable

from ... import telemetry
from ..shared_runtime import LLMExecutor, LLMSettings, TextStream, dump_result, run_tool_for_model, trace_start

log = logging.getLogger(__name__)

# read by crewai_core.telemetry, crewai.events.listeners.tracing and the console formatter
CREWAI_ENV = {
    # no OpenTelemetry spans to telemetry.crewai.com (not OTEL_SDK_DISABLED, which crewAI reads as
    # the same opt-out: it would switch off any OpenTelemetry SDK provider made later, the runtime's too)
    "CREWAI_DISABLE_TELEMETRY": "true",
    "CREWAI_DISABLE_TRACKING": "true",
    "CREWAI_TRACING_ENABLED": "false",  # no trace batches to crewAI's cloud, no first-run trace prompt
    "CREWAI_DISABLE_VERSION_CHECK": "true",  # no PyPI look-up for a newer crewai
}
OPENAI_DEFAULT_BASE_URL = "https://api.openai.com/v1"
GOAL = ("Answer the current message as this agent would, using your tools when they help "
        "(remember facts, recall them, delegate to peers).")
EXPECTED_OUTPUT = "Your reply to the current message, as plain text addressed to whoever sent it."
ROLE_MAX = 120
CANCELLED = "the task was cancelled (tasks/cancel); this tool call did not run"

# the run (ToolBridge) the current worker thread belongs to: read by the before_llm_call hook
_CURRENT_RUN: contextvars.ContextVar["ToolBridge | None"] = contextvars.ContextVar("molecule_crewai_run",
                                                                                    default=None)


# crewAI keeps the latest kickoff's task outputs (for `crewai replay`) in a SQLite file under
# ~/.local/share/<this name>; without it the name would be the working directory's
CREWAI_STORAGE_NAME = "molecule-crewai"


def quiet_crewai() -> None:
    """Switch off crewAI's calls home (call before importing crewai; re-applied on every run)."""
    os.environ.update(CREWAI_ENV)
    os.environ.setdefault("CREWAI_STORAGE_DIR", CREWAI_STORAGE_NAME)


def crewai_model(settings: LLMSettings) -> str:
    """`openai:gpt-4o` → crewAI's provider form `openai/gpt-4o` (every provider here is OpenAI-compatible)."""
    return f"openai/{settings.model}"


def agent_role(system_prompt: str) -> str:
    """The first non-empty line of the system prompt, without Markdown heading marks.

    crewAI writes "You are {role}. {backstory}", so a line that itself starts "You are …" loses
    those words and its final full stop ("You are Ada, a researcher." → "Ada, a researcher")."""
    for line in (system_prompt or "").splitlines():
        line = line.strip().lstrip("#").strip()
        if line[:8].lower() == "you are ":
            line = line[8:].strip()
        line = line[:ROLE_MAX].rstrip(".").strip()
        if line:
            return line
    return "Assistant"


def task_description(text: str, history: list[tuple[str, str]]) -> str:
    """The message, with prior turns (in order) as a "Conversation so far:" prefix."""
    if not history:
        return text
    turns = "\n".join(f"{'User' if role == 'user' else 'Assistant'}: {content}" for role, content in history)
    return f"Conversation so far:\n{turns}\n\nCurrent message:\n{text}"


class ToolBridge:
    """One run's link between crewAI's worker thread and the runtime's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop, tools: dict[str, Callable[..., Any]], trace: list[dict]):
        self.loop = loop
        self.tools = tools
        self.trace = trace
        self.cancelled = threading.Event()
        self._inflight: set[concurrent.futures.Future] = set()
        self._lock = threading.Lock()

    def call(self, name: str, kwargs: dict[str, Any]) -> str:
        """Run our async tool on the loop and wait for its text (called from the worker thread)."""
        args = {k: v for k, v in kwargs.items() if v is not None}  # strict schemas send null for "not given"
        entry = trace_start(self.trace, name, args)
        if self.cancelled.is_set():
            result = dump_result({"error": CANCELLED})
        else:
            try:
                future = asyncio.run_coroutine_threadsafe(run_tool_for_model(self.tools, name, args), self.loop)
            except RuntimeError:  # the loop is closed: the runtime is shutting down
                future = None
            if future is None:
                result = dump_result({"error": CANCELLED})
            else:
                with self._lock:
                    self._inflight.add(future)
                try:
                    result = future.result()
                except concurrent.futures.CancelledError:
                    result = dump_result({"error": CANCELLED})
                finally:
                    with self._lock:
                        self._inflight.discard(future)
        entry["output_preview"] = result[:300]
        return result

    def cancel(self) -> None:
        self.cancelled.set()
        with self._lock:
            inflight = list(self._inflight)
        for future in inflight:
            future.cancel()  # cancels the tool coroutine on the loop


def _block_cancelled_runs(context: Any) -> bool | None:
    """Global crewAI before_llm_call hook: no model call for a cancelled run."""
    run = _CURRENT_RUN.get()
    if run is not None and run.cancelled.is_set():
        return False
    return None


@functools.lru_cache(maxsize=1)
def load_crewai() -> type:
    """Import crewAI (quietly), register the cancel hook once, and return our BaseTool subclass."""
    quiet_crewai()
    import openai.resources  # noqa: F401 — the SDK imports its (large) resource tree on first use; do it now
    from crewai.hooks.llm_hooks import register_before_llm_call_hook
    from crewai.tools import BaseTool
    from pydantic import PrivateAttr

    register_before_llm_call_hook(_block_cancelled_runs)

    class MoleculeTool(BaseTool):
        """A runtime tool (built-in or skill) as a CrewAI tool; runs on the runtime's loop."""

        _bridge: Any = PrivateAttr(default=None)

        def _run(self, **kwargs: Any) -> str:
            return self._bridge.call(self.name, kwargs)

    return MoleculeTool


class ModelCall:
    """One `TracedOpenAICompletion.call` (or `acall`): its `chat <model>` span (None until the hooks let the call
    through) and what crewAI's provider code reported about the response."""

    def __init__(self) -> None:
        self.chat: telemetry.ChatCall | None = None
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None
        self.finish_reasons: list[str] = []
        self.completion: Any = None
        self.response_model: str | None = None

    def end(self, error: BaseException | None = None) -> None:
        if self.chat is not None:
            self.chat.end(input_tokens=self.input_tokens, output_tokens=self.output_tokens,
                          finish_reasons=self.finish_reasons, completion=self.completion,
                          response_model=self.response_model, error=error)


# the model call in progress (in the thread, or the task for acall, that makes it)
_MODEL_CALL: contextvars.ContextVar[ModelCall | None] = contextvars.ContextVar("molecule_crewai_call", default=None)


@functools.lru_cache(maxsize=1)
def traced_llm_class() -> type:
    """crewAI's native OpenAI provider, each model call a `chat <model>` span (see the module doc)."""
    from crewai.llms.providers.openai.completion import OpenAICompletion
    from crewai.utilities.serialization import to_serializable
    from pydantic import PrivateAttr

    class TracedOpenAICompletion(OpenAICompletion):
        _molecule_provider: str = PrivateAttr(default="openai")  # the spans' gen_ai.system

        @contextlib.contextmanager
        def _traced(self):
            call = ModelCall()
            token = _MODEL_CALL.set(call)
            try:
                yield
            except BaseException as exc:
                call.end(error=exc)
                raise
            finally:
                _MODEL_CALL.reset(token)
                call.end()

        def call(self, messages, *args, **kwargs):
            with self._traced():
                return super().call(messages, *args, **kwargs)

        async def acall(self, messages, *args, **kwargs):
            with self._traced():
                return await super().acall(messages, *args, **kwargs)

        def _invoke_before_llm_call_hooks(self, messages, *args, **kwargs):
            allowed = super()._invoke_before_llm_call_hooks(messages, *args, **kwargs)  # a block raises
            call = _MODEL_CALL.get()
            if call is not None and call.chat is None:
                call.chat = telemetry.ChatCall(self.model, provider=self._molecule_provider, messages=messages)
            return allowed

        def _track_token_usage_internal(self, usage_data):
            call = _MODEL_CALL.get()
            if call is not None and ("prompt_tokens" in usage_data or "completion_tokens" in usage_data):
                call.input_tokens = usage_data.get("prompt_tokens")
                call.output_tokens = usage_data.get("completion_tokens")
            return super()._track_token_usage_internal(usage_data)

        def _emit_call_completed_event(self, response, call_type, *args, finish_reason=None, **kwargs):
            call = _MODEL_CALL.get()
            if call is not None:
                call.finish_reasons = [finish_reason] if finish_reason else []
                if telemetry.capture_content():
                    call.completion = to_serializable(response)
            return super()._emit_call_completed_event(response, call_type, *args, finish_reason=finish_reason,
                                                      **kwargs)

        def _extract_openai_token_usage(self, response):
            call = _MODEL_CALL.get()
            if call is not None and getattr(response, "model", None):
                call.response_model = response.model
            return super()._extract_openai_token_usage(response)

    return TracedOpenAICompletion


def _never_cache(_args: Any = None, _result: Any = None) -> bool:
    return False


def as_crewai_tools(bridge: ToolBridge) -> list:
    """Our tools as CrewAI BaseTools whose args schemas come from `tools.tool_schemas`."""
    from crewai.utilities.pydantic_schema_utils import create_model_from_schema

    from ...tools import tool_schemas

    cls = load_crewai()
    wrapped = []
    for schema in tool_schemas(bridge.tools):
        fn = schema["function"]
        model_name = "".join(part.capitalize() for part in fn["name"].split("_")) + "Args"
        args_schema = create_model_from_schema({**fn["parameters"], "title": model_name}, model_name=model_name)
        tool = cls(name=fn["name"], description=fn["description"], args_schema=args_schema,
                   cache_function=_never_cache)
        tool._bridge = bridge
        wrapped.append(tool)
    return wrapped


class CrewAIExecutor(LLMExecutor):
    runtime_label = "crewai"

    def __init__(self, *, settings: LLMSettings, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self._llm = None
        self._llm_lock = threading.Lock()

    def build_llm(self):
        """crewAI's LLM for the model, built once (its OpenAI clients are thread-safe; building
        them loads the CA bundle, a noticeable cost per request)."""
        with self._llm_lock:
            if self._llm is None:
                self._llm = self._new_llm()
            return self._llm

    def _new_llm(self):
        from crewai import LLM

        kwargs: dict[str, Any] = {"base_url": self.settings.base_url or OPENAI_DEFAULT_BASE_URL,
                                  "api_key": self.settings.api_key, "max_retries": self.settings.max_retries}
        if self.settings.timeout:
            kwargs["timeout"] = self.settings.timeout
        if self.settings.temperature is not None:
            kwargs["temperature"] = self.settings.temperature
        # crewAI's routing picks the provider class and its settings (custom_openai for a model name it
        # does not know); the traced subclass is validated from those same fields
        llm = traced_llm_class().model_validate(dict(LLM(model=crewai_model(self.settings), **kwargs)))
        llm._molecule_provider = self.settings.provider
        return llm

    def build_crew(self, text: str, history: list[tuple[str, str]], bridge: ToolBridge):
        load_crewai()
        from crewai import Agent, Crew, Process, Task

        agent = Agent(role=agent_role(self.system_prompt), goal=GOAL, backstory=self.system_prompt or GOAL,
                      llm=self.build_llm(), tools=as_crewai_tools(bridge) if bridge.tools else [],
                      allow_delegation=False, cache=False, max_retry_limit=0, respect_context_window=False,
                      max_iter=self.settings.max_tool_rounds, verbose=False)
        task = Task(description=task_description(text, history), expected_output=EXPECTED_OUTPUT, agent=agent)
        return Crew(agents=[agent], tasks=[task], process=Process.sequential, memory=False, cache=False,
                    tracing=False, verbose=False)

    def kickoff(self, text: str, history: list[tuple[str, str]], bridge: ToolBridge) -> str:
        """The whole crew run (in the worker thread): build, kickoff, the final answer's text."""
        from crewai.events.listeners.tracing.utils import set_suppress_tracing_messages

        quiet_crewai()
        _CURRENT_RUN.set(bridge)
        set_suppress_tracing_messages(True)
        crew = self.build_crew(text, history, bridge)
        output = crew.kickoff()
        return str(getattr(output, "raw", output) or "")

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        loop = asyncio.get_running_loop()
        bridge = ToolBridge(loop, dict(self.tools), trace)
        done: asyncio.Future = loop.create_future()

        def settle(result: Any, exc: BaseException | None) -> None:
            if done.done():  # cancelled: the late result is dropped
                return
            if exc is not None:
                done.set_exception(exc)
            else:
                done.set_result(result)

        def work() -> None:
            try:
                result, exc = self.kickoff(text, history, bridge), None
            except BaseException as error:  # noqa: BLE001 — handed to the loop as the task's error
                result, exc = None, error
            if bridge.cancelled.is_set():
                log.info("crewai: dropping the result of a cancelled kickoff")
                return
            try:
                loop.call_soon_threadsafe(settle, result, exc)
            except RuntimeError:  # the loop is gone (shutdown): nobody is waiting
                pass

        # the thread runs in a copy of this task's context: crewAI's model and tool calls see its span and usage
        threading.Thread(target=contextvars.copy_context().run, args=(work,), name="crewai-kickoff",
                         daemon=True).start()
        try:
            reply = await done
        except asyncio.CancelledError:
            bridge.cancel()
            raise
        stream.new_artifact()
        await stream.write(reply)
        return reply
