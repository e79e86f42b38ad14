"""Fixtures for the crewai adapter tests (run in the crewai environment, .molecule/runtime-envs/crewai):
the served runtime (`llm_runtime` in tests/adapters/conftest.py) with `runtime: crewai`."""

from __future__ import annotations

import threading
import time

import pytest

from ...a2a_helpers import msg03, rpc

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


def cancel_during_a_slow_model_answer(rt) -> tuple[str, dict, dict, float]:
    """Send a task whose model answers late (``rt.llm.script`` says how), cancel it while the model
    is busy: (task id, the ``tasks/cancel`` answer, the ``message/send`` answer, seconds the cancel took)."""
    holder = {}
    sender = threading.Thread(target=lambda: holder.update(
        out=rpc(rt.url, "message/send", {"message": msg03("slow please")}, timeout=A2A_TIMEOUT)))
    sender.start()
    deadline = time.monotonic() + A2A_TIMEOUT
    while not (rt.llm.requests and rt.executor._running) and time.monotonic() < deadline:
        time.sleep(0.02)
    [task_id] = list(rt.executor._running)
    started = time.monotonic()
    cancelled = rpc(rt.url, "tasks/cancel", {"id": task_id})
    sender.join(timeout=10)
    return task_id, cancelled, holder["out"], time.monotonic() - started
