"""`crewai`: one CrewAI `Agent` + `Task` + `Crew` per A2A request, over crewAI's native OpenAI provider
(`crewai.LLM("openai/<model>")`) pointed at the OpenAI-compatible endpoint `resolve_llm_settings` picks.

- Agent: role = the first line of the system prompt, backstory = the whole system prompt, a fixed
  goal, the built-in and skill tools as CrewAI `BaseTool`s (args schemas from `tools.tool_schemas`).
- Task: the A2A message, prior turns as a "Conversation so far:" prefix.
- Crew: `kickoff()` in a daemon worker thread; tools run back on the runtime's event loop
  (`asyncio.run_coroutine_threadsafe`).
- crewAI's telemetry, trace upload, first-run prompt, version check, memory and embeddings are off.
- Each model call is a `chat <model>` span under the task's span, with its usage, which is summed
  onto the reply (a traced subclass of crewAI's `OpenAICompletion`, telemetry.py).
- `tasks/cancel` ends the A2A task at once; the worker thread cannot be killed, so it is told to
  stop (no further tool or model calls) and its late result is dropped.

crewAI is imported lazily (extra `molecule-runtime[crewai]`, its own environment), so importing
this package is free.
"""

from .adapter import CrewAIAdapter as Adapter
from .executor import CrewAIExecutor

__all__ = ["Adapter", "CrewAIExecutor"]
