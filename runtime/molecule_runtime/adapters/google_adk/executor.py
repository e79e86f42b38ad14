"""GoogleADKExecutor: a google.adk `LlmAgent` run by a `Runner` behind the A2A skeleton (spec §3.3, §3.5).

- One ADK session per A2A context id in an `InMemorySessionService`, so a second message in the
  same context sees the first. A new session is seeded with `params.metadata.history` (user turns
  as the user's, the rest as the agent's); an existing session already holds the conversation, so
  the metadata history is not added again. Tasks of one context run one after the other.
- The model is ADK's `Gemini` (google-genai client: API key, or Vertex AI with project/location),
  with `GenerateContentConfig(temperature, max_output_tokens)`. The system prompt is an
  instruction provider, so ADK's `{state}` templating never touches it.
- Each built-in or skill tool is an ADK `BaseTool` declaring the JSON schema of
  `tools.tool_schemas`; the model's `functionCall` runs our async tool (`run_tool_for_model`) and
  ADK sends the result back as the `functionResponse`. Calls and results fill `tool_trace`.
- `stream: true` runs ADK in SSE mode: Gemini's partial text goes out as A2A artifact chunks (one
  artifact per model response); otherwise each response's text is one chunk.
- A failure is logged with its (secret-redacted) message and the reply names only the exception
  class (`Agent error: ServerError`), as the spec's google-adk row says. ADK's and google-genai's
  own log records (which carry the exception and its traceback) are redacted too.
- Telemetry: the model is `TracedGemini`, ADK's `Gemini` whose `generate_content_async` (one
  model call, streamed or not) is a `chat <model>` span, a child of the `a2a.task` span, with
  what Gemini's responses carried: the usage of the newest `usage_metadata` (each report is the
  call's total so far; input = prompt + tool-use prompt tokens, output = candidate + thinking
  tokens, as ADK's own telemetry counts them; a response without it leaves the span without token
  counts), the finish reason, `model_version` as the response model and, only with
  `OTEL_CAPTURE_CONTENT=true`, the request's system instruction and contents and the final
  response's text (or its parts). `gen_ai.system` is `google_genai`, or `vertexai` on Vertex AI.
  A call that fails or is cut short (`tasks/cancel`) ends its span with status error. The usage
  is added to the task's (`ChatCall.end`), so it rides on the reply. ADK's own spans go to the
  global tracer provider, which the runtime leaves unset (`OTEL_LIBRARY_SPANS=true` sets it, and
  then ADK's `call_llm` span sits between the task and the chat span); the per-run
  `TelemetryConfig` captures no message content and no experimental telemetry.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import traceback
import uuid
from typing import Any, Callable

from ... import telemetry
from ...tools.redact import redact_secrets
from ..shared_runtime import LLMExecutor, TextStream, error_text, run_tool_for_model, trace_start

log = logging.getLogger(__name__)

USER_ID = "a2a"  # ADK sessions are keyed by (app, user, session): one user, the A2A caller
_CONTEXT_ID: contextvars.ContextVar[str] = contextvars.ContextVar("adk_context_id", default="")
SDK_LOGGERS = ("google_adk", "google_genai")


def redact_record(record: logging.LogRecord) -> None:
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 — a malformed record is logging's to report, not ours to raise
        return
    record.msg, record.args = redact_secrets(message), None
    if record.exc_info and not record.exc_text:
        record.exc_text = redact_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip())


def redact_sdk_logs() -> None:
    """ADK and google-genai log a failed model call with its exception (message and traceback):
    redact secrets there as in our own log lines (a provider error may echo a key). Their loggers
    are created lazily, module by module, so the hook is the record factory (installed once,
    chained to the one before it), for records of those loggers only."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "molecule_redacts_sdk", False):
        return

    def factory(name, *args, **kwargs):
        record = previous(name, *args, **kwargs)
        if name.startswith(SDK_LOGGERS):
            redact_record(record)
        return record

    factory.molecule_redacts_sdk = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class ADKRunError(RuntimeError):
    """Carries only the failing exception's class name (the reply); the message is in the log."""


def make_tool(name: str, description: str, parameters: dict, tools: dict[str, Callable[..., Any]]):
    """An ADK tool named `name` with our JSON schema, running `tools[name]` for the model."""
    from google.adk.tools import BaseTool
    from google.genai import types

    class MoleculeTool(BaseTool):
        def _get_declaration(self):
            return types.FunctionDeclaration(name=self.name, description=self.description,
                                             parameters_json_schema=parameters)

        async def run_async(self, *, args: dict[str, Any], tool_context: Any) -> Any:
            text = await run_tool_for_model(tools, self.name, dict(args or {}))
            try:
                return json.loads(text)  # a dict becomes the functionResponse; ADK wraps anything else
            except ValueError:
                return text

    return MoleculeTool(name=name, description=description)


def adk_tools(tools: dict[str, Callable[..., Any]]) -> list:
    from ...tools import tool_schemas

    return [make_tool(s["function"]["name"], s["function"]["description"], s["function"]["parameters"], tools)
            for s in tool_schemas(tools)]


def _texts(content: Any) -> str:
    """The visible text of an ADK/genai Content (thought parts skipped)."""
    if content is None or not content.parts:
        return ""
    return "".join(p.text for p in content.parts if p.text and not p.thought)


def _dump(content: Any, role: str | None = None) -> dict:
    """A genai Content (or a plain instruction string) as JSON for ``gen_ai.prompt``."""
    if isinstance(content, str):
        return {"role": role or "user", "parts": [{"text": content}]}
    out = content.model_dump(mode="json", exclude_none=True)
    return {**out, "role": role} if role else out


def _prompt(llm_request: Any) -> list[dict]:
    system = getattr(llm_request.config, "system_instruction", None)
    return ([_dump(system, "system")] if system else []) + [_dump(c) for c in llm_request.contents or []]


def _tokens(*counts: int | None) -> int | None:
    return None if all(c is None for c in counts) else sum(c or 0 for c in counts)


class ModelCall:
    """What one Gemini call's responses said, for its `chat <model>` span."""

    def __init__(self) -> None:
        self.usage: Any = None
        self.finish_reason: str | None = None
        self.response_model: str | None = None
        self.completion: Any = None

    def note(self, response: Any) -> None:
        if response.usage_metadata is not None:
            self.usage = response.usage_metadata  # cumulative for the call: the newest is the whole
        if response.finish_reason is not None:
            self.finish_reason = getattr(response.finish_reason, "value", str(response.finish_reason))
        self.response_model = response.model_version or self.response_model
        if not response.partial and response.content is not None and telemetry.capture_content():
            self.completion = _texts(response.content) or _dump(response.content)["parts"]

    def end(self, chat: telemetry.ChatCall, error: BaseException | None = None) -> None:
        usage = self.usage
        chat.end(input_tokens=_tokens(getattr(usage, "prompt_token_count", None),
                                      getattr(usage, "tool_use_prompt_token_count", None)),
                 output_tokens=_tokens(getattr(usage, "candidates_token_count", None),
                                       getattr(usage, "thoughts_token_count", None)),
                 finish_reasons=[self.finish_reason] if self.finish_reason else None,
                 completion=self.completion, response_model=self.response_model, error=error)


@functools.lru_cache(maxsize=1)
def traced_gemini_class() -> type:
    """ADK's Gemini model, each call a `chat <model>` span with its usage (see the module doc)."""
    from google.adk.models import Gemini
    from pydantic import PrivateAttr

    class TracedGemini(Gemini):
        _molecule_provider: str = PrivateAttr(default="google_genai")  # the spans' gen_ai.system

        async def generate_content_async(self, llm_request, stream: bool = False):
            chat = telemetry.ChatCall(llm_request.model or self.model, provider=self._molecule_provider,
                                      messages=_prompt(llm_request) if telemetry.capture_content() else None)
            call = ModelCall()
            try:
                async with contextlib.aclosing(super().generate_content_async(llm_request, stream)) as responses:
                    async for response in responses:
                        call.note(response)
                        yield response
            except GeneratorExit:  # the caller stopped reading: not a failure of the call
                raise
            except BaseException as exc:
                call.end(chat, error=exc)
                raise
            finally:
                call.end(chat)

    return TracedGemini


class GoogleADKExecutor(LLMExecutor):
    runtime_label = "google-adk"

    # settings: adapter.ADKSettings (not imported: the adapter imports this module)
    def __init__(self, *, settings: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.settings = settings
        self._runner = None
        self._runner_key: tuple | None = None
        self._sessions = None  # kept across runner rebuilds (a skills hot reload keeps conversations)
        self._locks: dict[str, asyncio.Lock] = {}

    # -------------------------------------------------------------- ADK objects
    def model(self):
        from google.genai import types

        s = self.settings
        http: dict[str, Any] = {"retry_options": types.HttpRetryOptions(attempts=s.max_retries + 1)}
        if s.base_url:
            http["base_url"] = s.base_url
        if s.timeout:
            http["timeout"] = int(s.timeout * 1000)  # google-genai counts milliseconds
        client: dict[str, Any] = {"http_options": types.HttpOptions(**http)}
        if s.vertexai:
            client.update(vertexai=True, project=s.project, location=s.location)
            if s.api_key and not (s.project and s.location):  # Vertex AI express mode
                client.update(api_key=s.api_key, project=None, location=None)
        else:
            client.update(vertexai=False, api_key=s.api_key)
        model = traced_gemini_class()(model=s.model, client_kwargs=client)
        model._molecule_provider = "vertexai" if client["vertexai"] else "google_genai"
        return model

    def runner(self):
        """Runner + LlmAgent for the current tool map (rebuilt when a hot reload changes it)."""
        key = (tuple(sorted(self.tools)), tuple(map(id, self.tools.values())))
        if self._runner is None or self._runner_key != key:
            from google.adk.agents import LlmAgent
            from google.adk.events import Event  # noqa: F401 — used by session(); imported early, see execute()
            from google.adk.runners import Runner
            from google.adk.sessions import InMemorySessionService
            from google.genai import types

            if self._sessions is None:
                self._sessions = InMemorySessionService()
            prompt = self.system_prompt
            agent = LlmAgent(
                name=self.settings.adk_name, model=self.model(), instruction=lambda _ctx: prompt,
                description="Molecule workspace agent", tools=adk_tools(self.tools),
                generate_content_config=types.GenerateContentConfig(
                    temperature=self.settings.temperature, max_output_tokens=self.settings.max_output_tokens))
            self._runner = Runner(agent=agent, app_name=self.settings.agent_name, session_service=self._sessions)
            self._runner_key = key
            redact_sdk_logs()
        return self._runner

    def run_config(self):
        from google.adk.agents.run_config import RunConfig, StreamingMode
        from google.adk.telemetry.context import ContentCapturingMode, TelemetryConfig

        return RunConfig(
            streaming_mode=StreamingMode.SSE if self.settings.stream else StreamingMode.NONE,
            max_llm_calls=self.settings.max_tool_rounds + 1,
            telemetry=TelemetryConfig(capture_message_content=ContentCapturingMode.NO_CONTENT,
                                      adk_experimental_telemetry_opt_in=False))

    async def session(self, runner, session_id: str, history: list[tuple[str, str]]):
        """The context's ADK session; a new one starts with the metadata history, in order."""
        from google.adk.events import Event
        from google.genai import types

        sessions = runner.session_service
        found = await sessions.get_session(app_name=runner.app_name, user_id=USER_ID, session_id=session_id)
        if found is not None:
            return found
        session = await sessions.create_session(app_name=runner.app_name, user_id=USER_ID, session_id=session_id)
        invocation = f"history-{uuid.uuid4().hex[:8]}"
        for role, text in history:
            user = role == "user"
            await sessions.append_event(session, Event(
                invocation_id=invocation, author="user" if user else runner.agent.name,
                content=types.Content(role="user" if user else "model", parts=[types.Part(text=text)])))
        return session

    # -------------------------------------------------------------- A2A
    async def execute(self, context, event_queue) -> None:
        # The SDK objects are built before the skeleton, which turns every exception into a reply:
        # a broken lazy import must fail here, so smoke mode (§9) sees the ImportError.
        self.runner()
        self.run_config()
        token = _CONTEXT_ID.set(context.context_id or "")  # run() (a copied-context task) reads it
        try:
            await super().execute(context, event_queue)
        finally:
            _CONTEXT_ID.reset(token)

    async def run(self, text: str, history: list[tuple[str, str]], stream: TextStream, trace: list[dict]) -> str:
        session_id = _CONTEXT_ID.get() or uuid.uuid4().hex
        lock = self._locks.setdefault(session_id, asyncio.Lock())
        async with lock:
            try:
                return await self._run(session_id, text, history, stream, trace)
            except ADKRunError:
                raise
            except Exception as exc:  # noqa: BLE001 — the reply names the class; the log keeps the message
                log.warning("google-adk run failed: %s: %s", type(exc).__name__, error_text(exc))
                raise ADKRunError(type(exc).__name__) from exc

    async def _run(self, session_id: str, text: str, history: list[tuple[str, str]], stream: TextStream,
                   trace: list[dict]) -> str:
        from google.genai import types

        runner = self.runner()
        await self.session(runner, session_id, history)
        message = types.Content(role="user", parts=[types.Part(text=text)])
        calls: dict[str, dict] = {}
        final = ""
        streaming = False  # inside a response whose partial text already went out
        events = runner.run_async(user_id=USER_ID, session_id=session_id, new_message=message,
                                  run_config=self.run_config())
        async with contextlib.aclosing(events):
            async for event in events:
                if event.author == "user":
                    continue
                chunk = _texts(event.content)
                if event.partial:
                    if chunk:
                        if not streaming:
                            stream.new_artifact()
                            streaming = True
                        await stream.write(chunk)
                    continue
                if chunk and not streaming:  # not streamed (stream: false): the whole text as one chunk
                    stream.new_artifact()
                    await stream.write(chunk)
                streaming = False
                for call in event.get_function_calls():
                    calls[call.id or call.name] = trace_start(trace, call.name or "", call.args or {})
                for response in event.get_function_responses():
                    entry = calls.pop(response.id or response.name, None)
                    if entry is not None:
                        entry["output_preview"] = json.dumps(response.response, default=str,
                                                             ensure_ascii=False)[:300]
                if event.error_code and not chunk:
                    log.warning("google-adk model response %s: %s", event.error_code,
                                redact_secrets(str(event.error_message or ""))[:2000])
                if event.is_final_response() and chunk:
                    final = chunk
        return final
