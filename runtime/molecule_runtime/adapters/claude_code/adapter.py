"""Claude Code adapter: the Claude Code CLI driven by `claude-agent-sdk` (spec/runtime.md §3.3 `claude-code`).

Settings are Claude Code's, not the OpenAI-compatible ones of `resolve_llm_settings`: the model is
a Claude alias or id (`sonnet`, `opus`, `claude-sonnet-4-5`…), auth is `CLAUDE_CODE_OAUTH_TOKEN`
or `ANTHROPIC_API_KEY`, and the endpoint is `ANTHROPIC_BASE_URL` (the CLI reads it itself).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from ..base import AdapterCheck, AdapterConfig
from ..shared_runtime import (PROVIDERS, LLMAdapter, dependency_problem)

DEFAULT_MODEL = "sonnet"
AUTH_ENVS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY")
DEFAULT_RATE_LIMIT_RETRIES = 3  # spec: 3 retries with 5/10/20 s back-off
DEFAULT_RETRY_BASE_DELAY = 5.0
TRANSCRIPT_MAX = 1000
SMOKE_KEY = "sk-ant-smoke-never-sent"


@dataclass(frozen=True)
class ClaudeCodeSettings:
    """What the executor needs to start the CLI for a turn."""

    model: str = DEFAULT_MODEL
    auth_env: str | None = None  # the variable that carries the credentials (None: missing)
    base_url: str | None = None  # ANTHROPIC_BASE_URL, informational (the CLI reads the env itself)
    cwd: str = "/workspace"
    rate_limit_retries: int = DEFAULT_RATE_LIMIT_RETRIES
    retry_base_delay: float = DEFAULT_RETRY_BASE_DELAY
    cli_max_retries: int = 0  # the CLI's own API retries (CLAUDE_CODE_MAX_RETRIES); ours are above
    max_turns: int | None = None
    stream: bool = True
    cli_path: str | None = None  # None: the CLI bundled with claude-agent-sdk, else `claude` on PATH
    extra_env: tuple[tuple[str, str], ...] = ()  # e.g. a smoke-mode stand-in key


def _number(rc: Mapping[str, Any], key: str, default: float, minimum: float, kind=float) -> Any:
    raw = rc.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise ValueError(f"runtime_config.{key} must be a {'number' if kind is float else 'integer'}, "
                         f"got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"runtime_config.{key} must be >= {minimum}, got {value}")
    return value


def split_model(model: str, runtime_config: Mapping[str, Any] | None = None) -> str:
    """`runtime_config.model`, else `model:` with an `anthropic:` prefix stripped, else `sonnet`."""
    rc_model = str((runtime_config or {}).get("model") or "").strip()
    if rc_model:
        return rc_model
    raw = str(model or "").strip()
    prefix, sep, rest = raw.partition(":")
    if sep and prefix.lower() == "anthropic":
        return rest.strip() or DEFAULT_MODEL
    return raw or DEFAULT_MODEL


def foreign_provider(model: str) -> str | None:
    """The provider prefix of a model Claude Code cannot run (`openai:gpt-4o` → `openai`), else None."""
    prefix, sep, _ = str(model or "").strip().partition(":")
    prefix = prefix.lower()
    return prefix if sep and prefix in PROVIDERS and prefix != "anthropic" else None


def workspace_cwd(config_path: str | Path, env: Mapping[str, str]) -> str:
    """`WORKSPACE_DIR` (default /workspace) when it exists and has content, else the config dir."""
    workspace = Path(env.get("WORKSPACE_DIR") or "/workspace")
    try:
        if workspace.is_dir() and any(workspace.iterdir()):
            return str(workspace)
    except OSError:
        pass
    return str(Path(config_path).resolve())


def resolve_claude_settings(model: str, runtime_config: Mapping[str, Any] | None = None,
                            env: Mapping[str, str] | None = None, *, config_path: str | Path = "/configs"
                            ) -> ClaudeCodeSettings:
    """Model, auth, working directory and the retry knobs.

    - model: `runtime_config.model`, else `model:` (an `anthropic:` prefix is stripped), else `sonnet`.
    - auth: `CLAUDE_CODE_OAUTH_TOKEN`, else `ANTHROPIC_API_KEY`; endpoint: `ANTHROPIC_BASE_URL`.
    - `runtime_config.rate_limit_retries` (3) and `retry_base_delay` (5 s: waits 5, 10, 20 s) on
      429 / overloaded answers; `cli_max_retries` (0) the CLI's own retries; `max_turns`;
      `stream` (true); `cli_path` (else env `CLAUDE_CODE_CLI_PATH`, else the SDK's bundled CLI).
    Raises ValueError on malformed values.
    """
    rc = dict(runtime_config or {})
    env = os.environ if env is None else env
    stream = rc.get("stream", True)
    if not isinstance(stream, bool):
        raise ValueError(f"runtime_config.stream must be true or false, got {stream!r}")
    max_turns = _number(rc, "max_turns", 0, 0, int)
    return ClaudeCodeSettings(
        model=split_model(model, rc),
        auth_env=next((name for name in AUTH_ENVS if env.get(name)), None),
        base_url=env.get("ANTHROPIC_BASE_URL") or None,
        cwd=workspace_cwd(config_path, env),
        rate_limit_retries=_number(rc, "rate_limit_retries", DEFAULT_RATE_LIMIT_RETRIES, 0, int),
        retry_base_delay=_number(rc, "retry_base_delay", DEFAULT_RETRY_BASE_DELAY, 0.0),
        cli_max_retries=_number(rc, "cli_max_retries", 0, 0, int),
        max_turns=max_turns or None,
        stream=stream,
        cli_path=str(rc.get("cli_path") or env.get("CLAUDE_CODE_CLI_PATH") or "").strip() or None,
    )


def claude_problems(settings: ClaudeCodeSettings, raw_model: str, runtime: str) -> list[AdapterCheck]:
    """Missing credentials (demoted in smoke mode) and a model of another provider (not demoted)."""
    problems = []
    other = foreign_provider(raw_model)
    if other:
        problems.append(AdapterCheck(
            "Unsupported model", f"runtime '{runtime}' runs Claude models through the Claude Code CLI; "
            f"'{raw_model}' is a {other} model", "Set `model:` to anthropic:sonnet (or a claude-… id)"))
    if settings.auth_env is None:
        problems.append(AdapterCheck(
            "Missing API key", f"{' or '.join(AUTH_ENVS)} is not set (runtime '{runtime}', model '{settings.model}')",
            "Set CLAUDE_CODE_OAUTH_TOKEN (`claude setup-token`) or ANTHROPIC_API_KEY via the secrets API",
            demote_in_smoke=True))
    return problems


def project_dir_name(cwd: str) -> str:
    """Claude Code's folder name for a project: every non-alphanumeric character becomes `-`."""
    return re.sub(r"[^A-Za-z0-9]", "-", cwd)


def claude_config_dir(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    configured = env.get("CLAUDE_CONFIG_DIR")
    return Path(configured) if configured else Path(env.get("HOME") or Path.home()) / ".claude"


def latest_transcript(cwd: str, env: Mapping[str, str] | None = None) -> Path | None:
    """The newest `<session>.jsonl` of the project `cwd` under `~/.claude/projects/`."""
    projects = claude_config_dir(env) / "projects"
    for name in dict.fromkeys((project_dir_name(cwd), cwd.replace("/", "-"))):
        folder = projects / name
        files = sorted(folder.glob("*.jsonl"), key=lambda p: p.stat().st_mtime) if folder.is_dir() else []
        if files:
            return files[-1]
    return None


class ClaudeCodeAdapter(LLMAdapter):
    """claude-agent-sdk → Claude Code CLI: one Claude session per A2A context, platform tools over MCP."""

    REQUIRED_MODULES = ("claude_agent_sdk",)
    EXTRA = "claude-code"

    def executor_class(self):
        from .executor import ClaudeCodeExecutor

        return ClaudeCodeExecutor

    @staticmethod
    def name() -> str:
        return "claude-code"

    @staticmethod
    def display_name() -> str:
        return "Claude Code"

    @staticmethod
    def description() -> str:
        return ("Anthropic's Claude Code agent (claude-agent-sdk + the Claude Code CLI) with the platform's "
                "tools as an MCP server, one Claude session per conversation")

    def get_config_schema(self) -> dict:
        return {
            "model": {"type": "string", "default": DEFAULT_MODEL,
                      "description": "Claude alias or id (sonnet, opus, haiku, claude-…); else `model:`"},
            "rate_limit_retries": {"type": "integer", "default": DEFAULT_RATE_LIMIT_RETRIES},
            "retry_base_delay": {"type": "number", "default": DEFAULT_RETRY_BASE_DELAY,
                                 "description": "seconds before the first retry on 429/overloaded; doubles"},
            "cli_max_retries": {"type": "integer", "default": 0},
            "max_turns": {"type": "integer", "description": "agentic turns per task (CLI default when unset)"},
            "stream": {"type": "boolean", "default": True,
                       "description": "stream Claude's text as A2A artifact chunks"},
            "cli_path": {"type": "string", "description": "Claude Code CLI; default: the one bundled with the SDK"},
        }

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        checks = []
        dep = dependency_problem(self.name(), self.REQUIRED_MODULES, self.EXTRA)
        if dep is not None:
            checks.append(dep)
        try:
            settings = resolve_claude_settings(config.model, config.runtime_config.as_dict(), env)
        except ValueError as exc:
            return checks + [AdapterCheck("Invalid runtime_config", str(exc))]
        return checks + claude_problems(settings, config.model, self.name())

    def resolve_settings(self, config: AdapterConfig) -> ClaudeCodeSettings:
        try:
            settings = resolve_claude_settings(config.model, config.runtime_config, os.environ,
                                               config_path=config.config_path)
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problems = claude_problems(settings, config.model, self.name())
        fatal = [p for p in problems if not (config.smoke_mode and p.demote_in_smoke)]
        if fatal:
            raise RuntimeError("; ".join(p.detail for p in fatal))
        if problems:  # smoke mode without credentials: a stand-in that never reaches Anthropic
            settings = dataclasses.replace(settings, extra_env=(("ANTHROPIC_API_KEY", SMOKE_KEY),))
        return settings

    async def transcript_lines(self, since: int = 0, limit: int = 100) -> dict:
        """Lines of the newest Claude Code session transcript of this workspace's cwd (limit ≤ 1000)."""
        limit = max(0, min(int(limit), TRANSCRIPT_MAX))
        since = max(0, int(since))
        cwd = self.settings.cwd if self.settings is not None else workspace_cwd("/configs", os.environ)
        path = latest_transcript(cwd)
        if path is None:
            return {"runtime": self.name(), "supported": True, "lines": [], "cursor": since, "more": False,
                    "source": None}
        raw = path.read_text(encoding="utf-8", errors="replace").splitlines()
        lines = []
        for line in raw[since: since + limit]:
            try:
                lines.append(json.loads(line))
            except ValueError:
                lines.append({"raw": line})
        cursor = since + len(lines)
        return {"runtime": self.name(), "supported": True, "lines": lines, "cursor": cursor,
                "more": cursor < len(raw), "source": str(path)}
