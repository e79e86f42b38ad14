"""Google ADK adapter: an `LlmAgent` on Gemini run by a `Runner` (spec/runtime.md §3.3 `google-adk`).

The model, key and endpoint come from the provider map (`resolve_llm_settings` with the
`google_genai` provider: `GOOGLE_API_KEY` / `GEMINI_API_KEY`, `GOOGLE_GEMINI_BASE_URL`); a bare
Gemini name is read as `google_genai:<name>`. On top of it: Vertex AI (`GOOGLE_GENAI_USE_VERTEXAI`
with `GOOGLE_CLOUD_PROJECT` / `GOOGLE_CLOUD_LOCATION`) and the agent's own knobs.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from typing import Any, Mapping

from ..base import AdapterCheck, AdapterConfig
from ..shared_runtime import (LLMAdapter, _rc_int, dependency_problem,
                              resolve_llm_settings, split_model)

DEFAULT_AGENT_NAME = "molecule-adk-agent"
DEFAULT_MAX_OUTPUT_TOKENS = 8192
DEFAULT_TEMPERATURE = 1.0
GEMINI_PROVIDER = "google_genai"  # the provider map's entry for Gemini's own API
VERTEX_ENV = "GOOGLE_GENAI_USE_VERTEXAI"
ENTERPRISE_ENV = "GOOGLE_GENAI_USE_ENTERPRISE"
# what ADK's model registry sends to Gemini (google.adk.models.Gemini.supported_models)
GEMINI_MODEL = re.compile(r"^(models/)?(gemini-|gemma-|model-optimizer-)|^projects/.+/locations/.+/")
SMOKE_KEY = "smoke-key-never-sent"


@dataclass(frozen=True)
class ADKSettings:
    """What the executor needs to build the LlmAgent, its Gemini client and the RunConfig."""

    model: str
    api_key: str | None
    api_key_env: str  # the variable named when no key is set
    api_key_envs: tuple[str, ...] = ()  # every variable tried, in order
    vertexai: bool = False
    project: str | None = None
    location: str | None = None
    base_url: str | None = None
    agent_name: str = DEFAULT_AGENT_NAME
    max_output_tokens: int = DEFAULT_MAX_OUTPUT_TOKENS
    temperature: float = DEFAULT_TEMPERATURE
    stream: bool = True
    max_tool_rounds: int = 10
    max_retries: int = 2
    timeout: float | None = None

    @property
    def adk_name(self) -> str:
        """`agent_name` as ADK accepts it (an identifier): `molecule-adk-agent` → `molecule_adk_agent`."""
        name = re.sub(r"\W", "_", self.agent_name) or "agent"
        return name if not name[0].isdigit() else f"_{name}"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def gemini_model_name(model: str) -> str:
    """`google_genai:gemini-2.5-flash` and `gemini-2.5-flash` → `gemini-2.5-flash`; another
    provider's model (`openai:gpt-4o`) stays whole, for preflight to name."""
    raw = str(model or "").strip()
    provider, name = split_model(raw)
    return name if provider == GEMINI_PROVIDER or name == raw else raw


def resolve_adk_settings(model: str, runtime_config: Mapping[str, Any] | None = None,
                         env: Mapping[str, str] | None = None) -> ADKSettings:
    """Model, key / Vertex AI project and the agent's knobs.

    - model: `google_genai:<name>` or a bare Gemini name (`gemini-2.5-flash`, `models/…`, a Vertex
      `projects/…` resource).
    - key: `runtime_config.api_key_env` names the variable, else `GOOGLE_API_KEY`, then
      `GEMINI_API_KEY`. With `GOOGLE_GENAI_USE_VERTEXAI=1` (or true; `GOOGLE_GENAI_USE_ENTERPRISE`
      wins when set) the client uses Vertex AI with
      `GOOGLE_CLOUD_PROJECT` / `GOOGLE_CLOUD_LOCATION` (and Application Default Credentials).
    - endpoint: `GOOGLE_GEMINI_BASE_URL` (`GOOGLE_VERTEX_BASE_URL` for Vertex AI), else
      `runtime_config.base_url`, else google-genai's default (the variable wins, as
      `OPENAI_BASE_URL` does for the OpenAI-compatible adapters).
    - `runtime_config.agent_name` (molecule-adk-agent), `max_output_tokens` (8192), `temperature`
      (1.0), `stream` (true), `max_tool_rounds` (10: ADK's `max_llm_calls` is rounds + 1),
      `max_retries` (2), `timeout` (seconds, 0 = none).
    Raises ValueError on malformed values.
    """
    rc = dict(runtime_config or {})
    env = os.environ if env is None else env
    llm = resolve_llm_settings(f"{GEMINI_PROVIDER}:{gemini_model_name(model)}", rc, env)
    # google-genai's newer name for the switch wins when both are set, as in google-genai
    vertexai = _truthy(env[ENTERPRISE_ENV] if env.get(ENTERPRISE_ENV) else env.get(VERTEX_ENV))
    agent_name = rc.get("agent_name")
    if agent_name is None or agent_name == "":
        agent_name = DEFAULT_AGENT_NAME
    if not isinstance(agent_name, str) or not agent_name.strip():
        raise ValueError(f"runtime_config.agent_name must be a non-empty string, got {agent_name!r}")
    base_url = (env.get("GOOGLE_VERTEX_BASE_URL") or str(rc.get("base_url") or "").strip() or None) if vertexai \
        else llm.native_base_url
    return ADKSettings(
        model=llm.model, api_key=llm.api_key, api_key_env=llm.api_key_env, api_key_envs=llm.api_key_envs,
        vertexai=vertexai,
        project=env.get("GOOGLE_CLOUD_PROJECT") or None, location=env.get("GOOGLE_CLOUD_LOCATION") or None,
        base_url=base_url, agent_name=agent_name.strip(),
        max_output_tokens=_rc_int(rc, "max_output_tokens", DEFAULT_MAX_OUTPUT_TOKENS, 1),
        temperature=DEFAULT_TEMPERATURE if llm.temperature is None else llm.temperature,
        stream=llm.stream, max_tool_rounds=llm.max_tool_rounds, max_retries=llm.max_retries, timeout=llm.timeout,
    )


def adk_problems(settings: ADKSettings, raw_model: str, runtime: str) -> list[AdapterCheck]:
    """What is missing to call Gemini; missing keys are demoted in smoke mode, a wrong model is not."""
    problems = []
    if not settings.model:
        problems.append(AdapterCheck("Missing model", f"runtime '{runtime}' needs `model` in config.yaml "
                                     "(e.g. google_genai:gemini-2.5-flash) or MODEL_PROVIDER",
                                     "Set `model:` in config.yaml", demote_in_smoke=True))
    elif not GEMINI_MODEL.search(settings.model):
        problems.append(AdapterCheck(
            "Unsupported model", f"runtime '{runtime}' runs Gemini models; '{raw_model}' is not one",
            "Set `model:` to google_genai:gemini-2.5-flash (or another gemini-… name)"))
    if settings.vertexai:
        missing = [name for name, value in (("GOOGLE_CLOUD_PROJECT", settings.project),
                                            ("GOOGLE_CLOUD_LOCATION", settings.location)) if not value]
        if missing and not settings.api_key:
            problems.append(AdapterCheck(
                "Missing Vertex AI project", f"{' and '.join(missing)} not set ({VERTEX_ENV}=1, runtime '{runtime}')",
                f"Set {', '.join(missing)} (or unset {VERTEX_ENV} and set GOOGLE_API_KEY)", demote_in_smoke=True))
    elif not settings.api_key:
        others = " or ".join(n for n in settings.api_key_envs if n != settings.api_key_env)
        alt = f" (or {others})" if others else ""
        problems.append(AdapterCheck(
            "Missing API key", f"{settings.api_key_env}{alt} is not set (runtime '{runtime}', model "
            f"'{settings.model}')",
            f"Set {settings.api_key_env} via the secrets API, or {VERTEX_ENV}=1 with GOOGLE_CLOUD_PROJECT and "
            "GOOGLE_CLOUD_LOCATION", demote_in_smoke=True))
    return problems


class GoogleADKAdapter(LLMAdapter):
    """google.adk LlmAgent + Runner + InMemorySessionService: one ADK session per A2A context."""

    REQUIRED_MODULES = ("google.adk", "google.genai")
    EXTRA = "google-adk"

    def executor_class(self):
        from .executor import GoogleADKExecutor

        return GoogleADKExecutor

    @staticmethod
    def name() -> str:
        return "google-adk"

    @staticmethod
    def display_name() -> str:
        return "Google ADK"

    @staticmethod
    def description() -> str:
        return ("Google Agent Development Kit: an LlmAgent on Gemini with the built-in tools, "
                "one ADK session per conversation")

    def get_config_schema(self) -> dict:
        return {
            "agent_name": {"type": "string", "default": DEFAULT_AGENT_NAME},
            "max_output_tokens": {"type": "integer", "default": DEFAULT_MAX_OUTPUT_TOKENS},
            "temperature": {"type": "number", "default": DEFAULT_TEMPERATURE},
            "stream": {"type": "boolean", "default": True,
                       "description": "stream Gemini's partial text as A2A artifact chunks"},
            "api_key_env": {"type": "string", "default": "GOOGLE_API_KEY"},
            "base_url": {"type": "string", "description": "Gemini endpoint; GOOGLE_GEMINI_BASE_URL wins"},
            "max_tool_rounds": {"type": "integer", "default": 10},
            "max_retries": {"type": "integer", "default": 2},
            "timeout": {"type": "number", "default": 0},
        }

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        checks = []
        dep = dependency_problem(self.name(), self.REQUIRED_MODULES, self.EXTRA)
        if dep is not None:
            checks.append(dep)
        try:
            settings = resolve_adk_settings(config.model, config.runtime_config.as_dict(), env)
        except ValueError as exc:
            return checks + [AdapterCheck("Invalid runtime_config", str(exc))]
        return checks + adk_problems(settings, config.model, self.name())

    def resolve_settings(self, config: AdapterConfig):
        try:
            settings = resolve_adk_settings(config.model, config.runtime_config, os.environ)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problems = adk_problems(settings, config.model, self.name())
        fatal = [p for p in problems if not (config.smoke_mode and p.demote_in_smoke)]
        if fatal:
            raise RuntimeError("; ".join(p.detail for p in fatal))
        if problems:  # smoke mode without a key: a stand-in that never reaches a real provider
            settings = dataclasses.replace(settings, api_key=SMOKE_KEY, vertexai=False)
        return settings
