"""CLI adapter: an agent CLI per message, `codex` or a custom command (spec/runtime.md §3.3).

runtime_config:
- `preset`: `codex` or `custom`; default `codex` unless `command` names another binary.
- `command`: the binary (name on PATH or a path); `codex` for the codex preset.
- `args`: extra arguments (custom: the whole argument list, with `{message}`, `{system_prompt}`,
  `{model}` placeholders; codex: added before the prompt, e.g. `["-c", "model_reasoning_effort=low"]`).
- `model`: the model the CLI is given; default the top-level `model` without its provider
  prefix (`openai:gpt-4.1-mini` → `gpt-4.1-mini`).
- `timeout`: seconds per message (whole seconds in config.yaml; 0 or unset = 300).
- `cwd`: working directory (default `/workspace` when it exists, else the config dir).
- `sandbox` (codex): `danger-full-access` (default), `workspace-write` or `read-only`.
- codex reaches the model through `resolve_llm_settings` (OPENAI_BASE_URL / `base_url`, the
  provider's key or `api_key_env`, `max_retries`).

System prompt: the shared `build_system_prompt` (prompt files, skills, tools…) followed by the
fixed CLI "Inter-Agent Communication" block below.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any, Mapping

from ...attachments import ChatFiles
from ..base import AdapterCheck, AdapterConfig
from ..shared_runtime import (LLMAdapter, build_system_prompt, collect_tools, gather_extras, resolve_llm_settings,
                              settings_problems, with_platform_instructions)
from ...skills import load_skills

CODEX_NPM_PACKAGE = "@openai/codex@0.171.0"
DEFAULT_TIMEOUT = 300.0
PRESETS = ("codex", "custom")
SANDBOXES = ("danger-full-access", "workspace-write", "read-only")

INTER_AGENT_BLOCK = """## Inter-Agent Communication
You are one workspace in a team of agents. The platform tools are available to you as MCP tools
(server "molecule"): list_peers shows the workspaces you can reach; delegate_task sends one a task
and waits for its answer; delegate_task_async and check_delegation_status do the same without
waiting; send_message_to_user messages the user directly; commit_memory and search_memory store
and recall facts (scope LOCAL, TEAM or GLOBAL). Delegate work that belongs to a peer's role
instead of doing it yourself, and say so when a delegation fails."""


class CLIConfigError(ValueError):
    pass


def _preset(rc: Mapping[str, Any]) -> str:
    preset = str(rc.get("preset") or "").strip().lower()
    if preset:
        if preset not in PRESETS:
            raise CLIConfigError(f"runtime_config.preset must be one of {', '.join(PRESETS)}, got {preset!r}")
        return preset
    command = str(rc.get("command") or "").strip()
    return "custom" if command and Path(command).name != "codex" else "codex"


def _timeout(rc: Mapping[str, Any]) -> float:
    raw = rc.get("timeout")
    if raw is None or raw == "" or raw == 0:  # config.yaml's runtime_config.timeout: 0 = unset
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise CLIConfigError(f"runtime_config.timeout must be a number, got {raw!r}") from None
    if value < 0:
        raise CLIConfigError(f"runtime_config.timeout must be >= 0, got {raw!r}")
    return value


def _args(rc: Mapping[str, Any]) -> list[str]:
    raw = rc.get("args") or []
    if isinstance(raw, str) or not isinstance(raw, (list, tuple)):
        raise CLIConfigError(f"runtime_config.args must be a list of strings, got {raw!r}")
    return [str(a) for a in raw]


def resolve_command(preset: str, rc: Mapping[str, Any], env: Mapping[str, str]) -> tuple[str, str | None]:
    """(the command as configured, its resolved path or None when it is not found)."""
    command = str(rc.get("command") or "").strip() or ("codex" if preset == "codex" else "")
    if not command:
        return "", None
    return command, shutil.which(command, path=env.get("PATH", os.defpath))


def missing_command_check(preset: str, command: str) -> AdapterCheck:
    if preset == "codex":
        return AdapterCheck("Missing CLI", f"runtime 'cli' (preset codex) needs the `{command}` CLI, "
                            "which is not on PATH", f"npm install -g {CODEX_NPM_PACKAGE}")
    if not command:
        return AdapterCheck("Missing command", "runtime 'cli' (preset custom) needs runtime_config.command",
                            "Set runtime_config.command (and args) in config.yaml")
    return AdapterCheck("Missing CLI", f"runtime 'cli' (preset custom): command `{command}` is not on PATH "
                        "or not executable", "Install it in the image or fix runtime_config.command")


def check_cli_config(model: str, rc: Mapping[str, Any], env: Mapping[str, str]) -> list[AdapterCheck]:
    try:
        preset, _ = _preset(rc), _args(rc)
        _timeout(rc)
        sandbox = str(rc.get("sandbox") or SANDBOXES[0])
        if sandbox not in SANDBOXES:
            raise CLIConfigError(f"runtime_config.sandbox must be one of {', '.join(SANDBOXES)}, got {sandbox!r}")
    except CLIConfigError as exc:
        return [AdapterCheck("Invalid runtime_config", str(exc))]
    checks = []
    command, path = resolve_command(preset, rc, env)
    if path is None:
        checks.append(missing_command_check(preset, command))
    if preset == "codex":
        try:
            settings = resolve_llm_settings(model or str(rc.get("model") or ""), rc, env)
        except ValueError as exc:
            return checks + [AdapterCheck("Invalid runtime_config", str(exc))]
        if rc.get("model") and not settings.model:
            settings = dataclasses.replace(settings, model=str(rc["model"]))
        checks += settings_problems(settings, "cli")
    return checks


class CLIAdapter(LLMAdapter):
    """An agent CLI subprocess per message (codex, or any command that prints its reply)."""

    def __init__(self) -> None:
        super().__init__()
        self.plan = None

    @staticmethod
    def name() -> str:
        return "cli"

    @staticmethod
    def display_name() -> str:
        return "Agent CLI (codex / custom command)"

    @staticmethod
    def description() -> str:
        return ("One CLI subprocess per message: the OpenAI codex CLI with the platform tools over MCP, "
                "or a custom command")

    def executor_class(self):
        from .executor import CLIExecutor

        return CLIExecutor

    def get_config_schema(self) -> dict:
        return {
            "preset": {"type": "string", "enum": list(PRESETS), "default": "codex"},
            "command": {"type": "string", "description": "CLI binary (codex, or the custom command)"},
            "args": {"type": "array", "items": {"type": "string"},
                     "description": "extra args; custom: {message}, {system_prompt}, {model} are replaced"},
            "model": {"type": "string", "description": "model given to the CLI (default: `model` without prefix)"},
            "timeout": {"type": "number", "default": DEFAULT_TIMEOUT},
            "cwd": {"type": "string", "description": "working directory (default /workspace or the config dir)"},
            "sandbox": {"type": "string", "enum": list(SANDBOXES), "default": SANDBOXES[0]},
            "base_url": {"type": "string", "description": "codex: endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "default": "OPENAI_API_KEY"},
            "max_retries": {"type": "integer", "default": 2},
        }

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        return check_cli_config(config.model, config.runtime_config.as_dict(), env)

    async def setup(self, config: AdapterConfig) -> None:
        from .executor import CLIPlan

        rc = dict(config.runtime_config or {})
        env = os.environ
        problems = check_cli_config(config.model, rc, env)
        fatal = [p for p in problems if not (config.smoke_mode and p.demote_in_smoke)]
        if fatal:
            raise RuntimeError("; ".join(f"{p.detail} ({p.fix})" if p.fix else p.detail for p in fatal))
        preset = _preset(rc)
        _command, path = resolve_command(preset, rc, env)
        config_path = Path(config.config_path)
        settings = resolve_llm_settings(config.model or str(rc.get("model") or ""), rc, env)
        api_key = settings.api_key or ("sk-smoke-never-sent" if config.smoke_mode else None)
        cwd = str(rc.get("cwd") or ("/workspace" if Path("/workspace").is_dir() else config_path))
        platform = config.platform
        mcp_env = {
            "WORKSPACE_ID": config.workspace_id or env.get("WORKSPACE_ID", ""),
            "PLATFORM_URL": getattr(platform, "platform_url", None) or env.get("PLATFORM_URL", ""),
            "WORKSPACE_CONFIG_PATH": str(config_path.resolve()),
            "CONFIGS_DIR": str(Path(getattr(platform, "config_dir", None) or env.get("CONFIGS_DIR") or config_path)
                               .resolve()),
            "PYTHONPATH": os.pathsep.join(p for p in (str(Path(__file__).resolve().parents[3]),
                                                      env.get("PYTHONPATH", "")) if p),
        }
        from .executor import TOOL_ENV

        mcp_env.update({name: env[name] for name in TOOL_ENV if env.get(name)})
        self.plan = CLIPlan(
            preset=preset, command=path or "", args=_args(rc),
            model=str(rc.get("model") or "") or settings.model, timeout=_timeout(rc), cwd=cwd,
            base_url=settings.base_url, api_key=api_key, max_retries=settings.max_retries,
            sandbox=str(rc.get("sandbox") or SANDBOXES[0]),
            codex_home=str(rc.get("codex_home") or tempfile.mkdtemp(prefix="molecule-codex-home-")),
            mcp_env=mcp_env,
            mcp_command=[sys.executable, "-m", "molecule_runtime.mcp_server"] if preset == "codex" else [],
        )
        extras = await gather_extras(config, self.name())
        self.loaded_skills = load_skills(config_path, list(config.tools), current_runtime=self.name())
        self.loaded_skills += extras.plugin_skills
        self.all_tools = collect_tools(config.builtin_tools, self.loaded_skills, extras)
        base = with_platform_instructions(config.system_prompt, extras) if config.system_prompt else \
            build_system_prompt(config_path, config.prompt_files, self.loaded_skills,
                                tool_names=list(self.all_tools), extras=extras)
        # what a hot reload rebuilds the prompt from (a promoted skill's instructions reach the CLI),
        # the inter-agent block kept after it
        self._prompt_source = None if config.system_prompt else (config_path, list(config.prompt_files), extras)
        self._prompt_tail = [INTER_AGENT_BLOCK]
        self.system_prompt = "\n\n".join(p for p in (base, INTER_AGENT_BLOCK) if p)

    async def create_executor(self, config: AdapterConfig):
        self._executor = self.executor_class()(plan=self.plan, heartbeat=config.heartbeat, beat_now=config.beat_now,
                                               tools=self.all_tools, system_prompt=self.system_prompt,
                                               transcript=self.record, chat_files=ChatFiles(platform=config.platform))
        return self._executor
