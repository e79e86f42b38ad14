"""`deepagents`: LangChain's Deep Agents (`deepagents.create_deep_agent`) — planning (`write_todos`),
a real filesystem rooted at the workspace (`ls`/`read_file`/`write_file`/`edit_file`/`glob`/`grep`),
sub-agents (`task`), `CLAUDE.md` memory and a per-context MemorySaver thread — over the same provider
map and LangChain chat models as `langgraph`, with the Molecule built-in and skill tools added.

Streaming, tool trace, errors and cancel are the langgraph executor's. deepagents and LangChain are
imported lazily (extra `molecule-runtime[deepagents]`), so importing this package is free.
"""

from .adapter import DeepAgentsAdapter as Adapter
from .executor import DeepAgentsExecutor

__all__ = ["Adapter", "DeepAgentsExecutor"]
