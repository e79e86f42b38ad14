"""`openclaw`: the Node `openclaw` CLI (npm package `openclaw`) and its gateway.

setup onboards openclaw non-interactively against the workspace's OpenAI-compatible endpoint
(model prefix → URL: openai, groq, openrouter, qianfan, and the other prefixes of
`resolve_llm_settings`), patches the model's contextWindow/maxTokens, copies `/configs/*.md` into
openclaw's workspace, starts `openclaw gateway --port <free port> --bind loopback` in a private
state dir (never the user's `~/.openclaw`) and health-checks it. Each A2A message runs
`openclaw agent --session-id <A2A context id> --message <text> --json`; the reply is the text of
`result.payloads`. Under smoke mode none of this runs. No Python package is needed: preflight
names a missing `openclaw` CLI instead.
"""

from .adapter import OpenClawAdapter as Adapter
from .executor import OpenClawExecutor

__all__ = ["Adapter", "OpenClawExecutor"]
