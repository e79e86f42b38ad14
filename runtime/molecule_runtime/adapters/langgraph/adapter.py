"""LangGraph adapter: a prebuilt ReAct agent over an OpenAI-compatible model (spec/runtime.md §3.3)."""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from ...skills import load_skills
from ..base import AdapterCheck, AdapterConfig, BaseAdapter, TranscriptMixin
from ..shared_runtime import (build_system_prompt, check_adapter_config, collect_tools, missing_modules,
                              replace_skills, resolve_llm_settings, settings_problems)
from .executor import LangGraphExecutor

log = logging.getLogger(__name__)

REQUIRED_MODULES = ("langgraph", "langchain_openai", "langchain_core")
EXTRA = "langgraph"


class LangGraphAdapter(TranscriptMixin, BaseAdapter):
    """ReAct: the model reasons, calls tools (built-in + skills), and answers."""

    def __init__(self) -> None:  # no side effects: the heartbeat may instantiate this class
        self.loaded_skills = []
        self.all_tools = {}
        self.system_prompt = ""
        self.settings = None
        self._executor: LangGraphExecutor | None = None

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

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        return check_adapter_config(self.name(), config.model, config.runtime_config.as_dict(), env,
                                    REQUIRED_MODULES, EXTRA)

    async def setup(self, config: AdapterConfig) -> None:
        missing = missing_modules(REQUIRED_MODULES)
        if missing:
            raise RuntimeError(f"runtime 'langgraph' needs the Python package(s) {', '.join(missing)}: "
                               f"pip install 'molecule-runtime[{EXTRA}]'")
        try:
            settings = resolve_llm_settings(config.model, config.runtime_config, os.environ)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problems = settings_problems(settings, self.name())
        if problems and not config.smoke_mode:
            raise RuntimeError("; ".join(p.detail for p in problems))
        if config.smoke_mode and not settings.api_key:  # smoke mode never reaches a real provider
            settings = dataclasses.replace(settings, api_key="sk-smoke-placeholder")
        self.settings = settings
        config_path = Path(config.config_path)
        self.loaded_skills = load_skills(config_path, list(config.tools), current_runtime=self.name())
        self.all_tools = collect_tools(config.builtin_tools, self.loaded_skills)
        self.system_prompt = config.system_prompt or build_system_prompt(
            config_path, config.prompt_files, self.loaded_skills, tool_names=list(self.all_tools))

    async def create_executor(self, config: AdapterConfig) -> LangGraphExecutor:
        self._executor = LangGraphExecutor(settings=self.settings, heartbeat=config.heartbeat,
                                           beat_now=config.beat_now, tools=self.all_tools,
                                           system_prompt=self.system_prompt, transcript=self.record)
        return self._executor

    def replace_skills(self, reloaded: dict) -> None:
        """Hot-reload hook: swap reloaded skills; the executor rebuilds its graph on the next task."""
        old_skill_tools = {n for s in self.loaded_skills for n in s.tools}
        self.loaded_skills = replace_skills(self.loaded_skills, reloaded)
        builtin = {n: f for n, f in self.all_tools.items() if n not in old_skill_tools}
        self.all_tools = collect_tools(builtin, self.loaded_skills)
        if self._executor is not None:
            self._executor.tools = self.all_tools

    async def transcript_lines(self, since: int = 0, limit: int = 100) -> dict:
        lines = self._transcript()[since: since + limit]
        cursor = since + len(lines)
        return {"runtime": self.name(), "supported": True, "lines": lines, "cursor": cursor,
                "more": cursor < len(self._transcript()), "source": "memory"}
