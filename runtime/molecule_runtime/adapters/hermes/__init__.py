"""`hermes`: Nous Research's Hermes Agent (`hermes-agent`) as the agent loop.

Per A2A message the executor builds a `run_agent.AIAgent` (hermes' own library API) with the
resolved OpenAI-compatible endpoint and key, and calls `AIAgent.run_conversation(text,
system_message=<workspace prompt>, conversation_history=<A2A history>)` in a worker thread; hermes'
loop calls the model over HTTP and runs the tools. The Molecule built-in tools and skill tools are
registered in hermes' tool registry as the toolset `molecule` (hermes' own `delegate_task`, which
spawns hermes sub-agents, is replaced by ours: the agent loop's dispatch of that name is routed to
the Molecule tool). Hermes keeps its state (`HERMES_HOME`: config.yaml, logs, state.db) in a private
directory, never `~/.hermes`. No hermes gateway is started.

hermes-agent pins exact versions, so it lives in its own environment (`molecule-runtime[hermes]`
there); it is imported lazily, so importing this package is free.
"""

from .adapter import HermesAdapter as Adapter
from .executor import HermesExecutor

__all__ = ["Adapter", "HermesExecutor"]
