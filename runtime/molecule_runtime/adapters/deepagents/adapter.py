"""Deep Agents adapter: `create_deep_agent` with a workspace filesystem, memory and a checkpointer
(spec/runtime.md §3.3).

Filesystem root: `WORKSPACE_DIR` (default /workspace) when it is a directory, else the config dir.
Required packages: deepagents, langgraph, langchain_core and the LangChain integration of the
model's provider (langchain_openai, langchain_anthropic, langchain_google_genai or langchain_ollama),
so preflight names the one that is missing.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Mapping

from ...attachments import workspace_dir
from ..providers import API_OPENAI, LANGCHAIN_MODULES, resolve_llm_settings
from ..shared_runtime import LLMAdapter, check_adapter_config

BASE_MODULES = ("deepagents", "langgraph", "langchain_core")


def required_modules(model: str, runtime_config: Mapping[str, Any] | None, env: Mapping[str, str]) -> tuple[str, ...]:
    try:
        api = resolve_llm_settings(model, runtime_config, env).api
    except ValueError:  # reported as "Invalid runtime_config" by the settings check
        api = API_OPENAI
    return BASE_MODULES + (LANGCHAIN_MODULES[api],)


def filesystem_root(config_path: str | Path, env: Mapping[str, str] | None = None) -> Path:
    """`WORKSPACE_DIR` (default /workspace) if it is a directory, else the config dir."""
    workspace = workspace_dir(dict(os.environ if env is None else env))
    return workspace.resolve() if workspace.is_dir() else Path(config_path).resolve()


class DeepAgentsAdapter(LLMAdapter):
    """A deep agent: plans, works in files under the workspace, spawns sub-agents, answers."""

    REQUIRED_MODULES = BASE_MODULES + ("langchain_openai",)
    EXTRA = "deepagents"

    def __init__(self) -> None:
        super().__init__()
        self.root_dir: Path | None = None
        self.config_dir: Path | None = None

    def executor_class(self):
        from .executor import DeepAgentsExecutor

        return functools.partial(DeepAgentsExecutor, root_dir=self.root_dir, config_dir=self.config_dir)

    @staticmethod
    def name() -> str:
        return "deepagents"

    @staticmethod
    def display_name() -> str:
        return "Deep Agents"

    @staticmethod
    def description() -> str:
        return ("LangChain Deep Agents: planning, a workspace filesystem, sub-agents and CLAUDE.md memory, "
                "with the built-in tools")

    def preflight_checks(self, config, env) -> list:
        rc = config.runtime_config.as_dict()
        return check_adapter_config(self.name(), config.model, rc, env, required_modules(config.model, rc, env),
                                    self.EXTRA)

    async def setup(self, config) -> None:
        self.REQUIRED_MODULES = required_modules(config.model, config.runtime_config, os.environ)
        self.config_dir = Path(config.config_path).resolve()
        self.root_dir = filesystem_root(config.config_path)
        await super().setup(config)

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string",
                         "description": "endpoint of the provider's API; OPENAI_BASE_URL / ANTHROPIC_BASE_URL / "
                                        "GOOGLE_GEMINI_BASE_URL / OLLAMA_HOST win"},
            "api_key_env": {"type": "string", "description": "variable holding the key (default: the provider's)"},
            "max_retries": {"type": "integer", "default": 2},
            "timeout": {"type": "number", "default": 0},
            "temperature": {"type": "number"},
            "stream": {"type": "boolean", "default": True},
        }
