"""Echo adapter: no LLM, no network (spec/runtime.md §11)."""

from __future__ import annotations

import logging
from pathlib import Path

from ...attachments import ChatFiles
from ...skills import load_skills
from ..base import AdapterConfig, BaseAdapter, TranscriptMixin
from ..shared_runtime import collect_tools, gather_extras, with_platform_instructions
from .executor import DEFAULT_PREFIX, EchoExecutor

log = logging.getLogger(__name__)


class EchoAdapter(TranscriptMixin, BaseAdapter):
    """Replies with `prefix + text`; scripted `/tool`, `/sleep`, `/fail`, `/wedge` commands."""

    def __init__(self) -> None:  # no side effects: the heartbeat may instantiate this class
        self.loaded_skills = []
        self.all_tools = {}
        self.system_prompt = ""
        self._executor: EchoExecutor | None = None

    @staticmethod
    def name() -> str:
        return "echo"

    @staticmethod
    def display_name() -> str:
        return "Echo"

    @staticmethod
    def description() -> str:
        return "Deterministic test adapter"

    def get_config_schema(self) -> dict:
        return {"reply_prefix": {"type": "string", "default": DEFAULT_PREFIX},
                "peer_wait_seconds": {"type": "number", "default": 0}}

    async def setup(self, config: AdapterConfig) -> None:
        # skills filtered by runtime "echo" (workspace, then plugin skills); built-in tools first,
        # skill tools after, route_task_to_team when the platform lists children (§8.1)
        config_path = Path(config.config_path)
        extras = await gather_extras(config, self.name())
        self.loaded_skills = load_skills(config_path, list(config.tools), current_runtime=self.name())
        self.loaded_skills += extras.plugin_skills
        self.all_tools = collect_tools(config.builtin_tools, self.loaded_skills, extras)
        prompt_parts = []
        for rel in config.prompt_files or ["system-prompt.md"]:
            path = config_path / rel
            if path.is_file():
                prompt_parts.append(path.read_text(encoding="utf-8").strip())
        for skill in self.loaded_skills:
            if skill.instructions:
                prompt_parts.append(f"## Skill: {skill.metadata.name}\n{skill.instructions}")
        self.system_prompt = with_platform_instructions(
            config.system_prompt or "\n\n".join(p for p in prompt_parts if p), extras)

    async def create_executor(self, config: AdapterConfig) -> EchoExecutor:
        prefix = str(config.runtime_config.get("reply_prefix", DEFAULT_PREFIX))
        try:  # how long `/delegate <name>` waits for a team member that is still starting
            peer_wait = float(config.runtime_config.get("peer_wait_seconds", 0) or 0)
        except (TypeError, ValueError):
            log.warning("runtime_config.peer_wait_seconds is not a number; not waiting for peers")
            peer_wait = 0.0
        self._executor = EchoExecutor(
            heartbeat=config.heartbeat,
            beat_now=config.beat_now,
            tools=self.all_tools,
            prefix=prefix,
            transcript=self.record,
            chat_files=ChatFiles(platform=config.platform),
            peer_wait_seconds=peer_wait,
        )
        return self._executor

    def replace_skills(self, reloaded: dict) -> None:
        """Hot-reload hook: swap reloaded skills (None = removed) and rebuild the tool map."""
        by_id = {s.metadata.id: s for s in self.loaded_skills}
        for skill_id, skill in reloaded.items():
            if skill is None:
                by_id.pop(skill_id, None)
            else:
                by_id[skill_id] = skill
        old_skill_tools = {n for s in self.loaded_skills for n in s.tools}
        self.loaded_skills = list(by_id.values())
        tools = {n: f for n, f in self.all_tools.items() if n not in old_skill_tools}
        for skill in self.loaded_skills:
            tools.update(skill.tools)
        self.all_tools = tools
        if self._executor is not None:
            self._executor.tools = tools

    async def transcript_lines(self, since: int = 0, limit: int = 100) -> dict:
        lines = self._transcript()[since: since + limit]
        cursor = since + len(lines)
        return {"runtime": self.name(), "supported": True, "lines": lines, "cursor": cursor,
                "more": cursor < len(self._transcript()), "source": "memory"}
