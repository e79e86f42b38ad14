"""Fixtures for the autogen adapter tests: the served runtime (`llm_runtime` in tests/adapters/conftest.py)
with `runtime: autogen` and a runtime_config of the test's choosing."""

from __future__ import annotations

import pytest


@pytest.fixture
def autogen_runtime(llm_runtime):
    """start(runtime_config="{...}", model="openai:gpt-4.1-mini") → the served autogen runtime."""

    def start(runtime_config: str = "{}", model: str = "openai:gpt-4.1-mini", **kwargs):
        return llm_runtime("autogen", f"name: AutoGen Agent\nruntime: autogen\nmodel: {model}\n"
                                      f"runtime_config: {runtime_config}\n", **kwargs)

    return start
