"""OpenClaw adapter: onboard the `openclaw` CLI, run its gateway, answer through `openclaw agent`.

Spec/runtime.md §3.3 (openclaw row), §9 (smoke mode). What setup does, in order:

1. Settings: `resolve_llm_settings` picks model, base URL and key from the model prefix (openai,
   groq, openrouter, ollama, litellm, vllm…), plus `qianfan:` (https://qianfan.baidubce.com/v2,
   `QIANFAN_API_KEY` then `AISTUDIO_API_KEY`). With no `runtime_config.api_key_env` and no key for
   the provider, the key falls back to `OPENAI_API_KEY`, then `GROQ_API_KEY`, then
   `OPENROUTER_API_KEY` (the ancestor's order).
2. Under smoke mode it stops here: no CLI call, no gateway.
3. A private state dir (`runtime_config.state_dir`, else a fresh temp dir removed at stop) is
   HOME and `OPENCLAW_HOME` of every openclaw process, so the user's `~/.openclaw` is never read
   or written. `openclaw onboard --non-interactive` writes its config there with a custom
   OpenAI-compatible provider; the real key is then written into that config (mode 0600), never
   put on a command line. contextWindow / maxTokens are patched (`runtime_config.context_window`,
   default 1,000,000; `max_tokens`, default 16,384), the gateway gets a random token and a
   free loopback port, and the platform tools are added as an MCP server when
   `molecule_runtime.mcp_server` is installed.
4. `/configs/*.md` are copied into openclaw's workspace dir; without an `AGENTS.md` there the
   assembled system prompt (§3.4) becomes its `AGENTS.md`, which openclaw puts in the model's
   system prompt.
5. `openclaw gateway --port <port> --bind loopback` starts in its own process group; `GET
   /health` is polled `gateway_health_checks` (15) times, 2 s apart. It is stopped by `aclose()`,
   at interpreter exit, or (Linux) when the runtime process dies.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import dataclasses
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping

from ..base import AdapterCheck, AdapterConfig
from ..shared_runtime import LLMAdapter, LLMSettings, resolve_llm_settings, settings_problems

log = logging.getLogger(__name__)

OPENCLAW_PACKAGE = "openclaw@2026.9.6"
NODE_PACKAGE = "node@24.21.0"  # openclaw's engines.node: >=24.16.0 <25 || >=26.1.0
INSTALL_HINT = f"npm install -g {NODE_PACKAGE} && npm install -g {OPENCLAW_PACKAGE}"
PROVIDER_ID = "molecule"
OPENAI_URL = "https://api.openai.com/v1"
QIANFAN_URL = "https://qianfan.baidubce.com/v2"
QIANFAN_KEYS = ("QIANFAN_API_KEY", "AISTUDIO_API_KEY")
FALLBACK_KEYS = ("OPENAI_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY")
DEFAULT_CONTEXT_WINDOW = 1_000_000
DEFAULT_MAX_TOKENS = 16_384
DEFAULT_HEALTH_CHECKS = 15
HEALTH_INTERVAL = 2.0
DEFAULT_AGENT_TIMEOUT = 120
ONBOARD_TIMEOUT = 180.0
# openclaw's own variables a developer's shell may carry; its processes get ours instead
_OPENCLAW_ENV_PREFIX = "OPENCLAW_"


# ----------------------------------------------------------------------------- settings


def resolve_openclaw_settings(model: str, runtime_config: Mapping[str, Any] | None = None,
                              env: Mapping[str, str] | None = None) -> LLMSettings:
    """`resolve_llm_settings` plus qianfan and the openclaw key fallback (see the module doc)."""
    rc = dict(runtime_config or {})
    env = os.environ if env is None else env
    prefix, sep, rest = str(model or "").strip().partition(":")
    qianfan = bool(sep) and prefix.lower() == "qianfan"
    settings = resolve_llm_settings(rest if qianfan else model, rc, env)
    explicit_key_env = str(rc.get("api_key_env") or "").strip()
    if qianfan:
        keys = (explicit_key_env,) if explicit_key_env else QIANFAN_KEYS
        settings = dataclasses.replace(
            settings, provider="qianfan", base_url=settings.base_url or QIANFAN_URL, api_key_env=keys[0],
            api_key=next((env[k] for k in keys if env.get(k)), None))
    elif not settings.api_key and not explicit_key_env:
        settings = dataclasses.replace(settings, api_key=next((env[k] for k in FALLBACK_KEYS if env.get(k)), None))
    if not settings.base_url and settings.provider == "openai":
        settings = dataclasses.replace(settings, base_url=OPENAI_URL)  # openclaw needs the URL spelled out
    return settings


def find_cli(runtime_config: Mapping[str, Any] | None = None, env: Mapping[str, str] | None = None) -> str | None:
    """The openclaw executable: `runtime_config.openclaw_bin`, else `openclaw` on PATH."""
    env = os.environ if env is None else env
    configured = str((runtime_config or {}).get("openclaw_bin") or "").strip()
    if configured:
        return configured if os.access(configured, os.X_OK) else None
    return shutil.which("openclaw", path=env.get("PATH"))


def _rc_number(rc: Mapping[str, Any], key: str, default: int) -> int:
    raw = rc.get(key)
    if raw in (None, "", 0):  # 0: the shared runtime_config default ("unset")
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise ValueError(f"runtime_config.{key} must be an integer, got {raw!r}") from None
    if value < 1:
        raise ValueError(f"runtime_config.{key} must be >= 1, got {value}")
    return value


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def child_env(state_dir: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of every openclaw process: the private state dir as HOME and OPENCLAW_HOME.

    The model key lives in openclaw's config, so provider keys and the platform's secrets are
    not passed on (the agent can run shell commands)."""
    from ...secret_env import SECRET_ENV_VARS

    base = os.environ if base is None else base
    drop = set(SECRET_ENV_VARS) | set(FALLBACK_KEYS) | set(QIANFAN_KEYS) | {"OPENAI_BASE_URL"}
    env = {k: v for k, v in base.items() if k not in drop and not k.startswith(_OPENCLAW_ENV_PREFIX)}
    env.update(HOME=str(state_dir), OPENCLAW_HOME=str(state_dir), NO_COLOR="1", FORCE_COLOR="0")
    cli_dir = os.path.dirname(os.path.realpath(sys.executable))
    env.setdefault("PATH", cli_dir)
    return env


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: SIGTERM the gateway when the runtime process dies, even by SIGKILL."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:  # noqa: BLE001
        pass


# ----------------------------------------------------------------------------- gateway


class Gateway:
    """One `openclaw gateway` process (its own process group) and its health check."""

    def __init__(self, cli: str, port: int, env: dict[str, str], log_path: Path):
        self.cli, self.port, self.env, self.log_path = cli, port, env, log_path
        self.proc: subprocess.Popen | None = None

    @property
    def health_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/health"

    def start(self) -> None:
        # a plain Popen: the gateway outlives the event loop setup runs in (asyncio would kill
        # its child when that loop closes)
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [self.cli, "gateway", "--port", str(self.port), "--bind", "loopback"], env=self.env,
                cwd=self.env["HOME"], stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def log_tail(self, lines: int = 15) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    async def wait_healthy(self, checks: int, interval: float = HEALTH_INTERVAL) -> None:
        import httpx

        last = "no answer"
        async with httpx.AsyncClient(timeout=interval) as client:
            for _ in range(checks):
                if self.proc is None or self.proc.poll() is not None:
                    code = None if self.proc is None else self.proc.returncode
                    raise RuntimeError(f"openclaw gateway exited with code {code} before it was healthy:\n"
                                       f"{self.log_tail()}")
                started = time.monotonic()
                try:
                    response = await client.get(self.health_url)
                    if response.status_code == 200 and response.json().get("ok"):
                        return
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(max(0.0, interval - (time.monotonic() - started)))
        raise RuntimeError(f"openclaw gateway on port {self.port} not healthy after {checks} checks "
                           f"({last}):\n{self.log_tail()}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # anything the gateway left in its group


# ----------------------------------------------------------------------------- adapter


class OpenClawAdapter(LLMAdapter):
    """The openclaw CLI + gateway; built-in tools reach it as an MCP server (when installed)."""

    EXTRA = "openclaw"

    def __init__(self) -> None:  # no side effects: the heartbeat may instantiate this class
        super().__init__()
        self.cli: str | None = None
        self.state_dir: Path | None = None
        self.gateway: Gateway | None = None
        self._own_state_dir = False
        self.mcp_server_config_enabled = False

    def executor_class(self):
        from .executor import OpenClawExecutor

        return OpenClawExecutor

    @staticmethod
    def name() -> str:
        return "openclaw"

    @staticmethod
    def display_name() -> str:
        return "OpenClaw"

    @staticmethod
    def description() -> str:
        return "The OpenClaw agent CLI and its gateway, on any OpenAI-compatible endpoint"

    def get_config_schema(self) -> dict:
        return {
            "base_url": {"type": "string", "description": "endpoint; OPENAI_BASE_URL wins"},
            "api_key_env": {"type": "string", "default": "OPENAI_API_KEY"},
            "context_window": {"type": "integer", "default": DEFAULT_CONTEXT_WINDOW},
            "max_tokens": {"type": "integer", "default": DEFAULT_MAX_TOKENS},
            "timeout": {"type": "integer", "default": DEFAULT_AGENT_TIMEOUT,
                        "description": "seconds per `openclaw agent` turn"},
            "gateway_health_checks": {"type": "integer", "default": DEFAULT_HEALTH_CHECKS,
                                      "description": "health checks 2 s apart before setup fails"},
            "state_dir": {"type": "string", "description": "keep openclaw's state here (default: a temp dir)"},
            "openclaw_bin": {"type": "string", "description": "the openclaw executable (default: PATH)"},
        }

    def preflight_checks(self, config, env) -> list[AdapterCheck]:
        rc = config.runtime_config.as_dict()
        checks = []
        if find_cli(rc, env) is None:
            checks.append(AdapterCheck(
                "Missing dependency", "runtime 'openclaw' needs the openclaw CLI (npm package openclaw, "
                "Node >= 24.16), which is not on PATH", INSTALL_HINT))
        try:
            settings = resolve_openclaw_settings(config.model, rc, env)
            for key in ("context_window", "max_tokens", "timeout", "gateway_health_checks"):
                _rc_number(rc, key, 1)
        except ValueError as exc:
            return checks + [AdapterCheck("Invalid runtime_config", str(exc))]
        return checks + settings_problems(settings, self.name())

    # -------------------------------------------------------------- setup
    async def setup(self, config: AdapterConfig) -> None:
        rc = dict(config.runtime_config)
        try:
            settings = resolve_openclaw_settings(config.model, rc, os.environ)
            numbers = {key: _rc_number(rc, key, default) for key, default in (
                ("context_window", DEFAULT_CONTEXT_WINDOW), ("max_tokens", DEFAULT_MAX_TOKENS),
                ("timeout", DEFAULT_AGENT_TIMEOUT), ("gateway_health_checks", DEFAULT_HEALTH_CHECKS))}
        except ValueError as exc:
            raise RuntimeError(str(exc)) from None
        problems = settings_problems(settings, self.name())
        if problems and not config.smoke_mode:
            raise RuntimeError("; ".join(p.detail for p in problems))
        # skills, tools and the system prompt as every LLM adapter builds them; the key and URL
        # found above are handed over so the shared checks see what openclaw will use
        shared_rc = {**rc, "base_url": settings.base_url or ""}
        if settings.api_key:
            key_env = next((k for k in (settings.api_key_env, *FALLBACK_KEYS, *QIANFAN_KEYS)
                            if os.environ.get(k) == settings.api_key), settings.api_key_env)
            shared_rc["api_key_env"] = key_env
        await super().setup(dataclasses.replace(config, runtime_config=shared_rc))
        self.settings = dataclasses.replace(settings, timeout=float(numbers["timeout"]))
        if config.smoke_mode:
            return  # §9: no CLI, no onboarding, no gateway
        self.cli = find_cli(rc)
        if self.cli is None:
            raise RuntimeError(f"runtime 'openclaw' needs the openclaw CLI on PATH: {INSTALL_HINT}")
        try:
            await self._start(config, rc, numbers)
        except BaseException:
            await self.aclose()
            raise

    async def _start(self, config: AdapterConfig, rc: dict, numbers: dict) -> None:
        if rc.get("state_dir"):
            self.state_dir = Path(str(rc["state_dir"])).expanduser().resolve()
            self.state_dir.mkdir(parents=True, exist_ok=True)
        else:
            self.state_dir = Path(tempfile.mkdtemp(prefix="molecule-openclaw-"))
            self._own_state_dir = True
        os.chmod(self.state_dir, 0o700)
        workspace = self.state_dir / "workspace"
        env = child_env(self.state_dir)
        port, token = free_port(), secrets.token_urlsafe(24)
        await self._onboard(env, workspace, port, token)
        self._patch_config(config, numbers, port, token)
        self._fill_workspace(Path(config.config_path), workspace)
        self.gateway = Gateway(self.cli, port, env, self.state_dir / "gateway.log")
        self.gateway.start()
        atexit.register(self._stop_sync)
        await self.gateway.wait_healthy(numbers["gateway_health_checks"])
        log.info("openclaw gateway healthy on 127.0.0.1:%s (state %s)", port, self.state_dir)

    @property
    def config_file(self) -> Path:
        assert self.state_dir is not None
        return self.state_dir / ".openclaw" / "openclaw.json"

    async def _onboard(self, env: dict, workspace: Path, port: int, token: str) -> None:
        s = self.settings
        args = [self.cli, "onboard", "--non-interactive", "--accept-risk", "--mode", "local",
                "--auth-choice", "custom-api-key", "--custom-base-url", s.base_url or OPENAI_URL,
                "--custom-model-id", s.model, "--custom-provider-id", PROVIDER_ID,
                "--custom-compatibility", "openai", "--custom-text-input",
                # a stand-in: the real key is written into the config file below, off the command line
                "--custom-api-key", "molecule-key-set-after-onboarding",
                "--workspace", str(workspace), "--skip-bootstrap", "--skip-channels", "--skip-daemon",
                "--skip-health", "--skip-skills", "--skip-search", "--skip-ui", "--skip-hooks",
                "--gateway-bind", "loopback", "--gateway-port", str(port), "--gateway-auth", "token",
                "--gateway-token", token, "--json"]
        proc = await asyncio.create_subprocess_exec(*args, env=env, cwd=env["HOME"], stdin=subprocess.DEVNULL,
                                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), ONBOARD_TIMEOUT)
        except asyncio.TimeoutError:
            proc.kill()
            await proc.wait()
            raise RuntimeError(f"openclaw onboard did not finish in {ONBOARD_TIMEOUT:.0f} s") from None
        text = out.decode(errors="replace").replace(token, "<gateway-token>")
        if proc.returncode != 0 or not self.config_file.is_file():
            raise RuntimeError(f"openclaw onboard failed (exit {proc.returncode}): {text[-1500:]}")

    def _patch_config(self, config: AdapterConfig, numbers: dict, port: int, token: str) -> None:
        data = json.loads(self.config_file.read_text())
        provider = data.setdefault("models", {}).setdefault("providers", {}).setdefault(PROVIDER_ID, {})
        provider["apiKey"] = self.settings.api_key or ""
        provider["baseUrl"] = self.settings.base_url or OPENAI_URL
        for model in provider.get("models") or []:
            model["contextWindow"] = numbers["context_window"]
            model["maxTokens"] = numbers["max_tokens"]
        gateway = data.setdefault("gateway", {})
        gateway.update(mode="local", port=port, bind="loopback")
        gateway["auth"] = {"mode": "token", "token": token}
        data.setdefault("logging", {})["file"] = str(self.state_dir / "logs" / "openclaw.log")
        mcp = self.mcp_server_config(config)
        self.mcp_server_config_enabled = mcp is not None
        if mcp is not None:
            data.setdefault("mcp", {}).setdefault("servers", {})["molecule"] = mcp
        self.config_file.write_text(json.dumps(data, indent=2))
        os.chmod(self.config_file, 0o600)
        backup = self.config_file.with_name("openclaw.json.bak")  # onboarding's copy holds the gateway token
        backup.unlink(missing_ok=True)

    def mcp_server_config(self, config: AdapterConfig) -> dict | None:
        """The platform tools' stdio MCP server (`python -m molecule_runtime.mcp_server`), if installed."""
        if importlib.util.find_spec("molecule_runtime.mcp_server") is None:
            return None
        passed = {k: os.environ[k] for k in ("WORKSPACE_ID", "PLATFORM_URL", "CONFIGS_DIR", "MOLECULE_AUTH_TOKEN",
                                             "DELEGATION_RESULTS_FILE") if os.environ.get(k)}
        passed.setdefault("WORKSPACE_ID", config.workspace_id)
        passed["WORKSPACE_CONFIG_PATH"] = str(Path(config.config_path).resolve())
        if config.platform is not None and getattr(config.platform, "platform_url", None):
            passed.setdefault("PLATFORM_URL", str(config.platform.platform_url))
        passed.setdefault("CONFIGS_DIR", passed["WORKSPACE_CONFIG_PATH"])
        return {"command": sys.executable, "args": ["-m", "molecule_runtime.mcp_server"], "env": passed}

    def _fill_workspace(self, config_dir: Path, workspace: Path) -> None:
        workspace.mkdir(parents=True, exist_ok=True)
        for md in sorted(config_dir.glob("*.md")):
            shutil.copyfile(md, workspace / md.name)
        agents = workspace / "AGENTS.md"
        if not (config_dir / "AGENTS.md").is_file() and self.system_prompt:
            note = ""
            if self.mcp_server_config_enabled:
                note = ("\n\nThe platform tools above are the MCP tools of server `molecule`, named "
                        "`molecule__<tool>` (e.g. `molecule__commit_memory`): find them with tool_search, "
                        "call them with tool_call.")
            agents.write_text(self.system_prompt + note + "\n", encoding="utf-8")

    async def create_executor(self, config: AdapterConfig):
        executor = await super().create_executor(config)
        executor.cli = self.cli
        executor.env = child_env(self.state_dir) if self.state_dir is not None else None
        return executor

    # -------------------------------------------------------------- stop
    def _stop_sync(self) -> None:
        gateway, self.gateway = self.gateway, None
        if gateway is not None:
            gateway.stop()
        if self._own_state_dir and self.state_dir is not None:
            shutil.rmtree(self.state_dir, ignore_errors=True)
            self._own_state_dir = False

    async def aclose(self) -> None:
        """Stop the gateway and remove a temp state dir (also run at interpreter exit)."""
        await asyncio.to_thread(self._stop_sync)
        atexit.unregister(self._stop_sync)

    def close(self) -> None:
        """Synchronous `aclose`, for callers without a running loop."""
        self._stop_sync()
        atexit.unregister(self._stop_sync)
