"""Fixtures for the LLM adapter tests: a real adapter + A2A server, real built-in tools against
the fake platform, and the model behind the fake OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import contextlib
import textwrap
from types import SimpleNamespace

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.card import build_agent_card
from molecule_runtime.config import load_config
from molecule_runtime.heartbeat import HeartbeatState
from molecule_runtime.platform import PlatformClient
from molecule_runtime.server import CardHolder, build_app
from molecule_runtime.tools import build_tools

from ..conftest import ThreadServer, free_port

LLM_KEY = "sk-test-fake-key-0001"
PLATFORM_TOKEN = "adapter-test-token"


@pytest.fixture
def llm_env(monkeypatch, fake_openai):
    """OPENAI_BASE_URL/OPENAI_API_KEY pointed at the fake LLM (and nothing else that could leak in)."""
    for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "MODEL_PROVIDER", "LANGGRAPH_RECURSION_LIMIT",
                 "ADAPTER_MODULE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", LLM_KEY)
    return fake_openai


@pytest.fixture
def llm_runtime(tmp_path, llm_env, fake_platform, workspace_id):
    """start(runtime, config_yaml=...) → a served runtime: .url, .state, .adapter, .pushes, .platform, .llm."""
    started = []

    def start(runtime: str, config_yaml: str = "", *, prompt: str | None = "You are a helpful test agent.",
              skills: dict | None = None):
        config_dir = tmp_path / f"configs-{len(started)}"
        config_dir.mkdir()
        body = textwrap.dedent(config_yaml) if config_yaml else f"name: LLM Agent\nruntime: {runtime}\nmodel: openai:gpt-4o-mini\n"
        (config_dir / "config.yaml").write_text(body)
        if prompt is not None:
            (config_dir / "system-prompt.md").write_text(prompt)
        (config_dir / ".auth_token").write_text(PLATFORM_TOKEN)
        fake_platform.tokens[workspace_id] = {PLATFORM_TOKEN}
        config = load_config(config_dir, env={})
        client = PlatformClient(platform_url=fake_platform.base_url, workspace_id=workspace_id,
                                config_dir=config_dir, timeout=5.0)
        state = HeartbeatState()
        pushes = []

        async def beat_now():
            pushes.append((state.active_tasks, state.current_task))

        adapter = get_adapter(config.runtime, env={})()
        cfg = AdapterConfig(model=config.model, tools=list(config.skills),
                            runtime_config=config.runtime_config.as_dict(), config_path=str(config_dir),
                            workspace_id=workspace_id, prompt_files=list(config.prompt_files), heartbeat=state,
                            beat_now=beat_now, builtin_tools=build_tools(client))
        asyncio.run(adapter.setup(cfg))
        executor = asyncio.run(adapter.create_executor(cfg))
        port = free_port()
        cards = CardHolder(build_agent_card(config, f"http://127.0.0.1:{port}", adapter.loaded_skills))
        server = ThreadServer(build_app(executor, cards, adapter=adapter), port).__enter__()
        started.append(server)
        return SimpleNamespace(url=server.url, state=state, adapter=adapter, executor=executor, pushes=pushes,
                               platform=fake_platform, llm=llm_env, config_dir=config_dir)

    yield start
    for server in started:
        with contextlib.suppress(Exception):
            server.__exit__(None, None, None)


# ----------------------------------------------------------------------------- real processes
import os  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

# variables a developer's shell may carry that would change what the runtime under test does
_SCRUB = ("ADAPTER_MODULE", "MOLECULE_SMOKE_MODE", "AGENT_URL", "OPENAI_BASE_URL", "OPENAI_API_KEY",
          "MODEL_PROVIDER", "ANTHROPIC_API_KEY", "LANGGRAPH_RECURSION_LIMIT", "WORKSPACE_ID",
          "MOLECULE_INBOUND_SECRET", "ANTHROPIC_BASE_URL", "GOOGLE_GEMINI_BASE_URL", "OLLAMA_HOST", "WORKSPACE_DIR")


def process_env(**extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(extra)
    return env


def run_cli(env: dict, *, prelude: str = "", timeout: float = 60) -> subprocess.CompletedProcess:
    """`molecule-runtime` as a subprocess; `prelude` runs first (e.g. to hide an installed package)."""
    code = f"{prelude}\nfrom molecule_runtime.main import main\nmain()\n"
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


@contextlib.contextmanager
def runtime_process(env: dict, fake_platform, workspace_id: str, *, boot_timeout: float = 30):
    """A running `molecule-runtime` registered with the fake platform; yields its URL. A runtime
    whose SDK takes long to import (crewAI) gets a longer ``boot_timeout``."""
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + boot_timeout
        while workspace_id not in fake_platform.registered:
            if proc.poll() is not None:
                raise AssertionError(f"runtime exited {proc.returncode}: {proc.stdout.read()}")
            assert time.monotonic() < deadline, "runtime did not register"
            time.sleep(0.05)
        yield fake_platform.registered[workspace_id]["url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
