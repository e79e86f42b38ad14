"""CrewAI adapter: a one-agent `crewai.Crew` over an OpenAI-compatible model (spec/runtime.md §3.3)."""

from __future__ import annotations

import asyncio

from ..shared_runtime import LLMAdapter


class CrewAIAdapter(LLMAdapter):
    """A CrewAI agent (role/backstory from the system prompt) that calls the platform tools."""

    # crewai's native OpenAI provider is the `openai` SDK (a crewai dependency)
    REQUIRED_MODULES = ("crewai", "openai")
    EXTRA = "crewai"

    def executor_class(self):
        from .executor import CrewAIExecutor

        return CrewAIExecutor

    async def setup(self, config) -> None:
        await super().setup(config)
        from .executor import load_crewai

        # importing crewAI takes seconds: pay it at boot (smoke mode included, so a broken crewAI
        # install fails the boot gate), not in the first A2A request
        await asyncio.to_thread(load_crewai)

    @staticmethod
    def name() -> str:
        return "crewai"

    @staticmethod
    def display_name() -> str:
        return "CrewAI"

    @staticmethod
    def description() -> str:
        return "CrewAI agent, task and crew over an OpenAI-compatible model, with the built-in tools as CrewAI tools"

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string", "description": "endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "default": "OPENAI_API_KEY"},
            "max_tool_rounds": {"type": "integer", "default": 10,
                                "description": "the agent's max_iter: model calls before crewAI forces a final answer"},
            "max_retries": {"type": "integer", "default": 2},
            "timeout": {"type": "number", "default": 0},
            "temperature": {"type": "number"},
        }
