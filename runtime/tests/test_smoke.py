"""Smoke mode (spec/runtime.md §9): run the executor once without network, exit 0/1."""

import asyncio
import os
import subprocess
import sys
import textwrap

from molecule_runtime.adapters.echo import EchoExecutor
from molecule_runtime.heartbeat import HeartbeatState
from molecule_runtime.main import run_executor_smoke, smoke_timeout

from .conftest import write_config


def _run(tmp_path, **env_extra):
    env = {k: v for k, v in os.environ.items() if k not in ("ADAPTER_MODULE", "WORKSPACE_ID", "PLATFORM_URL")}
    env.update(MOLECULE_SMOKE_MODE="1", MOLECULE_SMOKE_TIMEOUT_SECS="5",
               WORKSPACE_CONFIG_PATH=str(tmp_path / "configs"), PLATFORM_URL="http://127.0.0.1:9")
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "molecule_runtime.main"], env=env, capture_output=True,
                          text=True, timeout=60)


def test_echo_smoke_passes_and_exits_0(tmp_path):
    write_config(tmp_path / "configs")
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout


def test_smoke_demotes_required_env_and_still_passes(tmp_path):
    write_config(tmp_path / "configs", "runtime: echo\nruntime_config: {required_env: [NOT_SET_IN_SMOKE]}\n")
    proc = _run(tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "[WARN] Missing required env var: NOT_SET_IN_SMOKE" in proc.stderr


def test_broken_adapter_module_exits_non_zero(tmp_path):
    write_config(tmp_path / "configs")
    proc = _run(tmp_path, ADAPTER_MODULE="definitely_not_a_module_xyz")
    assert proc.returncode != 0
    assert "definitely_not_a_module_xyz" in proc.stderr


def test_lazy_import_error_in_execute_fails_smoke(tmp_path):
    write_config(tmp_path / "configs")
    (tmp_path / "lazy_adapter.py").write_text(textwrap.dedent('''
        from molecule_runtime.adapters.echo import Adapter as _Echo, EchoExecutor

        class BrokenExecutor(EchoExecutor):
            async def execute(self, context, event_queue):
                from a2a.types import TextPart  # 0.3-only type: the classic lazy-import regression
                return await super().execute(context, event_queue)

        class Adapter(_Echo):
            async def create_executor(self, config):
                self._executor = BrokenExecutor()
                return self._executor
    '''))
    proc = _run(tmp_path, ADAPTER_MODULE="lazy_adapter", PYTHONPATH=str(tmp_path))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[smoke-mode] FAIL" in proc.stdout and "ImportError" in proc.stdout


def test_timeout_counts_as_pass():
    class Slow:
        async def execute(self, context, queue):
            await asyncio.sleep(5)

    assert asyncio.run(run_executor_smoke(Slow(), 0.05)) == 0


def test_other_exceptions_count_as_pass_but_wedge_fails():
    class Boom:
        async def execute(self, context, queue):
            raise ConnectionError("no network in smoke mode")

    assert asyncio.run(run_executor_smoke(Boom(), 1)) == 0
    state = HeartbeatState()
    state.mark_wedged("token revoked")
    assert asyncio.run(run_executor_smoke(EchoExecutor(heartbeat=state), 1, state)) == 1


def test_echo_executor_smoke_in_process():
    assert asyncio.run(run_executor_smoke(EchoExecutor(), 1)) == 0


def test_smoke_timeout_parsing():
    assert smoke_timeout({}) == 5.0
    assert smoke_timeout({"MOLECULE_SMOKE_TIMEOUT_SECS": "10"}) == 10.0
    assert smoke_timeout({"MOLECULE_SMOKE_TIMEOUT_SECS": "soon"}) == 5.0
