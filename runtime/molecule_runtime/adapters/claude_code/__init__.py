"""`claude-code`: Anthropic's Claude Code agent through `claude-agent-sdk`, which drives the Claude Code
CLI (bundled in the SDK's wheel; `runtime_config.cli_path` or `CLAUDE_CODE_CLI_PATH` picks another).

Each A2A task is one CLI turn (bypassPermissions, cwd /workspace when it has content, else the config
dir) in a Claude session kept per A2A context and resumed by session id; the platform's built-in and
skill tools are an in-process MCP server `a2a`; 429/overloaded answers are retried with back-off.
Auth: `CLAUDE_CODE_OAUTH_TOKEN` or `ANTHROPIC_API_KEY`; endpoint: `ANTHROPIC_BASE_URL`.

The SDK is imported lazily (extra `molecule-runtime[claude-code]`), so importing this package is free.
"""

from .adapter import ClaudeCodeAdapter as Adapter
from .executor import ClaudeCodeExecutor

__all__ = ["Adapter", "ClaudeCodeExecutor"]
