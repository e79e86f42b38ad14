"""`cli`: an agent CLI run as one subprocess per A2A message (spec/runtime.md §3.3, CLI row).

Presets (`runtime_config.preset`, else inferred from `runtime_config.command`):
- `codex` (default): the `@openai/codex` npm CLI, `codex exec --json` with a private
  `CODEX_HOME/config.toml` that points it at the resolved OpenAI-compatible endpoint (Responses
  API), our system prompt as `developer_instructions`, and the platform tools as the MCP server
  `python -m molecule_runtime.mcp_server`.
- `custom`: `runtime_config.command` + `args`, with `{message}`, `{system_prompt}` and `{model}`
  placeholders; without `{message}` the prompt goes on stdin. stdout is the reply.

No Python SDK is needed (the CLI is a binary on PATH), so this package imports nothing heavy.
"""

from .adapter import CLIAdapter as Adapter
from .executor import CLIExecutor

__all__ = ["Adapter", "CLIExecutor"]
