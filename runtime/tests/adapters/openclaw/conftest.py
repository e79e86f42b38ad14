"""Fixtures for the openclaw adapter tests: the real `openclaw` CLI (npm, in `.molecule/npm`) and
its real gateway, onboarded against the fake OpenAI-compatible server over HTTP.

The CLI comes from `MOLECULE_NPM_BIN` if set, else `<repo>/.molecule/npm/node_modules/.bin`
(`npm install --prefix .molecule/npm node@24.21.0` then `openclaw@2026.9.6`: openclaw needs
Node >= 24.16, and that prefix's `.bin` also holds the `node` it runs on).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import textwrap
from pathlib import Path
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

from ...conftest import ThreadServer, free_port

REPO = Path(__file__).resolve().parents[4]
NPM_BIN = Path(os.environ.get("MOLECULE_NPM_BIN") or REPO / ".molecule" / "npm" / "node_modules" / ".bin")
LLM_KEY = "sk-openclaw-test-key-0001"
PLATFORM_TOKEN = "openclaw-test-token"
WORKSPACE_ID = "44444444-4444-4444-8444-444444444444"
PROMPT = "You are the OpenClaw test agent. Answer briefly."


def cli_path() -> str:
    path = NPM_BIN / "openclaw"
    assert path.exists(), f"the openclaw CLI is not installed at {path} (see this conftest's docstring)"
    return str(path)


@pytest.fixture(scope="session", autouse=True)
def _npm_bin_on_path():
    """openclaw and the Node it needs on PATH for the whole session (the image installs them globally)."""
    cli_path()
    old = os.environ.get("PATH", "")
    os.environ["PATH"] = f"{NPM_BIN}{os.pathsep}{old}"
    yield
    os.environ["PATH"] = old


@contextlib.contextmanager
def patched_env(**values: str | None):
    saved = {k: os.environ.get(k) for k in values}
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def start_openclaw(config_dir: Path, *, platform_url: str, llm_url: str, config_yaml: str = "",
                   prompt: str | None = PROMPT, home: Path | None = None, extra_files: dict | None = None):
    """A set-up openclaw adapter (gateway running) behind the real A2A app: .url, .adapter, .executor…"""
    config_dir.mkdir(parents=True, exist_ok=True)
    body = textwrap.dedent(config_yaml) if config_yaml else (
        "name: OpenClaw Agent\nruntime: openclaw\nmodel: openai:gpt-4o-mini\n"
        "runtime_config: {gateway_health_checks: 120}\n")  # 2 shared cores: the gateway takes 25-100 s to listen
    (config_dir / "config.yaml").write_text(body)
    if prompt is not None:
        (config_dir / "system-prompt.md").write_text(prompt)
    for name, text in (extra_files or {}).items():
        (config_dir / name).write_text(text)
    (config_dir / ".auth_token").write_text(PLATFORM_TOKEN)
    config = load_config(config_dir, env={})
    client = PlatformClient(platform_url=platform_url, workspace_id=WORKSPACE_ID, config_dir=config_dir, timeout=5.0)
    state = HeartbeatState()
    pushes: list = []

    async def beat_now():
        pushes.append((state.active_tasks, state.current_task))

    adapter = get_adapter(config.runtime, env={})()
    cfg = AdapterConfig(model=config.model, tools=list(config.skills), runtime_config=config.runtime_config.as_dict(),
                        config_path=str(config_dir), workspace_id=WORKSPACE_ID, prompt_files=list(config.prompt_files),
                        heartbeat=state, beat_now=beat_now, builtin_tools=build_tools(client), platform=client)
    env = dict(OPENAI_BASE_URL=llm_url, OPENAI_API_KEY=LLM_KEY, WORKSPACE_ID=WORKSPACE_ID, PLATFORM_URL=platform_url,
               CONFIGS_DIR=str(config_dir), MODEL_PROVIDER=None, GROQ_API_KEY=None, OPENROUTER_API_KEY=None)
    if home is not None:
        env["HOME"] = str(home)
    with patched_env(**env):
        try:
            asyncio.run(adapter.setup(cfg))
        except BaseException:
            adapter.close()
            raise
        executor = asyncio.run(adapter.create_executor(cfg))
    port = free_port()
    cards = CardHolder(build_agent_card(config, f"http://127.0.0.1:{port}", adapter.loaded_skills))
    server = ThreadServer(build_app(executor, cards, adapter=adapter), port).__enter__()

    def stop():
        with contextlib.suppress(Exception):
            server.__exit__(None, None, None)
        adapter.close()

    return SimpleNamespace(url=server.url, adapter=adapter, executor=executor, state=state, pushes=pushes,
                           config_dir=config_dir, stop=stop)


@pytest.fixture(scope="module")
def openclaw_runtime(tmp_path_factory, _fake_openai_server, _fake_platform_server):
    """One onboarded openclaw + gateway for the module (starting a gateway takes ~25 s here)."""
    rt = start_openclaw(tmp_path_factory.mktemp("openclaw") / "configs", platform_url=_fake_platform_server.state.base_url,
                        llm_url=_fake_openai_server.state.base_url)
    yield rt
    rt.stop()


@pytest.fixture
def oc(openclaw_runtime, fake_openai, fake_platform):
    """The module's runtime with the fake LLM and platform emptied for this test (.llm, .platform)."""
    fake_platform.tokens[WORKSPACE_ID] = {PLATFORM_TOKEN}
    openclaw_runtime.llm, openclaw_runtime.platform = fake_openai, fake_platform
    return openclaw_runtime
