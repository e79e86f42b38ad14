"""`molecule-runtime`: the workspace process (spec/runtime.md §2.4, trimmed to what exists).

Order: secrets erased from /proc/self/environ → WORKSPACE_ID → load config.yaml → preflight
(exit 1 naming what is missing) → adapter setup + executor → [smoke mode: run the executor once,
exit 0/1] → card → uvicorn on PORT/A2A_PORT (default config a2a.port = 8000) and HOST (default
0.0.0.0), JSON-RPC guarded by MOLECULE_INBOUND_SECRET when set → once listening: register
(retries with back-off), heartbeat loop, skills watcher, the initial prompt (first boot only)
and the idle loop (autonomy.py) → SIGTERM/SIGINT: graceful shutdown (the pre-stop snapshot is
written, restored into the adapter at the next boot; buffered trace spans are exported), exit 0. Tracing (telemetry.py) starts with the platform client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import uvicorn

from . import autonomy, telemetry
from .adapters import get_adapter
from .adapters.base import AdapterConfig
from .card import build_agent_card, card_dict
from .config import ConfigError, WorkspaceConfig, load_config
from .preflight import render_preflight_report, run_preflight
from .secret_env import wipe_initial_environ
from .server import INBOUND_SECRET_ENV, CardHolder, build_app
from .skills import SkillsWatcher

log = logging.getLogger("molecule_runtime")

TRUTHY = {"1", "true", "yes", "on"}
REGISTER_ATTEMPTS = 8


def env_flag(value: str | None) -> bool:
    return (value or "").strip().lower() in TRUTHY


def env_float(env, name: str, default: float) -> float:
    try:
        return float(env.get(name) or default)
    except ValueError:
        return default


def smoke_timeout(env) -> float:
    value = env_float(env, "MOLECULE_SMOKE_TIMEOUT_SECS", 5.0)
    return value if value > 0 else 5.0


def advertised_url(env, host: str, port: int) -> str:
    """AGENT_URL (or MOLECULE_WORKSPACE_URL) verbatim, else http://<HOST or 127.0.0.1>:<port>."""
    explicit = env.get("AGENT_URL") or env.get("MOLECULE_WORKSPACE_URL")
    if explicit:
        return explicit.rstrip("/")
    if not host or host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def listen_port(env, config: WorkspaceConfig) -> int:
    raw = env.get("PORT") or env.get("A2A_PORT")
    if not raw:
        return config.a2a.port
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"PORT/A2A_PORT must be an integer, got {raw!r}") from None


# ----------------------------------------------------------------------------- smoke mode (§9)


async def run_executor_smoke(executor, timeout: float, heartbeat_state=None) -> int:
    """Call `execute()` once with a stub request; 0 = PASS, 1 = FAIL (spec §9)."""
    try:
        from a2a.server.agent_execution import RequestContext
        from a2a.server.context import ServerCallContext
        from a2a.server.events.event_queue import EventQueueLegacy
        from a2a.types import Message, Part, Role, SendMessageRequest

        request = SendMessageRequest(message=Message(role=Role.ROLE_USER, message_id=uuid.uuid4().hex,
                                                     parts=[Part(text="smoke test")]))
        context = RequestContext(call_context=ServerCallContext(), request=request,
                                 task_id=uuid.uuid4().hex, context_id=uuid.uuid4().hex)
        queue = EventQueueLegacy()
    except Exception as exc:
        print(f"[smoke-mode] FAIL: could not build the stub request: {exc!r}", flush=True)
        return 1
    verdict, detail = 0, "execute() returned"
    try:
        await asyncio.wait_for(executor.execute(context, queue), timeout=timeout)
    except (asyncio.TimeoutError, asyncio.CancelledError):
        detail = f"execute() still running after {timeout}s (reached a network boundary)"
    except ImportError as exc:  # includes ModuleNotFoundError: a lazy import is broken
        verdict, detail = 1, f"execute() raised {type(exc).__name__}: {exc}"
    except Exception as exc:
        detail = f"execute() raised {type(exc).__name__} (not an import error)"
    if verdict == 0 and heartbeat_state is not None and getattr(heartbeat_state, "is_wedged", lambda: False)():
        verdict, detail = 1, f"runtime wedged: {heartbeat_state.wedge_reason}"
    print(f"[smoke-mode] {'PASS' if verdict == 0 else 'FAIL'}: {detail}", flush=True)
    return verdict


# ----------------------------------------------------------------------------- helpers


class NotConfiguredExecutor:
    """Serves JSON-RPC errors when adapter setup failed; the card is still served ([later] §2.4.10)."""

    def __init__(self, error: str):
        self.error = error

    async def execute(self, context, event_queue) -> None:
        from a2a.utils.errors import InternalError

        raise InternalError(message=f"agent not configured: {self.error}")

    async def cancel(self, context, event_queue) -> None:
        return None


async def register_with_retry(client, *, url: str, agent_card: dict, attempts: int = REGISTER_ATTEMPTS,
                              max_delay: float = 30.0, base_delay: float = 1.0) -> bool:
    """POST /registry/register; retries transport errors and 5xx with back-off
    min(base * 2**n, max_delay); gives up at once on a 4xx. Failure is only a warning: the
    heartbeat keeps the workspace visible and the next restart registers again."""
    for attempt in range(attempts):
        try:
            await client.register(url=url, agent_card=agent_card)
            log.info("registered with the platform as %s", url)
            return True
        except Exception as exc:
            status = getattr(exc, "status", None)
            if isinstance(status, int) and 400 <= status < 500:
                log.warning("registration rejected (%s): %s", status, exc)
                return False
            log.warning("registration attempt %d/%d failed: %s", attempt + 1, attempts, exc)
            if attempt + 1 < attempts:
                await asyncio.sleep(min(base_delay * 2 ** attempt, max_delay))
    return False


class _Server(uvicorn.Server):
    """uvicorn server whose signal handling only asks for a graceful exit (exit code 0)."""

    @contextlib.contextmanager
    def capture_signals(self):
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self._request_exit)
                installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    def _request_exit(self) -> None:
        if self.should_exit:
            self.force_exit = True
        self.should_exit = True


def _builtin_tools(client) -> dict[str, Any]:
    try:
        from .tools import build_tools
    except ImportError:
        log.warning("built-in tools unavailable (molecule_runtime.tools not importable)")
        return {}
    try:
        return dict(build_tools(client))
    except Exception:
        log.exception("building the built-in tools failed")
        return {}


# ----------------------------------------------------------------------------- main


async def amain(env=None) -> int:
    env = os.environ if env is None else env
    smoke = env_flag(env.get("MOLECULE_SMOKE_MODE"))
    workspace_id = env.get("WORKSPACE_ID") or ("fake-smoke" if smoke else "")
    if not workspace_id:
        print("FATAL: WORKSPACE_ID env var is not set", file=sys.stderr, flush=True)
        return 2
    config_path = Path(env.get("WORKSPACE_CONFIG_PATH") or "/configs")
    try:
        config = load_config(config_path, env)
        port = listen_port(env, config)
    except ConfigError as exc:
        print(f"FATAL: {exc}", file=sys.stderr, flush=True)
        return 1

    report = run_preflight(config, config_path, env=env, smoke_mode=smoke)
    rendered = render_preflight_report(report)
    if rendered:
        print(rendered, file=sys.stderr, flush=True)
    if not report.ok:
        missing = "; ".join(f"{i.title}: {i.detail}" for i in report.failures)
        print(f"FATAL: preflight failed: {missing}", file=sys.stderr, flush=True)
        return 1

    from .heartbeat import HeartbeatLoop, HeartbeatState

    state = HeartbeatState()
    adapter = get_adapter(config.runtime, env)()
    with contextlib.suppress(Exception):
        state.capabilities = adapter.capabilities().to_dict()
        state.idle_timeout_seconds = adapter.idle_timeout_override()

    client = heartbeat = None
    if not smoke:
        from .platform import PlatformClient

        platform_url = env.get("PLATFORM_URL") or "http://localhost:8080"
        client = PlatformClient(platform_url=platform_url, workspace_id=workspace_id,
                                config_dir=Path(env.get("CONFIGS_DIR") or config_path),
                                initial_token=env.get("MOLECULE_AUTH_TOKEN"))
        heartbeat = HeartbeatLoop(client, state, workspace_id,
                                  interval=env_float(env, "HEARTBEAT_INTERVAL", 30.0))
        # traces go to the platform with the workspace token, read at each export (registration
        # may issue it later), and to the collectors the OTEL_/LANGFUSE_ variables name
        telemetry.setup_telemetry(env, workspace_id=workspace_id, runtime=config.runtime,
                                  platform_url=platform_url, token_provider=lambda: client.token)

    adapter_config = AdapterConfig(
        model=config.model, tools=list(config.skills), runtime_config=config.runtime_config.as_dict(),
        config_path=str(config_path), workspace_id=workspace_id, prompt_files=list(config.prompt_files),
        a2a_port=port, heartbeat=state, beat_now=heartbeat.beat_now if heartbeat else None,
        builtin_tools=_builtin_tools(client) if client else {}, smoke_mode=smoke, platform=client,
    )
    setup_error: str | None = None
    try:
        await adapter.setup(adapter_config)
        executor = await adapter.create_executor(adapter_config)
    except SystemExit:
        raise
    except Exception as exc:
        if smoke:
            print(f"[smoke-mode] FAIL: adapter setup failed: {type(exc).__name__}: {exc}", flush=True)
            return 1
        log.exception("adapter setup failed; serving the card with configuration_status=not_configured")
        setup_error = f"{type(exc).__name__}: {exc}"
        executor = NotConfiguredExecutor(setup_error)

    if smoke:
        return await run_executor_smoke(executor, smoke_timeout(env), state)

    snapshot = autonomy.read_snapshot(autonomy.existing_snapshot_path(env, config_path))
    if snapshot is not None and not setup_error:
        try:
            adapter.restore_state(snapshot)
            log.info("restored the pre-stop snapshot of %s", snapshot.get("timestamp", "an earlier session"))
        except Exception:
            log.exception("restoring the pre-stop snapshot failed")

    host = env.get("HOST") or "0.0.0.0"
    url = advertised_url(env, env.get("HOST", ""), port)
    skills = None if setup_error else getattr(adapter, "loaded_skills", [])
    cards = CardHolder(build_agent_card(config, url, skills))
    app = build_app(executor, cards, adapter=adapter, token_provider=client.reload_token,
                    inbound_secret=env.get(INBOUND_SECRET_ENV) or None)
    server = _Server(uvicorn.Config(app, host=host, port=port, lifespan="off",
                                    log_level=env.get("LOG_LEVEL", "info").lower()))
    watcher: SkillsWatcher | None = None
    idle_loop: autonomy.IdleLoop | None = None
    initial_prompt: asyncio.Task | None = None

    async def on_skills_reload(reloaded: dict) -> None:
        if hasattr(adapter, "replace_skills"):
            adapter.replace_skills(reloaded)
        cards.card = build_agent_card(config, url, adapter.loaded_skills)
        try:
            await client.update_card(card_dict(config, url, adapter.loaded_skills))
            log.info("pushed the updated agent card (skills: %s)", sorted(reloaded))
        except Exception as exc:
            log.warning("update-card failed: %s", exc)

    async def after_listening() -> None:
        nonlocal watcher, idle_loop, initial_prompt
        while not server.started:
            if server.should_exit:
                return
            await asyncio.sleep(0.05)
        await register_with_retry(client, url=url,
                                  agent_card=card_dict(config, url, skills, configuration_error=setup_error))
        await heartbeat.start()
        # always watched (not only with config.skills): a skill promoted later is listed in
        # config.yaml and written to skills/<name>/ while the runtime runs
        if not setup_error:
            watcher = SkillsWatcher(config_path, config.skills, on_skills_reload, current_runtime=adapter.name(),
                                    poll_interval=env_float(env, "SKILLS_POLL_INTERVAL", 3.0),
                                    debounce=env_float(env, "SKILLS_DEBOUNCE", 1.5))
            watcher.start()
        if setup_error:
            return  # an agent that cannot work is not given work of its own
        if config.initial_prompt:
            initial_prompt = asyncio.create_task(autonomy.send_initial_prompt(
                client, workspace_id=workspace_id, prompt=config.initial_prompt, env=env, config_path=config_path,
                base_url=autonomy.local_base_url(host, port)), name="molecule-initial-prompt")
        if config.idle_prompt:
            idle_loop = autonomy.IdleLoop(client, state, workspace_id=workspace_id, prompt=config.idle_prompt,
                                          interval=max(config.idle_interval_seconds, 1))
            idle_loop.start()

    startup = asyncio.create_task(after_listening(), name="molecule-startup")
    try:
        await server.serve()
    finally:
        startup.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await startup
        if initial_prompt is not None:
            initial_prompt.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await initial_prompt
        if idle_loop is not None:
            await idle_loop.stop()
        if watcher is not None:
            await watcher.stop()
        adapter_state: dict = {}
        with contextlib.suppress(Exception):
            adapter_state = adapter.pre_stop_state()
        if autonomy.write_snapshot(autonomy.snapshot_path(env, config_path),
                                   autonomy.build_snapshot(state, workspace_id, adapter_state), env):
            log.info("pre-stop snapshot written")
        await heartbeat.stop()
        with contextlib.suppress(Exception):  # a daemon that will not stop must not hide the exit
            await adapter.aclose()
        await client.aclose()
        await asyncio.to_thread(telemetry.shutdown_telemetry)  # export the buffered spans
        log.info("runtime stopped")
    return 0


def main() -> None:
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # first thing: the values stay in os.environ, but skill code reading /proc/self/environ
    # must not find them there
    wiped = wipe_initial_environ()
    if wiped:
        log.info("secret variables erased from /proc/self/environ: %s", ", ".join(wiped))
    sys.exit(asyncio.run(amain()))


if __name__ == "__main__":
    main()
