"""`openai`: any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, LiteLLM, vLLM…)
through the official `openai` SDK, with tool calling wired to the built-in tools.

The SDK is imported lazily (extra `molecule-runtime[openai]`), so importing this package is free.
"""

from .adapter import OpenAIAdapter as Adapter
from .executor import OpenAIExecutor

__all__ = ["Adapter", "OpenAIExecutor"]
