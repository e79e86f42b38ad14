"""The runtimes whose extras cannot share the project venv, seen from the project venv (where `make
test` runs this file; the contract for those runtimes runs in their own environments)."""

import os
import shutil
import subprocess
import sys

import pytest

from .test_adapter_contract import FAKE_KEYS, SEPARATE_ENV_RUNTIMES, TEMPLATES


@pytest.mark.parametrize("runtime", SEPARATE_ENV_RUNTIMES)
def test_a_runtime_without_its_sdk_fails_smoke_naming_the_extra(runtime, tmp_path):
    """In the project venv crewai, hermes and google-adk are not installed (their pins conflict with
    it): booting one names the missing package and the extra to install, never a traceback."""
    extra_modules = {"crewai": "crewai", "hermes": "run_agent", "google-adk": "google.adk"}
    configs = tmp_path / "configs"
    shutil.copytree(TEMPLATES / f"{runtime}-default", configs)
    env = {k: v for k, v in os.environ.items() if k not in ("ADAPTER_MODULE", "PLATFORM_URL")}
    env.update(FAKE_KEYS, MOLECULE_SMOKE_MODE="1", WORKSPACE_ID="fake-smoke", WORKSPACE_CONFIG_PATH=str(configs),
               PLATFORM_URL="http://127.0.0.1:9")
    hide = f"import sys; sys.modules[{extra_modules[runtime]!r}] = None\n"
    proc = subprocess.run([sys.executable, "-c", hide + "from molecule_runtime.main import main\nmain()\n"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"[FAIL] Missing dependency: runtime '{runtime}' needs the Python package(s)" in proc.stderr
    assert f"pip install 'molecule-runtime[{runtime}]'" in proc.stderr
    assert "Traceback" not in proc.stderr
