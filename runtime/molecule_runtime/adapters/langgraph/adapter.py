"""LangGraph adapter: a prebuilt ReAct agent over an OpenAI-compatible model (spec/runtime.md §3.3)."""

from __future__ import annotations

from ..shared_runtime import LLMAdapter


class LangGraphAdapter(LLMAdapter):
    """ReAct: the model reasons, calls tools (built-in + skills), and answers."""

    REQUIRED_MODULES = ("langgraph", "langchain_openai", "langchain_core")
    EXTRA = "langgraph"

    def executor_class(self):
        from .executor import LangGraphExecutor

        return LangGraphExecutor

    @staticmethod
    def name() -> str:
        return "langgraph"

    @staticmethod
    def display_name() -> str:
        return "LangGraph"

    @staticmethod
    def description() -> str:
        return "LangGraph ReAct agent over an OpenAI-compatible model, with the built-in tools"

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string", "description": "endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "default": "OPENAI_API_KEY"},
            "max_tool_rounds": {"type": "integer", "default": 10,
                                "description": "recursion limit 2n+1 unless LANGGRAPH_RECURSION_LIMIT is set"},
            "max_retries": {"type": "integer", "default": 2},
            "timeout": {"type": "number", "default": 0},
            "temperature": {"type": "number"},
            "stream": {"type": "boolean", "default": True},
        }
