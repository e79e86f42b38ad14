"""OpenTelemetry traces of a workspace (spec/runtime.md §7.5, issue 15).

``setup_telemetry`` builds a TracerProvider (resource ``service.name=molecule-workspace``,
``workspace.id``, ``workspace.runtime``) with a BatchSpanProcessor per exporter:

- the platform's own receiver, OTLP/HTTP protobuf to ``<PLATFORM_URL>/otlp/v1/traces`` with
  ``Authorization: Bearer <workspace token>``; the token is read on every export (it may only
  arrive with the registration, and the provisioner rotates it), and the platform files the spans
  under the token's workspace. ``MOLECULE_TRACES_TO_PLATFORM=false`` turns it off;
- ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (verbatim) or ``OTEL_EXPORTER_OTLP_ENDPOINT`` (+
  ``/v1/traces``): any collector, with ``OTEL_EXPORTER_OTLP_HEADERS`` as the SDK reads them;
- Langfuse, when ``LANGFUSE_HOST``, ``LANGFUSE_PUBLIC_KEY`` and ``LANGFUSE_SECRET_KEY`` are all
  set: ``<host>/api/public/otel/v1/traces`` with Basic auth public:secret;
- the console, when ``OTEL_DEBUG`` is truthy.

``OTEL_SDK_DISABLED=true`` (or the otel packages missing) leaves a no-op tracer: the spans below
cost nothing and the runtime works as before. The env headers of the user's collector are not
sent to the platform or Langfuse (those two get their own Authorization only).

Spans (tracer ``molecule.workspace``, GenAI semantic conventions):

- ``a2a.task`` (SERVER) per inbound A2A task (``TracedExecutor``, wrapped around every executor
  by ``server.build_app``), a child of the inbound W3C ``traceparent`` (``TraceContextMiddleware``
  extracts it for each HTTP request); ``workspace.id``, ``a2a.task_id``, ``a2a.context_id``,
  ``a2a.input_preview`` (first 200 chars, only with ``OTEL_CAPTURE_CONTENT=true``), status error
  when the task fails;
- ``chat <model>`` (CLIENT) per model call (``ChatCall``): ``gen_ai.operation.name=chat``,
  ``gen_ai.system``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens`` /
  ``output_tokens``, ``gen_ai.response.finish_reasons``, ``gen_ai.response.model`` (when known);
  ``gen_ai.prompt`` / ``gen_ai.completion`` only with ``OTEL_CAPTURE_CONTENT=true``;
- ``invoke_agent <agent>`` (CLIENT) per run of an agent whose model calls are out of sight
  (``agent_span``: the cli runtime's custom command): ``gen_ai.operation.name=invoke_agent``,
  ``gen_ai.agent.name``, ``gen_ai.request.model`` when configured, no usage;
- ``execute_tool <name>`` (INTERNAL) per built-in tool call (``traced_tool``).

Outgoing A2A calls through the platform proxy carry the current context (``inject_trace_headers``).

The usage of a task's model calls is summed whether tracing is on or not (``record_usage``) and
rides on the reply as ``metadata.usage = {input_tokens, output_tokens, model}`` (``current_usage``,
read by ``adapters.base.finish_task``): the platform meters it. So that it is not metered a
second time from the trace, a chat span whose usage the task sums says
``molecule.usage.on_reply=true``; the platform's receiver meters only unmarked chat spans (an
external agent's own model calls).
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

log = logging.getLogger(__name__)

TRACER_NAME = "molecule.workspace"
SERVICE_NAME = "molecule-workspace"
PREVIEW_CHARS = 200
CONTENT_MAX = 16_000  # captured prompt/completion text per attribute
TRUTHY = {"1", "true", "yes", "on"}

try:  # the API alone is enough for no-op spans and for propagation
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.propagators.composite import CompositePropagator
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    from opentelemetry.baggage.propagation import W3CBaggagePropagator

    HAVE_API = True
except ImportError:  # pragma: no cover - exercised only without the packages
    HAVE_API = False


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUTHY


def capture_content(env: Mapping[str, str] | None = None) -> bool:
    """``OTEL_CAPTURE_CONTENT=true``: prompts, completions and input previews go on the spans."""
    return _flag((os.environ if env is None else env).get("OTEL_CAPTURE_CONTENT"))


def _clip(text: Any, limit: int = CONTENT_MAX) -> str:
    text = text if isinstance(text, str) else json.dumps(text, default=str, ensure_ascii=False)
    return text[:limit]


# ----------------------------------------------------------------------------- no-op fallbacks


class _NoopSpan:
    """Stands in for a span when the otel API is not installed."""

    def set_attribute(self, *_a, **_k): return None
    def set_attributes(self, *_a, **_k): return None
    def add_event(self, *_a, **_k): return None
    def set_status(self, *_a, **_k): return None
    def record_exception(self, *_a, **_k): return None
    def end(self, *_a, **_k): return None
    def is_recording(self) -> bool: return False


class _NoopTracer:
    def start_span(self, *_a, **_k):
        return _NoopSpan()

    @contextlib.contextmanager
    def start_as_current_span(self, *_a, **_k):
        yield _NoopSpan()


_NOOP_TRACER = otel_trace.NoOpTracer() if HAVE_API else _NoopTracer()


@dataclass
class _State:
    provider: Any = None
    tracer: Any = None
    workspace_id: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)


_state = _State()
_propagator = (CompositePropagator([TraceContextTextMapPropagator(), W3CBaggagePropagator()])
               if HAVE_API else None)


def tracer():
    """The ``molecule.workspace`` tracer (a no-op one until ``setup_telemetry`` enabled tracing)."""
    return _state.tracer or _NOOP_TRACER


def enabled() -> bool:
    return _state.provider is not None


# ----------------------------------------------------------------------------- setup / shutdown


def _scoped_session(auth: Callable[[], str | None], drop: Iterable[str]):
    """A requests.Session that sends ``Authorization: auth()`` (read on every export) and none of
    the env headers named in ``drop`` (the user's collector headers are not for this endpoint)."""
    import requests

    dropped = {name.lower() for name in drop}

    class ScopedSession(requests.Session):
        def request(self, method, url, *args, headers=None, **kwargs):
            headers = {k: v for k, v in dict(headers or {}).items() if k.lower() not in dropped}
            for name in list(self.headers):  # exporters before 1.45 put their headers on the session
                if name.lower() in dropped:
                    headers[name] = None  # requests drops a header whose request value is None
            headers["Authorization"] = auth() or None
            return super().request(method, url, *args, headers=headers, **kwargs)

    return ScopedSession()


def _env_header_names(env: Mapping[str, str]) -> set[str]:
    from opentelemetry.util.re import parse_env_headers

    raw = env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS") or env.get("OTEL_EXPORTER_OTLP_HEADERS") or ""
    return set(parse_env_headers(raw, liberal=True)) | {"authorization"}


def exporter_targets(env: Mapping[str, str], *, platform_url: str | None = None,
                     token_provider: Callable[[], str | None] | None = None) -> list[dict]:
    """What ``setup_telemetry`` exports to: ``[{name, endpoint, auth}]`` (``auth`` a callable giving
    the Authorization value, or None for the SDK's own env headers), plus ``console``."""
    targets: list[dict] = []
    to_platform = env.get("MOLECULE_TRACES_TO_PLATFORM", "true").strip().lower() not in ("0", "false", "no", "off")
    if platform_url and token_provider is not None and to_platform:
        def bearer() -> str | None:
            token = token_provider()
            return f"Bearer {token}" if token else None

        targets.append({"name": "platform", "endpoint": f"{platform_url.rstrip('/')}/otlp/v1/traces", "auth": bearer})
    traces_endpoint = (env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or "").strip()
    endpoint = (env.get("OTEL_EXPORTER_OTLP_ENDPOINT") or "").strip()
    if traces_endpoint:
        targets.append({"name": "otlp", "endpoint": traces_endpoint, "auth": None})
    elif endpoint:
        targets.append({"name": "otlp", "endpoint": f"{endpoint.rstrip('/')}/v1/traces", "auth": None})
    host, public, secret = (env.get(k, "").strip()
                            for k in ("LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"))
    if host and public and secret:
        basic = "Basic " + base64.b64encode(f"{public}:{secret}".encode()).decode()
        targets.append({"name": "langfuse", "endpoint": f"{host.rstrip('/')}/api/public/otel/v1/traces",
                        "auth": lambda: basic})
    if _flag(env.get("OTEL_DEBUG")):
        targets.append({"name": "console", "endpoint": None, "auth": None})
    return targets


def setup_telemetry(env: Mapping[str, str] | None = None, *, workspace_id: str = "", runtime: str = "",
                    platform_url: str | None = None,
                    token_provider: Callable[[], str | None] | None = None) -> bool:
    """Start tracing for this process; True when spans are exported somewhere.

    ``token_provider()`` returns the current workspace token (read at each export). Calling it
    again replaces the previous provider (after flushing it)."""
    env = os.environ if env is None else env
    _state.workspace_id = workspace_id or env.get("WORKSPACE_ID", "")
    if _flag(env.get("OTEL_SDK_DISABLED")):
        log.info("telemetry: OTEL_SDK_DISABLED is set; no spans are exported")
        shutdown_telemetry()
        return False
    targets = exporter_targets(env, platform_url=platform_url, token_provider=token_provider)
    if not targets:
        shutdown_telemetry()
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
    except ImportError as exc:
        log.info("telemetry: OpenTelemetry SDK/exporter not installed (%s); tracing is off", exc)
        return False

    shutdown_telemetry()
    resource = Resource.create({"service.name": SERVICE_NAME, "workspace.id": _state.workspace_id,
                                "workspace.runtime": runtime})
    provider = TracerProvider(resource=resource)
    env_headers = _env_header_names(env)
    for target in targets:
        if target["name"] == "console":
            provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
            continue
        session = _scoped_session(target["auth"], env_headers) if target["auth"] is not None else None
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=target["endpoint"], session=session)))
    with _state.lock:
        _state.provider = provider
        _state.tracer = provider.get_tracer(TRACER_NAME)
    # The provider stays private: a2a-sdk and autogen-core trace themselves through the global one,
    # which would put a span per SDK method between ours. OTEL_LIBRARY_SPANS=true exports theirs too.
    if _flag(env.get("OTEL_LIBRARY_SPANS")) and isinstance(otel_trace.get_tracer_provider(),
                                                           otel_trace.ProxyTracerProvider):
        otel_trace.set_tracer_provider(provider)
    from opentelemetry import propagate

    propagate.set_global_textmap(_propagator)
    log.info("telemetry: exporting spans to %s", ", ".join(t["endpoint"] or t["name"] for t in targets))
    return True


def force_flush(timeout_millis: int = 5000) -> bool:
    provider = _state.provider
    return bool(provider is None or provider.force_flush(timeout_millis))


def shutdown_telemetry(timeout: float = 5.0) -> None:
    """Export what is buffered and stop (the runtime's shutdown path); waits at most ``timeout``
    seconds so an unreachable collector cannot hold up the exit."""
    with _state.lock:
        provider, _state.provider, _state.tracer = _state.provider, None, None
    if provider is None:
        return
    worker = threading.Thread(target=provider.shutdown, name="otel-shutdown", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        log.warning("telemetry: exporters did not finish within %ss; some spans may be lost", timeout)


# ----------------------------------------------------------------------------- propagation


def inject_trace_headers(headers: dict | None = None) -> dict:
    """Add ``traceparent`` (and ``tracestate`` / ``baggage``) of the current context to ``headers``."""
    headers = {} if headers is None else headers
    if _propagator is not None:
        _propagator.inject(headers)
    return headers


def extract_trace_context(headers: Mapping[str, str]):
    """The otel Context of inbound headers (case-insensitive names); None without the API."""
    if _propagator is None:
        return None
    return _propagator.extract({str(k).lower(): v for k, v in headers.items()})


def get_current_traceparent() -> str | None:
    """``00-<trace>-<span>-<flags>`` of the current span, or None."""
    return inject_trace_headers({}).get("traceparent")


class TraceContextMiddleware:
    """ASGI: makes the inbound W3C trace context (``traceparent``/``tracestate``/``baggage``) the
    current context while an HTTP request is handled, so the ``a2a.task`` span continues it."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or _propagator is None:
            return await self.app(scope, receive, send)
        carrier = {}
        for name, value in scope.get("headers", []):
            key = name.decode("latin-1").lower()
            if key in ("traceparent", "tracestate", "baggage"):
                carrier[key] = value.decode("latin-1")
        inbound = _propagator.extract(carrier)  # an empty Context without the headers: a new trace
        token = otel_context.attach(inbound)
        inbound_token = _inbound_context.set(inbound)
        try:
            return await self.app(scope, receive, send)
        finally:
            _inbound_context.reset(inbound_token)
            otel_context.detach(token)


# the request's inbound context: the a2a.task span's parent even when library spans sit in between
_inbound_context: contextvars.ContextVar[Any] = contextvars.ContextVar("molecule_inbound_trace", default=None)


# ----------------------------------------------------------------------------- per-task state


@dataclass
class TaskTelemetry:
    """The running A2A task: its span and the usage summed over its model calls."""

    span: Any = None
    input_tokens: int = 0
    output_tokens: int = 0
    model: str = ""
    calls_with_usage: int = 0


_current_task: contextvars.ContextVar[TaskTelemetry | None] = contextvars.ContextVar("molecule_task", default=None)


def current_task() -> TaskTelemetry | None:
    return _current_task.get()


def record_usage(model: str, input_tokens: int | None, output_tokens: int | None, *,
                 task: TaskTelemetry | None = None) -> None:
    """Add one model call's usage to the running task (no-op outside a task or without numbers)."""
    task = task or _current_task.get()
    if task is None or (input_tokens is None and output_tokens is None):
        return
    task.input_tokens += int(input_tokens or 0)
    task.output_tokens += int(output_tokens or 0)
    task.calls_with_usage += 1
    if model:
        task.model = model


def current_usage() -> dict | None:
    """``{"input_tokens", "output_tokens", "model"}`` of the running task, or None when no call reported usage."""
    task = _current_task.get()
    if task is None or not task.calls_with_usage:
        return None
    return {"input_tokens": task.input_tokens, "output_tokens": task.output_tokens, "model": task.model}


def task_failed(description: str = "") -> None:
    """Mark the running task's span as failed (the reply was an ``Agent error``)."""
    task = _current_task.get()
    if task is not None and task.span is not None and HAVE_API:
        task.span.set_status(Status(StatusCode.ERROR, description[:500] or None))


def _message_text(message: Any) -> str:
    if message is None:
        return ""
    return " ".join(p.text for p in getattr(message, "parts", []) if getattr(p, "text", "")).strip()


class TracedExecutor:
    """Wraps an A2A AgentExecutor: one ``a2a.task`` SERVER span per ``execute`` (a child of the
    current context, i.e. the inbound ``traceparent``), and the task's usage accumulator."""

    def __init__(self, inner):
        self.inner = inner

    def __getattr__(self, name):  # tests and adapters reach executor attributes through the app
        return getattr(self.inner, name)

    async def execute(self, context, event_queue) -> None:
        attributes = {"workspace.id": _state.workspace_id or os.environ.get("WORKSPACE_ID", ""),
                      "a2a.task_id": context.task_id or "", "a2a.context_id": context.context_id or ""}
        if capture_content():
            attributes["a2a.input_preview"] = _message_text(context.message)[:PREVIEW_CHARS]
        kwargs: dict[str, Any] = {"attributes": attributes, "record_exception": True, "set_status_on_exception": True}
        if HAVE_API:
            kwargs["kind"] = SpanKind.SERVER
            if _inbound_context.get() is not None:
                kwargs["context"] = _inbound_context.get()
        with tracer().start_as_current_span("a2a.task", **kwargs) as span:
            token = _current_task.set(TaskTelemetry(span=span))
            try:
                await self.inner.execute(context, event_queue)
            finally:
                _current_task.reset(token)

    async def cancel(self, context, event_queue) -> None:
        await self.inner.cancel(context, event_queue)


# ----------------------------------------------------------------------------- model calls


# `<provider>:<model>` prefixes read as the gen_ai.system: these, and the provider map's, which
# adapters/providers.py adds when it loads (telemetry sits below the adapters and imports none).
KNOWN_SYSTEMS = {"google", "gemini", "vertexai", "azure", "bedrock", "mistral", "deepseek", "xai", "claude", "codex"}


def known_systems_add(names: Iterable[str]) -> None:
    KNOWN_SYSTEMS.update(names)


def _known_system(prefix: str) -> bool:
    return prefix in KNOWN_SYSTEMS


def gen_ai_system(model: str, provider: str | None = None) -> str:
    """``openai:gpt-4o`` → ``openai``; an explicit provider wins; no known prefix → ``openai``."""
    if provider:
        return provider
    prefix, sep, _rest = str(model or "").partition(":")
    return prefix.lower() if sep and _known_system(prefix.lower()) else "openai"


def _bare_model(model: str, system: str) -> str:
    """The model without its ``<system>:`` prefix (``ollama`` tags like ``llama3:8b`` stay whole)."""
    prefix, sep, rest = str(model or "").partition(":")
    return rest if sep and prefix.lower() == system else str(model or "")


class ChatCall:
    """One ``chat <model>`` CLIENT span: ``start`` it, then ``end(...)`` with what the model said.

    Usage given to ``end`` is also added to the running task (``record_usage``)."""

    def __init__(self, model: str, *, provider: str | None = None, parent=None, messages: Any = None,
                 attributes: Mapping[str, Any] | None = None, task: TaskTelemetry | None = None):
        system = gen_ai_system(model, provider)
        self.model = _bare_model(model, system)
        self.task = task or _current_task.get()
        self._ended = False
        attrs = {"gen_ai.operation.name": "chat", "gen_ai.system": system,
                 "gen_ai.request.model": self.model, **(attributes or {})}
        if messages is not None and capture_content():
            attrs["gen_ai.prompt"] = _clip(messages)
        kwargs: dict[str, Any] = {"attributes": attrs}
        if HAVE_API:
            kwargs["kind"] = SpanKind.CLIENT
            if parent is not None:
                kwargs["context"] = parent
        self.span = tracer().start_span(f"chat {self.model}".strip(), **kwargs)

    def end(self, *, input_tokens: int | None = None, output_tokens: int | None = None,
            finish_reasons: Iterable[str] | None = None, completion: Any = None, response_model: str | None = None,
            error: BaseException | None = None) -> None:
        if self._ended:
            return
        self._ended = True
        span = self.span
        if input_tokens is not None:
            span.set_attribute("gen_ai.usage.input_tokens", int(input_tokens))
        if output_tokens is not None:
            span.set_attribute("gen_ai.usage.output_tokens", int(output_tokens))
        reasons = [str(r) for r in (finish_reasons or []) if r]
        if reasons:
            span.set_attribute("gen_ai.response.finish_reasons", reasons)
        if response_model:
            span.set_attribute("gen_ai.response.model", str(response_model))
        if completion is not None and capture_content():
            span.set_attribute("gen_ai.completion", _clip(completion))
        if error is not None and HAVE_API:
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, str(error)[:500]))
        if self.task is not None and (input_tokens is not None or output_tokens is not None):
            # the usage rides on the task's A2A reply, which the platform meters: not again from the span
            span.set_attribute("molecule.usage.on_reply", True)
        span.end()
        record_usage(self.model, input_tokens, output_tokens, task=self.task)


@contextlib.contextmanager
def chat_span(model: str, *, provider: str | None = None, messages: Any = None):
    """``with chat_span(model, messages=...) as call: ...; call.end(input_tokens=..., ...)``; an
    exception inside ends the span with status error."""
    call = ChatCall(model, provider=provider, messages=messages)
    try:
        yield call
    except BaseException as exc:
        call.end(error=exc)
        raise
    finally:
        call.end()


@contextlib.contextmanager
def agent_span(agent: str, *, model: str | None = None):
    """One ``invoke_agent <agent>`` CLIENT span around a run of an agent whose model calls this
    process does not see (a custom CLI): ``gen_ai.operation.name=invoke_agent``,
    ``gen_ai.agent.name``, ``gen_ai.request.model`` when a model is configured, and no usage (none
    is known). An exception inside ends it with status error."""
    attrs = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
    if model:
        attrs["gen_ai.request.model"] = model
    kwargs: dict[str, Any] = {"attributes": attrs, "record_exception": True, "set_status_on_exception": True}
    if HAVE_API:
        kwargs["kind"] = SpanKind.CLIENT
    with tracer().start_as_current_span(f"invoke_agent {agent}".strip(), **kwargs) as span:
        yield span


def langchain_callback(model: str, provider: str | None = None):
    """A LangChain callback handler giving each chat-model run a ``chat <model>`` span (child of
    the current context when created) with the run's usage; None without langchain_core."""
    try:
        from langchain_core.callbacks import BaseCallbackHandler
    except ImportError:
        return None
    parent = otel_context.get_current() if HAVE_API else None
    task = _current_task.get()

    class OtelCallback(BaseCallbackHandler):
        run_inline = True  # called in the run's own context, in order

        def __init__(self) -> None:
            self.calls: dict[Any, ChatCall] = {}

        def on_chat_model_start(self, serialized, messages, *, run_id, **kwargs):
            prompt = None
            if capture_content():
                prompt = [[{"role": getattr(m, "type", ""), "content": getattr(m, "content", "")} for m in batch]
                          for batch in messages]
                prompt = prompt[0] if len(prompt) == 1 else prompt
            name = ((kwargs.get("invocation_params") or {}).get("model")
                    or (kwargs.get("invocation_params") or {}).get("model_name") or model)
            self.calls[run_id] = ChatCall(name, provider=provider, parent=parent, messages=prompt, task=task)

        def on_llm_end(self, response, *, run_id, **kwargs):
            call = self.calls.pop(run_id, None)
            if call is None:
                return
            usage_in = usage_out = None
            reasons: list[str] = []
            texts: list[str] = []
            response_model = None
            for batch in getattr(response, "generations", None) or []:
                for generation in batch:
                    message = getattr(generation, "message", None)
                    usage = getattr(message, "usage_metadata", None) or {}
                    if usage:
                        usage_in = (usage_in or 0) + int(usage.get("input_tokens") or 0)
                        usage_out = (usage_out or 0) + int(usage.get("output_tokens") or 0)
                    meta = {**(getattr(generation, "generation_info", None) or {}),
                            **(getattr(message, "response_metadata", None) or {})}
                    reason = meta.get("finish_reason") or meta.get("stop_reason") or meta.get("done_reason")
                    if reason:
                        reasons.append(str(reason))
                    response_model = response_model or meta.get("model_name") or meta.get("model")
                    texts.append(getattr(generation, "text", "") or "")
            if usage_in is None:
                token_usage = (getattr(response, "llm_output", None) or {}).get("token_usage") or {}
                if token_usage:
                    usage_in = token_usage.get("prompt_tokens")
                    usage_out = token_usage.get("completion_tokens")
            call.end(input_tokens=usage_in, output_tokens=usage_out, finish_reasons=reasons,
                     completion="".join(texts), response_model=response_model)

        def on_llm_error(self, error, *, run_id, **kwargs):
            call = self.calls.pop(run_id, None)
            if call is not None:
                call.end(error=error)

    return OtelCallback()


# ----------------------------------------------------------------------------- tools


def traced_tool(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (an async tool) inside an ``execute_tool <name>`` INTERNAL span; a result
    ``{"error": ...}`` marks the span as failed. Signature and docstring are kept (tool schemas)."""
    import functools

    @functools.wraps(fn)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        kind = SpanKind.INTERNAL if HAVE_API else None
        attributes = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": name}
        with tracer().start_as_current_span(f"execute_tool {name}", kind=kind, attributes=attributes,
                                            record_exception=True, set_status_on_exception=True) as span:
            result = await fn(*args, **kwargs)
            if isinstance(result, dict) and result.get("error") and HAVE_API:
                span.set_status(Status(StatusCode.ERROR, str(result["error"])[:500]))
            return result

    return wrapper
