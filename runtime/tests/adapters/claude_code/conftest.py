"""Fixtures for the claude-code adapter tests: the fake Anthropic Messages API (the real Claude Code
CLI bundled with claude-agent-sdk talks to it over HTTP through ANTHROPIC_BASE_URL)."""

from __future__ import annotations

import pytest

from ...fake_anthropic import FakeAnthropicServer, FakeAnthropicState


@pytest.fixture(scope="session")
def _fake_anthropic_server():
    server = FakeAnthropicServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_anthropic(_fake_anthropic_server) -> FakeAnthropicState:
    """The fake Anthropic API's state, emptied for each test; ``.base_url`` is its root URL."""
    state = _fake_anthropic_server.state
    state.reset()
    yield state
    state.reset()


CLAUDE_KEY = "sk-ant-test-fake-key-0001"
CLAUDE_CONFIG = """\
name: Claude Agent
runtime: claude-code
model: anthropic:sonnet
runtime_config:
  retry_base_delay: 0.05
"""
# variables that would change which credentials / endpoint / home the CLI uses
CLAUDE_VARS = ("CLAUDE_CODE_OAUTH_TOKEN", "ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_BASE_URL",
               "ANTHROPIC_MODEL", "CLAUDE_CONFIG_DIR", "CLAUDE_CODE_CLI_PATH", "WORKSPACE_DIR", "CLAUDECODE",
               "CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX")


@pytest.fixture
def claude_env(monkeypatch, fake_anthropic, tmp_path):
    """The CLI pointed at the fake Anthropic API with a test key, a HOME of its own and an empty
    WORKSPACE_DIR (so the config dir is the cwd)."""
    for name in CLAUDE_VARS:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "workspace").mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("WORKSPACE_DIR", str(tmp_path / "workspace"))
    monkeypatch.setenv("ANTHROPIC_BASE_URL", fake_anthropic.base_url)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CLAUDE_KEY)
    fake_anthropic.home = home
    return fake_anthropic


@pytest.fixture
def claude_runtime(llm_runtime, claude_env):
    """start(config_yaml=...) → a served claude-code runtime (see `llm_runtime`) with ``.claude``."""

    def start(config_yaml: str = CLAUDE_CONFIG, **kwargs):
        rt = llm_runtime("claude-code", config_yaml, **kwargs)
        rt.claude = claude_env
        return rt

    return start
