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
