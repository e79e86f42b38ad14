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


# ----------------------------------------------------------------------------- a real process
import contextlib  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

# importing crewAI (+ the openai SDK's resources) is ~12 s of CPU at boot: on a busy 2-core machine that
# is more than the 30 s `tests/adapters/conftest.py::runtime_process` waits for registration
BOOT_TIMEOUT = 180


@contextlib.contextmanager
def crewai_process(env: dict, fake_platform, workspace_id: str):
    """`runtime_process` (tests/adapters/conftest.py) with room for crewAI's boot; yields the URL."""
    proc = subprocess.Popen([sys.executable, "-m", "molecule_runtime.main"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while workspace_id not in fake_platform.registered:
            if proc.poll() is not None:
                raise AssertionError(f"runtime exited {proc.returncode}: {proc.stdout.read()}")
            assert time.monotonic() < deadline, "runtime did not register"
            time.sleep(0.05)
        yield fake_platform.registered[workspace_id]["url"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            out, _ = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    assert proc.returncode == 0, out
