"""`langgraph`: a LangGraph ReAct agent (`create_react_agent`) over `langchain_openai.ChatOpenAI`
pointed at an OpenAI-compatible endpoint, with the built-in tools as LangChain tools. The seed's
default runtime.

LangGraph and LangChain are imported lazily (extra `molecule-runtime[langgraph]`), so importing
this package is free.
"""

from .adapter import LangGraphAdapter as Adapter
from .executor import LangGraphExecutor

__all__ = ["Adapter", "LangGraphExecutor"]
