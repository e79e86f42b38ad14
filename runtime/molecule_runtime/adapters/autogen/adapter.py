"""AutoGen adapter: `autogen_agentchat.AssistantAgent` over an OpenAI-compatible model (spec/runtime.md §3.3)."""

from __future__ import annotations

from typing import Any, Mapping

from ..base import AdapterCheck
from ..shared_runtime import LLMAdapter

# ModelInfo keys AutoGen reads (autogen_core.models.ModelInfo) and their types
MODEL_INFO_KEYS = {"vision": bool, "function_calling": bool, "json_output": bool, "structured_output": bool,
                   "multiple_system_messages": bool, "family": str}


def parse_model_info(raw: Any) -> dict[str, Any] | None:
    """`runtime_config.model_info` → the ModelInfo overrides, or ValueError naming the bad key."""
    if raw is None or raw == "":
        return None
    if not isinstance(raw, Mapping):
        raise ValueError(f"runtime_config.model_info must be a mapping, got {raw!r}")
    out: dict[str, Any] = {}
    for key, value in raw.items():
        kind = MODEL_INFO_KEYS.get(str(key))
        if kind is None:
            raise ValueError(f"runtime_config.model_info.{key} is not a model_info key "
                             f"(known: {', '.join(MODEL_INFO_KEYS)})")
        if not isinstance(value, kind):
            raise ValueError(f"runtime_config.model_info.{key} must be a {kind.__name__}, got {value!r}")
        out[str(key)] = value
    return out


class AutoGenAdapter(LLMAdapter):
    """An AssistantAgent that calls the platform tools and answers in text."""

    # autogen-ext[openai]: autogen_ext.models.openai needs openai + tiktoken (find_spec of the dotted
    # name would raise, not answer, when autogen_ext itself is missing)
    REQUIRED_MODULES = ("autogen_agentchat", "autogen_core", "autogen_ext", "openai", "tiktoken")
    EXTRA = "autogen"

    def __init__(self) -> None:
        super().__init__()
        self.model_info: dict[str, Any] | None = None

    def executor_class(self):
        from .executor import AutoGenExecutor

        return AutoGenExecutor

    @staticmethod
    def name() -> str:
        return "autogen"

    @staticmethod
    def display_name() -> str:
        return "AutoGen"

    @staticmethod
    def description() -> str:
        return "AutoGen AssistantAgent over an OpenAI-compatible model, with the built-in tools as function tools"

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string", "description": "endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "default": "OPENAI_API_KEY"},
            "max_tool_rounds": {"type": "integer", "default": 10,
                                "description": "AssistantAgent max_tool_iterations; then one answer without tools"},
            "max_retries": {"type": "integer", "default": 2},
            "timeout": {"type": "number", "default": 0},
            "temperature": {"type": "number"},
            "stream": {"type": "boolean", "default": True},
            "model_info": {"type": "object", "description": "AutoGen ModelInfo overrides (vision, function_calling, "
                           "json_output, structured_output, family) for models AutoGen does not know"},
        }

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        checks = super().preflight_checks(config, env)
        try:
            parse_model_info(config.runtime_config.as_dict().get("model_info"))
        except ValueError as exc:
            checks.append(AdapterCheck("Invalid runtime_config", str(exc), "Fix runtime_config.model_info"))
        return checks

    async def setup(self, config) -> None:
        try:
            self.model_info = parse_model_info((config.runtime_config or {}).get("model_info"))
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        await super().setup(config)

    async def create_executor(self, config):
        executor = await super().create_executor(config)
        executor.model_info = self.model_info
        return executor
