"""Shared fixtures for the runtime tests (plain pytest + anyio; no Django)."""

from __future__ import annotations

import asyncio
import socket
import textwrap
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.card import build_agent_card
from molecule_runtime.config import load_config
from molecule_runtime.heartbeat import HeartbeatState
from molecule_runtime.server import CardHolder, build_app


@pytest.fixture
def anyio_backend():
    return "asyncio"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(config_dir: Path, body: str = "") -> Path:
    config_dir.mkdir(parents=True, exist_ok=True)
    text = textwrap.dedent(body) if body else "name: Echo Agent\ndescription: test agent\nruntime: echo\n"
    (config_dir / "config.yaml").write_text(text)
    return config_dir


def write_skill(config_dir: Path, name: str, front: str, tool_src: str | None = None) -> Path:
    skill = config_dir / "skills" / name
    skill.mkdir(parents=True, exist_ok=True)
    (skill / "SKILL.md").write_text(f"---\n{textwrap.dedent(front)}---\nDo {name} things.\n")
    if tool_src is not None:
        (skill / "scripts").mkdir(exist_ok=True)
        (skill / "scripts" / f"{name.replace('-', '_')}.py").write_text(textwrap.dedent(tool_src))
    return skill


class ThreadServer:
    """uvicorn on a free loopback port in a background thread (real HTTP)."""

    def __init__(self, app, port: int):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)


async def _add(a: int, b: int) -> dict:
    return {"sum": a + b}


async def _commit_memory(content: str, scope: str = "LOCAL") -> dict:
    return {"id": "mem-1", "scope": scope, "content": content}


FAKE_TOOLS = {"add": _add, "commit_memory": _commit_memory}


@pytest.fixture
def echo_runtime(tmp_path):
    """An echo adapter + A2A app served over real HTTP; yields a namespace with url/state/adapter."""
    config_dir = write_config(tmp_path / "configs")
    config = load_config(config_dir, env={})
    state = HeartbeatState()
    adapter = EchoAdapter()
    cfg = AdapterConfig(config_path=str(config_dir), heartbeat=state, builtin_tools=dict(FAKE_TOOLS))
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    port = free_port()
    cards = CardHolder(build_agent_card(config, f"http://127.0.0.1:{port}", adapter.loaded_skills))
    with ThreadServer(build_app(executor, cards, adapter=adapter), port) as srv:
        srv.state, srv.adapter, srv.cards = state, adapter, cards
        yield srv


# ============================================================================================
# Fake platform fixtures (owned by the platform-client / heartbeat / tools tests; keep this block)
# ============================================================================================
import sys as _sys  # noqa: E402

_TESTS_DIR = Path(__file__).resolve().parent
for _p in (str(_TESTS_DIR.parent), str(_TESTS_DIR)):  # molecule_runtime and fake_platform importable
    if _p not in _sys.path:
        _sys.path.insert(0, _p)

from fake_platform import FakePlatformServer, FakePlatformState  # noqa: E402


@pytest.fixture(scope="session")
def _fake_platform_server():
    server = FakePlatformServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_platform(_fake_platform_server) -> FakePlatformState:
    """The fake platform's state, emptied for each test; ``.base_url`` is where it listens."""
    state = _fake_platform_server.state
    state.reset()
    yield state
    state.reset()


@pytest.fixture
def workspace_id() -> str:
    return "11111111-1111-4111-8111-111111111111"


@pytest.fixture
def config_dir(tmp_path) -> Path:
    path = tmp_path / "configs"
    path.mkdir()
    return path


@pytest.fixture
def make_client(fake_platform, workspace_id, config_dir):
    """Factory for a PlatformClient pointed at the fake platform (create it inside the event loop)."""
    from molecule_runtime.platform import PlatformClient

    def factory(**overrides):
        kwargs = dict(platform_url=fake_platform.base_url, workspace_id=workspace_id, config_dir=config_dir,
                      timeout=5.0)
        kwargs.update(overrides)
        return PlatformClient(**kwargs)

    return factory
# ============================================================================================
# end of fake platform fixtures
# ============================================================================================


# ============================================================================================
# Fake OpenAI-compatible LLM server (owned by the openai / langgraph adapter tests; keep this block)
# ============================================================================================
from fake_openai import FakeOpenAIServer, FakeOpenAIState  # noqa: E402


@pytest.fixture(scope="session")
def _fake_openai_server():
    server = FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_openai(_fake_openai_server) -> FakeOpenAIState:
    """The fake LLM's state, emptied for each test; ``.base_url`` is its ``/v1`` endpoint."""
    state = _fake_openai_server.state
    state.reset()
    yield state
    state.reset()
# ============================================================================================
# end of fake OpenAI fixtures
# ============================================================================================


# ============================================================================================
# OpenTelemetry: a loopback OTLP collector and the runtime's tracing pointed at it
# (test_telemetry.py and the adapters' span tests; see otel_collector.py)
# ============================================================================================
@pytest.fixture
def collector():
    pytest.importorskip("opentelemetry.sdk")
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
    from otel_collector import Collector

    server = Collector()
    yield server
    server.close()


@pytest.fixture
def tracing(collector, monkeypatch, workspace_id):
    """start(env=..., platform=True, runtime="openai") → tracing on (True), the platform receiver
    being the collector; ``start.tokens[0]`` is the workspace token its exports carry."""
    import os

    from molecule_runtime import telemetry
    from otel_collector import WORKSPACE_TOKEN

    for name in ("OTEL_CAPTURE_CONTENT", "OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                 "OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_SDK_DISABLED",
                 "OTEL_DEBUG", "LANGFUSE_HOST", "LANGFUSE_PUBLIC_KEY", "LANGFUSE_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    tokens = [WORKSPACE_TOKEN]

    def start(env: dict | None = None, *, platform: bool = True, runtime: str = "openai") -> bool:
        for key, value in (env or {}).items():
            monkeypatch.setenv(key, value)
        return telemetry.setup_telemetry(os.environ, workspace_id=workspace_id, runtime=runtime,
                                         platform_url=collector.url if platform else None,
                                         token_provider=lambda: tokens[0])

    start.tokens = tokens
    yield start
    telemetry.shutdown_telemetry()
# ============================================================================================
# end of OpenTelemetry fixtures
# ============================================================================================
