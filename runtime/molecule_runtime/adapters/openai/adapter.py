"""OpenAI adapter: chat completions + tool calling over the `openai` SDK (spec/runtime.md §3)."""

from __future__ import annotations

from ..shared_runtime import LLMAdapter


class OpenAIAdapter(LLMAdapter):
    """A chat-completions loop: the model calls tools, gets their results, answers."""

    REQUIRED_MODULES = ("openai",)
    EXTRA = "openai"

    def executor_class(self):
        from .executor import OpenAIExecutor

        return OpenAIExecutor

    @staticmethod
    def name() -> str:
        return "openai"

    @staticmethod
    def display_name() -> str:
        return "OpenAI-compatible"

    @staticmethod
    def description() -> str:
        return "Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, LiteLLM, vLLM) with tool calling"

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string", "description": "endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "default": "OPENAI_API_KEY"},
            "max_tool_rounds": {"type": "integer", "default": 10},
            "max_retries": {"type": "integer", "default": 2},
            "timeout": {"type": "number", "default": 0},
            "temperature": {"type": "number"},
            "stream": {"type": "boolean", "default": True},
        }
