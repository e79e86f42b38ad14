"""`autogen`: an AutoGen AgentChat `AssistantAgent` over `autogen_ext`'s `OpenAIChatCompletionClient`
pointed at an OpenAI-compatible endpoint, with the built-in and skill tools as AutoGen tools.

Per A2A request one agent runs (`run_stream`): the system prompt is its `system_message`, prior
turns are its model context, tool results are reflected on (`reflect_on_tool_use=True`) so the
reply is always the model's text. AutoGen is imported lazily (extra `molecule-runtime[autogen]`),
so importing this package is free.
"""

from .adapter import AutoGenAdapter as Adapter
from .executor import AutoGenExecutor

__all__ = ["Adapter", "AutoGenExecutor"]
