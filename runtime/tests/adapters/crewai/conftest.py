"""Fixtures for the crewai adapter tests (run in the crewai environment, .molecule/runtime-envs/crewai):
the served runtime (`llm_runtime` in tests/adapters/conftest.py) with `runtime: crewai`."""

from __future__ import annotations

import pytest

# crewAI's first kickoff in a process pays for lazy imports; A2A calls in these tests get room for it
A2A_TIMEOUT = 60


@pytest.fixture
def crewai_runtime(llm_runtime):
    """start(runtime_config="{...}", prompt=..., model=...) → the served crewai runtime."""

    def start(runtime_config: str = "{}", model: str = "openai:gpt-4o-mini", **kwargs):
        return llm_runtime("crewai", f"name: CrewAI Agent\nruntime: crewai\nmodel: {model}\n"
                                     f"runtime_config: {runtime_config}\n", **kwargs)

    return start


# importing crewAI (+ the openai SDK's resources) is ~12 s of CPU at boot: on a busy 2-core machine that
# is more than the 30 s `tests/adapters/conftest.py::runtime_process` waits for registration by default
BOOT_TIMEOUT = 180
