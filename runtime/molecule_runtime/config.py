"""config.yaml loading (spec/runtime.md §1).

`load_config(path)` accepts the config directory or the file itself, applies the defaults of
§1.1/§1.2, ignores unknown top-level keys, keeps adapter-specific `runtime_config` keys
(unlike HEAD, Appendix C.10) and raises `ConfigError` naming the bad field or the YAML line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_FILENAME = "config.yaml"
DEFAULT_MODEL = "anthropic:claude-opus-4-7"
DEFAULT_RUNTIME = "langgraph"


class ConfigError(ValueError):
    """config.yaml is missing, is not valid YAML, or has a field of the wrong type."""


@dataclass
class A2AConfig:
    port: int = 8000
    streaming: bool = True
    push_notifications: bool = True


@dataclass
class DelegationConfig:
    retry_attempts: int = 3
    retry_delay: float = 5.0
    timeout: float = 120.0
    escalate: bool = True


@dataclass
class RuntimeConfig:
    command: str = ""
    args: list[str] = field(default_factory=list)
    required_env: list[str] = field(default_factory=list)
    timeout: int = 0
    model: str = ""
    auth_token_env: str = ""
    auth_token_file: str = ""
    extra: dict[str, Any] = field(default_factory=dict)  # adapter-specific keys, kept

    def as_dict(self) -> dict[str, Any]:
        data = {k: v for k, v in vars(self).items() if k != "extra"}
        data.update(self.extra)
        return data


@dataclass
class WorkspaceConfig:
    name: str = "Workspace"
    description: str = ""
    role: str = ""
    version: str = "1.0.0"
    tier: int = 1
    model: str = DEFAULT_MODEL
    runtime: str = DEFAULT_RUNTIME
    runtime_config: RuntimeConfig = field(default_factory=RuntimeConfig)
    initial_prompt: str = ""
    idle_prompt: str = ""
    idle_interval_seconds: int = 600
    skills: list[str] = field(default_factory=list)
    plugins: list[str] = field(default_factory=list)
    tools: list[str] = field(default_factory=list)
    prompt_files: list[str] = field(default_factory=list)
    shared_context: list[str] = field(default_factory=list)
    a2a: A2AConfig = field(default_factory=A2AConfig)
    delegation: DelegationConfig = field(default_factory=DelegationConfig)
    sub_workspaces: list[dict[str, Any]] = field(default_factory=list)
    effort: str = ""
    task_budget: int = 0
    config_path: Path = Path("/configs")
    raw: dict[str, Any] = field(default_factory=dict)  # the parsed YAML, for adapters

    @property
    def effective_prompt_files(self) -> list[str]:
        return self.prompt_files or ["system-prompt.md"]


# --- small typed field readers: each names the field on failure -------------------------


def _str(data: dict, key: str, default: str, prefix: str = "") -> str:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, (dict, list)):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be a string, got {type(value).__name__}")
    return str(value)


def _int(data: dict, key: str, default: int, prefix: str = "") -> int:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be an integer, got {type(value).__name__}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be an integer, got {value!r}") from None


def _float(data: dict, key: str, default: float, prefix: str = "") -> float:
    value = data.get(key, default)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be a number, got bool")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be a number, got {value!r}") from None


def _bool(data: dict, key: str, default: bool, prefix: str = "") -> bool:
    value = data.get(key, default)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be true or false, got {value!r}")
    return value


def _str_list(data: dict, key: str, prefix: str = "") -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be a list of strings, got {value!r}")
    return [str(v) for v in value]


def _map(data: dict, key: str, prefix: str = "") -> dict:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"config.yaml: field '{prefix}{key}' must be a mapping, got {type(value).__name__}")
    return value


def _inline_or_file(data: dict, key: str, config_dir: Path) -> str:
    inline = _str(data, key, "").strip()
    if inline:
        return inline
    rel = _str(data, f"{key}_file", "").strip()
    if rel:
        path = config_dir / rel
        if path.is_file():
            return path.read_text(encoding="utf-8").strip()
    return ""


def resolve_config_file(path: str | os.PathLike) -> Path:
    p = Path(path)
    return p / CONFIG_FILENAME if p.is_dir() or p.suffix not in (".yaml", ".yml") else p


def load_config(path: str | os.PathLike, env: dict[str, str] | None = None) -> WorkspaceConfig:
    """Load `<path>/config.yaml` (or the file `path`) with defaults per spec §1."""
    env = os.environ if env is None else env
    file = resolve_config_file(path)
    if not file.is_file():
        raise ConfigError(f"config.yaml not found at {file}")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"{file}:{where}: invalid YAML: {exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: invalid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: top level must be a mapping, got {type(data).__name__}")

    config_dir = file.parent
    tier_raw = data.get("tier", 1)
    tier = int(tier_raw) if str(tier_raw).isdigit() else 1  # spec §1.1: else 1

    rc = _map(data, "runtime_config")
    known_rc = {"command", "args", "required_env", "timeout", "model", "auth_token_env", "auth_token_file"}
    runtime_config = RuntimeConfig(
        command=_str(rc, "command", "", "runtime_config."),
        args=_str_list(rc, "args", "runtime_config."),
        required_env=_str_list(rc, "required_env", "runtime_config."),
        timeout=_int(rc, "timeout", 0, "runtime_config."),
        model=_str(rc, "model", "", "runtime_config."),
        auth_token_env=_str(rc, "auth_token_env", "", "runtime_config."),
        auth_token_file=_str(rc, "auth_token_file", "", "runtime_config."),
        extra={k: v for k, v in rc.items() if k not in known_rc},
    )
    a2a = _map(data, "a2a")
    delegation = _map(data, "delegation")
    sub = data.get("sub_workspaces") or []
    if not isinstance(sub, list):
        raise ConfigError("config.yaml: field 'sub_workspaces' must be a list")

    model = env.get("MODEL_PROVIDER") or _str(data, "model", DEFAULT_MODEL)
    return WorkspaceConfig(
        name=_str(data, "name", "Workspace"),
        description=_str(data, "description", ""),
        role=_str(data, "role", ""),
        version=_str(data, "version", "1.0.0"),
        tier=tier,
        model=model,
        runtime=_str(data, "runtime", DEFAULT_RUNTIME) or DEFAULT_RUNTIME,
        runtime_config=runtime_config,
        initial_prompt=_inline_or_file(data, "initial_prompt", config_dir),
        idle_prompt=_inline_or_file(data, "idle_prompt", config_dir),
        idle_interval_seconds=_int(data, "idle_interval_seconds", 600),
        skills=_str_list(data, "skills"),
        plugins=_str_list(data, "plugins"),
        tools=_str_list(data, "tools"),
        prompt_files=_str_list(data, "prompt_files"),
        shared_context=_str_list(data, "shared_context"),
        a2a=A2AConfig(
            port=_int(a2a, "port", 8000, "a2a."),
            streaming=_bool(a2a, "streaming", True, "a2a."),
            push_notifications=_bool(a2a, "push_notifications", True, "a2a."),
        ),
        delegation=DelegationConfig(
            retry_attempts=_int(delegation, "retry_attempts", 3, "delegation."),
            retry_delay=_float(delegation, "retry_delay", 5.0, "delegation."),
            timeout=_float(delegation, "timeout", 120.0, "delegation."),
            escalate=_bool(delegation, "escalate", True, "delegation."),
        ),
        sub_workspaces=sub,
        effort=_str(data, "effort", ""),
        task_budget=_int(data, "task_budget", 0),
        config_path=config_dir,
        raw=data,
    )
