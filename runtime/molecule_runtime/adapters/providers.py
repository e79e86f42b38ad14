"""The provider map: `model: <provider>:<name>` → which API, endpoint and key (spec/runtime.md §3.3).

Every adapter that takes a `model` resolves it here (`resolve_llm_settings`). A provider says:
- `api`: the API it speaks natively — `openai` (chat-completions), `anthropic` (Messages),
  `gemini` (Generative Language API) or `ollama` (Ollama's own /api/chat);
- `base_url`: its OpenAI-compatible endpoint, for the adapters that only speak chat-completions
  (`openai`, `autogen`, `crewai`, `openclaw`, …) — `OPENAI_BASE_URL` overrides it, as always;
- `native_base_url` + `base_url_env`: the endpoint of its native API and the variable that
  overrides it (`ANTHROPIC_BASE_URL`, `GOOGLE_GEMINI_BASE_URL`, `OLLAMA_HOST`; `OPENAI_BASE_URL` for
  the OpenAI-compatible providers). The LangChain-family adapters (`langgraph`, `deepagents`) build
  the native client with `chat_model(settings)`: ChatOpenAI / ChatAnthropic /
  ChatGoogleGenerativeAI / ChatOllama;
- `key_envs`: the key variables, tried in order.

A bare model name means `openai`; an unknown prefix is not a provider, so the name is sent verbatim
(Ollama tags such as `llama3.1:8b` keep their colon).

Nothing here imports an LLM SDK at module level.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Mapping

from .. import telemetry
from .base import AdapterCheck

DEFAULT_MAX_TOOL_ROUNDS = 10
DEFAULT_MAX_RETRIES = 2

# the APIs a provider can speak natively
API_OPENAI = "openai"
API_ANTHROPIC = "anthropic"
API_GEMINI = "gemini"
API_OLLAMA = "ollama"


@dataclass(frozen=True)
class Provider:
    """A model provider selected by the `<provider>:` prefix of `model`."""

    base_url: str | None  # OpenAI-compatible endpoint; None: the SDK default (api.openai.com) or required
    key_envs: tuple[str, ...]  # tried in order; the first is the one named when all are missing
    default_key: str | None = None  # servers that ignore the key (Ollama, vLLM) get this stand-in
    needs_base_url: bool = False
    api: str = API_OPENAI  # what `chat_model` speaks to it
    native_base_url: str | None = None  # the native API's endpoint (None: the SDK default / base_url)
    base_url_env: str = "OPENAI_BASE_URL"  # overrides the native endpoint


# Prefixes that are stripped from `model`. Anything else is sent verbatim.
PROVIDERS: dict[str, Provider] = {
    "openai": Provider(None, ("OPENAI_API_KEY",)),
    "litellm": Provider(None, ("OPENAI_API_KEY", "LITELLM_API_KEY"), needs_base_url=True),
    "vllm": Provider(None, ("OPENAI_API_KEY",), default_key="EMPTY", needs_base_url=True),
    "openrouter": Provider("https://openrouter.ai/api/v1", ("OPENROUTER_API_KEY", "OPENAI_API_KEY")),
    "groq": Provider("https://api.groq.com/openai/v1", ("GROQ_API_KEY", "OPENAI_API_KEY")),
    "cerebras": Provider("https://api.cerebras.ai/v1", ("CEREBRAS_API_KEY",)),
    "qianfan": Provider("https://qianfan.baidubce.com/v2", ("QIANFAN_API_KEY", "AISTUDIO_API_KEY")),
    # Messages API natively; chat-completions adapters use Anthropic's OpenAI-SDK compatibility endpoint
    "anthropic": Provider("https://api.anthropic.com/v1/", ("ANTHROPIC_API_KEY",), api=API_ANTHROPIC,
                          base_url_env="ANTHROPIC_BASE_URL"),
    "google_genai": Provider("https://generativelanguage.googleapis.com/v1beta/openai/",
                             ("GOOGLE_API_KEY", "GEMINI_API_KEY"), api=API_GEMINI,
                             base_url_env="GOOGLE_GEMINI_BASE_URL"),
    "ollama": Provider("http://localhost:11434/v1", ("OPENAI_API_KEY",), default_key="ollama", api=API_OLLAMA,
                       native_base_url="http://localhost:11434", base_url_env="OLLAMA_HOST"),
}
telemetry.known_systems_add(PROVIDERS)  # so a span names the provider of `<provider>:<model>`


@dataclass(frozen=True)
class LLMSettings:
    """Everything an adapter needs to reach the model: `base_url` is the OpenAI-compatible
    endpoint, `api` + `native_base_url` the provider's own API (see the module doc)."""

    provider: str
    model: str
    base_url: str | None
    api_key: str | None
    api_key_env: str  # the variable named when the key is missing
    max_tool_rounds: int = DEFAULT_MAX_TOOL_ROUNDS
    max_retries: int = DEFAULT_MAX_RETRIES
    timeout: float | None = None
    temperature: float | None = None
    stream: bool = True
    needs_base_url: bool = False
    api: str = API_OPENAI
    native_base_url: str | None = None
    api_key_envs: tuple[str, ...] = ()  # every variable that was tried, in order


def _rc_int(rc: Mapping[str, Any], key: str, default: int, minimum: int) -> int:
    raw = rc.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"runtime_config.{key} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"runtime_config.{key} must be >= {minimum}, got {value}")
    return value


def _rc_float(rc: Mapping[str, Any], key: str) -> float | None:
    raw = rc.get(key)
    if raw is None:
        return None
    try:
        return float(raw)
    except (TypeError, ValueError):
        raise ValueError(f"runtime_config.{key} must be a number, got {raw!r}") from None


def split_model(model: str) -> tuple[str, str]:
    """`"groq:llama-3.3"` → ("groq", "llama-3.3"); no or unknown prefix → ("openai", model verbatim)."""
    raw_model = str(model or "").strip()
    prefix, sep, rest = raw_model.partition(":")
    if sep and prefix.lower() in PROVIDERS:
        return prefix.lower(), rest.strip()
    return "openai", raw_model


def resolve_llm_settings(model: str, runtime_config: Mapping[str, Any] | None = None,
                         env: Mapping[str, str] | None = None) -> LLMSettings:
    """Model, endpoints and key for `model` (see the module doc and PROVIDERS).

    - model: `model` (config.yaml, overridden by env `MODEL_PROVIDER`; `runtime_config.model` is
      the CLI runtimes' setting and is not read here). A known provider prefix is stripped; no
      prefix means `openai`.
    - OpenAI-compatible base URL: `OPENAI_BASE_URL`, else `runtime_config.base_url`, else the
      provider's default.
    - native base URL: the provider's `base_url_env` (`OPENAI_BASE_URL`, `ANTHROPIC_BASE_URL`,
      `GOOGLE_GEMINI_BASE_URL`, `OLLAMA_HOST`), else `runtime_config.base_url`, else its default.
    - key: `runtime_config.api_key_env` names the variable to read, else the provider's
      variables in order. Ollama and vLLM ignore the key, so they get a stand-in when none is set.
    - `runtime_config.max_tool_rounds` (10), `max_retries` (2), `timeout` (seconds, 0 = SDK
      default), `temperature`, `stream` (true).
    Raises ValueError on malformed runtime_config values.
    """
    rc = dict(runtime_config or {})
    env = os.environ if env is None else env
    provider_name, model_name = split_model(model)
    provider = PROVIDERS[provider_name]

    rc_base_url = str(rc.get("base_url") or "")
    base_url = env.get("OPENAI_BASE_URL") or rc_base_url or provider.base_url or None
    if provider.api == API_OPENAI:
        native_base_url = base_url
    else:
        native_base_url = env.get(provider.base_url_env) or rc_base_url or provider.native_base_url or None
    key_env = str(rc.get("api_key_env") or "").strip()
    key_envs = (key_env,) if key_env else provider.key_envs
    api_key = next((env[name] for name in key_envs if env.get(name)), None) or provider.default_key

    timeout = _rc_float({"timeout": rc.get("timeout") or 0}, "timeout") or 0.0
    stream = rc.get("stream", True)
    if not isinstance(stream, bool):
        raise ValueError(f"runtime_config.stream must be true or false, got {stream!r}")
    return LLMSettings(
        provider=provider_name, model=model_name, base_url=base_url, api_key=api_key, api_key_env=key_envs[0],
        max_tool_rounds=_rc_int(rc, "max_tool_rounds", DEFAULT_MAX_TOOL_ROUNDS, 1),
        max_retries=_rc_int(rc, "max_retries", DEFAULT_MAX_RETRIES, 0),
        timeout=timeout if timeout > 0 else None, temperature=_rc_float(rc, "temperature"), stream=stream,
        needs_base_url=provider.needs_base_url, api=provider.api, native_base_url=native_base_url,
        api_key_envs=tuple(key_envs),
    )


def settings_problems(settings: LLMSettings, runtime: str) -> list[AdapterCheck]:
    """What is missing to call the model; preflight fails on these (warnings in smoke mode)."""
    problems = []
    if not settings.model:
        problems.append(AdapterCheck("Missing model", f"runtime '{runtime}' needs `model` in config.yaml "
                                     "(e.g. openai:gpt-4o or ollama:llama3.1) or MODEL_PROVIDER",
                                     "Set `model:` in config.yaml", demote_in_smoke=True))
    if not settings.api_key:
        others = [name for name in settings.api_key_envs if name != settings.api_key_env]
        alternatives = f" (or {' or '.join(others)})" if others else ""
        problems.append(AdapterCheck(
            "Missing API key", f"{settings.api_key_env} is not set (runtime '{runtime}', model "
            f"'{settings.provider}:{settings.model}')",
            f"Set {settings.api_key_env}{alternatives} via the secrets API (a local Ollama accepts any "
            "non-empty value)", demote_in_smoke=True))
    if settings.needs_base_url and not settings.base_url:
        problems.append(AdapterCheck(
            "Missing base URL", f"OPENAI_BASE_URL is not set (provider '{settings.provider}' has no default "
            f"endpoint; runtime '{runtime}')", "Set OPENAI_BASE_URL (or runtime_config.base_url)",
            demote_in_smoke=True))
    return problems


# ----------------------------------------------------------------------------- LangChain models

# the LangChain integration package each API needs (for preflight's "Missing dependency")
LANGCHAIN_MODULES = {API_OPENAI: "langchain_openai", API_ANTHROPIC: "langchain_anthropic",
                     API_GEMINI: "langchain_google_genai", API_OLLAMA: "langchain_ollama"}


def chat_model(settings: LLMSettings):
    """The LangChain chat model for `settings.api`: ChatOpenAI (chat-completions, `base_url`),
    ChatAnthropic (Messages), ChatGoogleGenerativeAI (Gemini) or ChatOllama (`native_base_url`).

    Call it from the event loop that will use the model: the OpenAI and Anthropic clients get an
    HTTP client of their own, since the integrations' default ones are cached process-wide and
    bound to the first loop that used them.
    """
    common: dict[str, Any] = {"model": settings.model}
    if settings.temperature is not None:
        common["temperature"] = settings.temperature

    def sdk_kwargs(key_field: str, base_url: str | None) -> dict[str, Any]:
        kwargs = {**common, key_field: settings.api_key, "max_retries": settings.max_retries,
                  "streaming": settings.stream}
        if base_url:
            kwargs["base_url"] = base_url
        if settings.timeout:
            kwargs["timeout"] = settings.timeout
        return kwargs

    if settings.api == API_ANTHROPIC:
        import anthropic
        from langchain_anthropic import ChatAnthropic

        model = ChatAnthropic(**sdk_kwargs("api_key", settings.native_base_url))
        # `_async_client` is a cached_property; give it a client that is not shared across loops
        model.__dict__["_async_client"] = anthropic.AsyncClient(
            **model._client_params, http_client=anthropic.DefaultAsyncHttpxClient())
        return model
    if settings.api == API_GEMINI:
        from langchain_google_genai import ChatGoogleGenerativeAI

        return ChatGoogleGenerativeAI(**sdk_kwargs("google_api_key", settings.native_base_url))
    if settings.api == API_OLLAMA:
        from langchain_ollama import ChatOllama

        kwargs = dict(common)
        if settings.native_base_url:
            kwargs["base_url"] = settings.native_base_url
        if settings.timeout:
            kwargs["client_kwargs"] = {"timeout": settings.timeout}
        return ChatOllama(**kwargs)
    import openai
    from langchain_openai import ChatOpenAI

    # stream_usage: a streamed call ends with its usage (the chat span's tokens, the reply's metadata.usage);
    # ChatOpenAI only asks for it by default on OpenAI's own endpoint
    return ChatOpenAI(**sdk_kwargs("api_key", settings.base_url), http_async_client=openai.DefaultAsyncHttpxClient(),
                      stream_usage=True)
