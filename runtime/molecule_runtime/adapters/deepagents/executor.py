"""DeepAgentsExecutor: `deepagents.create_deep_agent` behind the LangGraph executor (spec/runtime.md §3.3).

The event loop, streaming, tool trace and errors are LangGraphExecutor's (`run` is inherited);
this class only builds another graph and gives it a conversation thread:
- model: `chat_model(settings)` (the provider map: ChatOpenAI / ChatAnthropic / …);
- tools: deepagents' built-ins (`write_todos`, `ls`, `read_file`, `write_file`, `edit_file`,
  `glob`, `grep`, `execute` — which answers an error on this non-sandbox backend —, `task`
  sub-agents) plus Molecule's built-in and skill tools;
- backend: `FilesystemBackend(root_dir=<root>, virtual_mode=False)`: absolute paths are real
  paths, relative ones resolve under the root. Permissions allow read/write under the root and
  the config dir and deny everything else, so a path outside both is refused; the system prompt
  ends with a "## Your Filesystem" section naming the root (the file tools take absolute paths);
- memory: `<config dir>/CLAUDE.md` when present (deepagents' MemoryMiddleware);
- checkpointer: a MemorySaver, `thread_id` = the A2A context id. A context the checkpointer
  already knows gets only the new message (the thread holds the conversation); a new one gets
  `metadata.history` first, as in langgraph;
- recursion limit: `LANGGRAPH_RECURSION_LIMIT`, else deepagents' own (9999) — planning and
  sub-agents take many graph steps, so `max_tool_rounds` does not bound a deep agent.
"""

from __future__ import annotations

import contextvars
import os
import uuid
from pathlib import Path
from typing import Any

from a2a.server.agent_execution import RequestContext
from a2a.server.events import EventQueue

from ..langgraph.executor import LangGraphExecutor
from ..shared_runtime import LLMSettings

DEEPAGENTS_RECURSION_LIMIT = 9_999

# the A2A context id of the task being run (execute → the run task copies the context)
_context_id: contextvars.ContextVar[str] = contextvars.ContextVar("deepagents_context_id", default="")


def filesystem_permissions(roots: list[Path]) -> list:
    """Allow read/write on each root and below; deny every other path (first match wins)."""
    from deepagents import FilesystemPermission

    allowed: list[str] = []
    for root in roots:
        text = root.as_posix().rstrip("/") or "/"
        allowed += [text, f"{text}/**"]
    return [FilesystemPermission(operations=["read", "write"], paths=allowed, mode="allow"),
            FilesystemPermission(operations=["read", "write"], paths=["/**"], mode="deny")]


class DeepAgentsExecutor(LangGraphExecutor):
    runtime_label = "deepagents"

    def __init__(self, *, settings: LLMSettings, root_dir: str | Path, config_dir: str | Path, **kwargs: Any):
        super().__init__(settings=settings, **kwargs)
        self.root_dir = Path(root_dir).resolve()
        self.config_dir = Path(config_dir).resolve()
        self._checkpointer = None

    @property
    def checkpointer(self):
        if self._checkpointer is None:
            from langgraph.checkpoint.memory import MemorySaver

            self._checkpointer = MemorySaver()
        return self._checkpointer

    def memory_files(self) -> list[str]:
        memory = self.config_dir / "CLAUDE.md"
        return [memory.as_posix()] if memory.is_file() else []

    def build_agent(self, model: Any, tools: list):
        from deepagents import create_deep_agent
        from deepagents.backends import FilesystemBackend

        roots = [self.root_dir] + ([self.config_dir] if self.config_dir != self.root_dir else [])
        return create_deep_agent(
            model, tools, system_prompt=self.prompt_with_filesystem(roots),
            backend=FilesystemBackend(root_dir=self.root_dir, virtual_mode=False),
            permissions=filesystem_permissions(roots), memory=self.memory_files() or None,
            checkpointer=self.checkpointer, name="molecule-deepagent")

    def prompt_with_filesystem(self, roots: list[Path]) -> str:
        """Our system prompt plus where the files are (the file tools take absolute paths)."""
        where = ("## Your Filesystem\nYour working directory is " + self.root_dir.as_posix() +
                 ". The file tools take absolute paths; you may read and write only under " +
                 " and ".join(r.as_posix() for r in roots) + ".")
        return "\n\n".join(p for p in (self.system_prompt, where) if p)

    def recursion_limit(self) -> int:
        return super().recursion_limit() if os.environ.get("LANGGRAPH_RECURSION_LIMIT", "").strip() \
            else DEEPAGENTS_RECURSION_LIMIT

    def thread_id(self) -> str:
        return _context_id.get() or uuid.uuid4().hex

    def graph_config(self) -> dict:
        return {**super().graph_config(), "configurable": {"thread_id": self.thread_id()}}

    def graph_input(self, text: str, history: list[tuple[str, str]]) -> dict:
        known = _context_id.get() and self.checkpointer.get_tuple(
            {"configurable": {"thread_id": _context_id.get()}}) is not None
        return super().graph_input(text, [] if known else history)

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        token = _context_id.set(context.context_id or "")
        try:
            await super().execute(context, event_queue)
        finally:
            _context_id.reset(token)
