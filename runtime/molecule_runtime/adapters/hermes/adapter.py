"""Hermes adapter: Nous Research's Hermes Agent as the agent loop (spec/runtime.md §3.3 `hermes`).

Settings (`resolve_hermes_settings`):
- model: env `HERMES_MODEL`, else `model:` (env `MODEL_PROVIDER` overrides that, as for every
  runtime). `nous:<model>` → Nous Portal (`NOUS_API_KEY`); `openrouter:<model>` → OpenRouter
  (`OPENROUTER_API_KEY`); the other known prefixes (`openai:`, `ollama:`, `vllm:`…) resolve exactly
  as for the `openai` runtime (`OPENAI_API_KEY`, `OPENAI_BASE_URL`). A bare model name picks the
  first key that is set: `NOUS_API_KEY` (Nous Portal), `OPENROUTER_API_KEY` (OpenRouter), else
  `OPENAI_API_KEY` (any OpenAI-compatible endpoint at `OPENAI_BASE_URL`).
- endpoint: `OPENAI_BASE_URL`, else `runtime_config.base_url`, else the provider's default.
- `runtime_config.max_iterations` (90, hermes' default: model calls per task),
  `runtime_config.toolsets` (extra hermes toolsets to enable besides ours, e.g. `[terminal, file,
  web]`; none by default), `runtime_config.hermes_home` (hermes' state directory; default a private
  0700 directory under the system temp dir, one per workspace — never `~/.hermes`),
  `max_retries` (hermes' `agent.api_max_retries`).

Setup writes `<hermes_home>/config.yaml` and, outside smoke mode, runs the health probe: hermes
imports, and every Molecule tool is registered in hermes' registry and offered by its toolset.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
import re
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ...attachments import ChatFiles
from ..base import AdapterCheck
from ..providers import PROVIDERS, LLMSettings, _rc_int, resolve_llm_settings, settings_problems
from ..shared_runtime import (
    LLMAdapter, dependency_problem,
)

NOUS_BASE_URL = "https://inference-api.nousresearch.com/v1"
AUTO_KEY_NAMES = "NOUS_API_KEY or OPENROUTER_API_KEY"
DEFAULT_MAX_ITERATIONS = 90


@dataclass(frozen=True)
class HermesSettings:
    llm: LLMSettings
    hermes_provider: str  # AIAgent(provider=...): "nous", "openrouter" or "custom"
    max_iterations: int = DEFAULT_MAX_ITERATIONS
    toolsets: tuple[str, ...] = ()
    hermes_home: str = ""


def _nous(model: str, rc: dict, env: Mapping[str, str]) -> LLMSettings:
    key_env = str(rc.get("api_key_env") or "").strip() or "NOUS_API_KEY"
    base = env.get("OPENAI_BASE_URL") or str(rc.get("base_url") or "") or NOUS_BASE_URL
    shared = resolve_llm_settings("openai:" + model, {**rc, "api_key_env": key_env}, env)
    return dataclasses.replace(shared, provider="nous", base_url=base)


def resolve_hermes_settings(model: str, runtime_config: Mapping[str, Any] | None = None,
                            env: Mapping[str, str] | None = None) -> HermesSettings:
    """Model, endpoint, key and hermes options. Raises ValueError on malformed runtime_config."""
    rc = dict(runtime_config or {})
    env = os.environ if env is None else env
    raw = str(env.get("HERMES_MODEL") or model or "").strip()
    prefix, sep, rest = raw.partition(":")
    prefix = prefix.lower() if sep else ""
    if prefix == "nous":
        llm = _nous(rest.strip(), rc, env)
    elif prefix in PROVIDERS:
        llm = resolve_llm_settings(raw, rc, env)
    elif rc.get("api_key_env"):  # a bare name with a named key variable: any OpenAI-compatible endpoint
        llm = resolve_llm_settings("openai:" + raw, rc, env)
    elif env.get("NOUS_API_KEY"):
        llm = _nous(raw, rc, env)
    elif env.get("OPENROUTER_API_KEY"):
        llm = resolve_llm_settings("openrouter:" + raw, rc, env)
    elif env.get("OPENAI_API_KEY"):
        llm = resolve_llm_settings("openai:" + raw, rc, env)
    else:  # no key at all: name every variable that would do
        llm = dataclasses.replace(resolve_llm_settings("openai:" + raw, rc, env), provider="auto",
                                  api_key=None, api_key_env=AUTO_KEY_NAMES,
                                  api_key_envs=(AUTO_KEY_NAMES, "OPENAI_API_KEY with OPENAI_BASE_URL"))
    provider = llm.provider if llm.provider in ("nous", "openrouter") else "custom"
    toolsets = rc.get("toolsets") or []
    if isinstance(toolsets, str):
        toolsets = [t for t in re.split(r"[,\s]+", toolsets) if t]
    if not isinstance(toolsets, list) or not all(isinstance(t, str) for t in toolsets):
        raise ValueError(f"runtime_config.toolsets must be a list of hermes toolset names, got {toolsets!r}")
    return HermesSettings(llm=llm, hermes_provider=provider,
                          max_iterations=_rc_int(rc, "max_iterations", DEFAULT_MAX_ITERATIONS, 1),
                          toolsets=tuple(t for t in toolsets if t != "molecule"),
                          hermes_home=str(rc.get("hermes_home") or ""))


def private_hermes_home(workspace_id: str, configured: str = "") -> Path:
    """hermes' HERMES_HOME: `runtime_config.hermes_home`, else `<tmp>/molecule-hermes-<workspace>`."""
    if configured:
        return Path(configured).expanduser()
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", workspace_id or "local")
    return Path(tempfile.gettempdir()) / f"molecule-hermes-{safe}-{os.getuid()}"


def prepare_hermes_home(home: Path, settings: HermesSettings) -> Path:
    """Create the private directory (0700) and hermes' config.yaml; point HERMES_HOME at it.

    HERMES_HOME is process-wide: hermes reads it at import and on every state access.
    """
    home.mkdir(parents=True, exist_ok=True, mode=0o700)
    info = home.lstat()
    if home.is_symlink() or info.st_uid != os.getuid():  # e.g. planted in a shared /tmp by another user
        raise RuntimeError(f"hermes home {home} is not a directory owned by this user "
                           "(set runtime_config.hermes_home to a private directory)")
    os.chmod(home, 0o700)
    (home / "config.yaml").write_text(
        "# written by molecule-runtime (hermes adapter); rewritten at every start\n"
        "agent:\n"
        f"  api_max_retries: {settings.llm.max_retries}\n"
        "  environment_probe: false\n", encoding="utf-8")
    os.environ["HERMES_HOME"] = str(home)
    return home


class HermesAdapter(LLMAdapter):
    """Hermes Agent's loop (AIAgent.run_conversation) over an OpenAI-compatible endpoint."""

    REQUIRED_MODULES = ("run_agent", "model_tools")
    EXTRA = "hermes"

    def __init__(self) -> None:
        super().__init__()
        self.hermes_settings = None

    def executor_class(self):
        from .executor import HermesExecutor

        return HermesExecutor

    @staticmethod
    def name() -> str:
        return "hermes"

    @staticmethod
    def display_name() -> str:
        return "Hermes Agent"

    @staticmethod
    def description() -> str:
        return ("Nous Research's Hermes Agent loop over Nous Portal, OpenRouter or any OpenAI-compatible "
                "endpoint, with the Molecule tools as a hermes toolset")

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string", "description": "endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "description": "variable holding the key (default by provider)"},
            "max_iterations": {"type": "integer", "default": DEFAULT_MAX_ITERATIONS},
            "max_retries": {"type": "integer", "default": 2},
            "toolsets": {"type": "array", "items": {"type": "string"}, "default": [],
                         "description": "extra hermes toolsets (terminal, file, web…)"},
            "hermes_home": {"type": "string", "description": "hermes state dir (default: private temp dir)"},
        }

    def idle_timeout_override(self) -> int | None:
        return 1800  # hermes runs may be long (the platform's liveness default for hermes is 30 min)

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        checks = []
        dep = dependency_problem(self.name(), self.REQUIRED_MODULES, self.EXTRA)
        if dep is not None:
            checks.append(dep)
        try:
            settings = resolve_hermes_settings(config.model, config.runtime_config.as_dict(), env)
        except ValueError as exc:
            return checks + [AdapterCheck("Invalid runtime_config", str(exc))]
        return checks + settings_problems(settings.llm, self.name())

    def resolve_settings(self, config):
        try:
            settings = resolve_hermes_settings(config.model, config.runtime_config, os.environ)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problems = settings_problems(settings.llm, self.name())
        if problems and not config.smoke_mode:
            raise RuntimeError("; ".join(p.detail for p in problems))
        if config.smoke_mode and not settings.llm.api_key:  # smoke mode never reaches a real provider
            settings = dataclasses.replace(settings, llm=dataclasses.replace(settings.llm, api_key="sk-smoke-never-sent"))
        home = prepare_hermes_home(private_hermes_home(config.workspace_id, settings.hermes_home), settings)
        self.hermes_settings = dataclasses.replace(settings, hermes_home=str(home))
        return self.hermes_settings.llm

    async def setup(self, config) -> None:
        await super().setup(config)
        if not config.smoke_mode:  # the health probe imports hermes (seconds); smoke mode skips it
            from .executor import health_probe

            await health_probe(self.all_tools, self.hermes_settings.toolsets)

    async def create_executor(self, config):
        self._executor = self.executor_class()(settings=self.settings, hermes=self.hermes_settings,
                                               heartbeat=config.heartbeat, beat_now=config.beat_now,
                                               tools=self.all_tools, system_prompt=self.system_prompt,
                                               transcript=self.record, chat_files=ChatFiles(platform=config.platform),
                                               checkpoints=self.checkpoints)
        return self._executor
