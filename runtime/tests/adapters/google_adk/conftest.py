"""Fixtures for the google-adk adapter tests: the fake Gemini server (real google-genai client over
HTTP) and a served google-adk runtime built by the shared `llm_runtime` fixture."""

from __future__ import annotations

import pytest

from ...fake_gemini import FakeGeminiServer, FakeGeminiState

GEMINI_KEY = "AIzaSy-test-fake-gemini-key-0001"
ADK_CONFIG = """\
name: ADK Agent
runtime: google-adk
model: google_genai:gemini-2.5-flash
"""
# variables that would change which backend / endpoint / key google-genai uses
GOOGLE_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_GENAI_USE_ENTERPRISE",
               "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL",
               "GOOGLE_GENAI_API_VERSION", "GOOGLE_APPLICATION_CREDENTIALS", "ADK_MAX_LLM_CALLS")


@pytest.fixture(scope="session")
def _fake_gemini_server():
    server = FakeGeminiServer().start()
    yield server
    server.stop()


@pytest.fixture
def fake_gemini(_fake_gemini_server) -> FakeGeminiState:
    """The fake Gemini's state, emptied for each test; ``.base_url`` is its root URL."""
    state = _fake_gemini_server.state
    state.reset()
    yield state
    state.reset()


@pytest.fixture
def gemini_env(monkeypatch, fake_gemini):
    """google-genai pointed at the fake Gemini with a test key (and nothing else leaking in)."""
    for name in GOOGLE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake_gemini.base_url)
    monkeypatch.setenv("GOOGLE_API_KEY", GEMINI_KEY)
    return fake_gemini


@pytest.fixture
def adk_runtime(llm_runtime, gemini_env):
    """start(config_yaml=...) → a served google-adk runtime (see `llm_runtime`) with ``.gemini``."""

    def start(config_yaml: str = ADK_CONFIG, **kwargs):
        rt = llm_runtime("google-adk", config_yaml, **kwargs)
        rt.gemini = gemini_env
        rt.executor.runner()  # google-adk's first import takes seconds: not inside a 10 s HTTP call
        return rt

    return start
