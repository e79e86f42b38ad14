"""What every adapter must do (spec/runtime.md §3.1, §3.2, §9), checked for each runtime alike.

`make test` runs this file once per environment: in the project venv for the runtimes installed
there, and in each runtime environment of its own (crewai, hermes, google-adk) with
``MOLECULE_TEST_RUNTIMES=<runtime>``. Each runtime boots in smoke mode from the platform's
``<runtime>-default`` template, so the shipped templates are known to start.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from molecule_runtime.adapters import BUILTIN_ADAPTERS, get_adapter
from molecule_runtime.adapters.base import AdapterCheck, BaseAdapter, RuntimeCapabilities
from molecule_runtime.config import load_config

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "workspace-configs-templates"
NPM_BIN = Path(os.environ.get("MOLECULE_NPM_BIN") or REPO / ".molecule" / "npm" / "node_modules" / ".bin")
# the runtimes of the project venv; the others run where MOLECULE_TEST_RUNTIMES names them
PROJECT_VENV_RUNTIMES = ("echo", "openai", "langgraph", "deepagents", "claude-code", "autogen", "openclaw", "cli")
RUNTIMES = tuple(filter(None, os.environ.get("MOLECULE_TEST_RUNTIMES", "").split(","))) or PROJECT_VENV_RUNTIMES
FAKE_KEYS = {"OPENAI_API_KEY": "sk-fake-smoke-openai", "ANTHROPIC_API_KEY": "sk-ant-fake-smoke",
             "CLAUDE_CODE_OAUTH_TOKEN": "sk-ant-oat-fake-smoke", "GOOGLE_API_KEY": "fake-smoke-google",
             "GEMINI_API_KEY": "fake-smoke-gemini", "OPENROUTER_API_KEY": "sk-or-fake-smoke"}
SMOKE_TIMEOUT = {"claude-code": "90"}


SEPARATE_ENV_RUNTIMES = ("crewai", "hermes", "google-adk")


def test_every_registered_runtime_is_checked_in_some_environment():
    assert set(PROJECT_VENV_RUNTIMES) | set(SEPARATE_ENV_RUNTIMES) == set(BUILTIN_ADAPTERS)
    assert set(RUNTIMES) <= set(BUILTIN_ADAPTERS)


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_adapter_names_itself_and_describes_its_config(runtime, tmp_path, monkeypatch):
    cls = get_adapter(runtime, env={})
    assert issubclass(cls, BaseAdapter) and not inspect.isabstract(cls)
    assert cls.name() == runtime
    assert cls.display_name().strip() and cls.description().strip()
    # a cheap constructor free of side effects: the heartbeat builds one to read capabilities
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    adapter = cls()
    assert list(tmp_path.iterdir()) == []
    schema = adapter.get_config_schema()
    assert isinstance(schema, dict)
    for key, field in schema.items():
        assert isinstance(key, str) and isinstance(field, dict) and "type" in field, (key, field)
    assert isinstance(adapter.capabilities(), RuntimeCapabilities)
    assert adapter.idle_timeout_override() is None or adapter.idle_timeout_override() > 0


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_importing_the_adapter_does_not_import_its_sdk(runtime):
    module = BUILTIN_ADAPTERS[runtime]
    sdk = getattr(get_adapter(runtime, env={}), "REQUIRED_MODULES", ())
    code = (f"import sys, json, {module} as m\n"
            f"print(json.dumps(sorted(n for n in {list(sdk)!r} if n in sys.modules)))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_preflight_without_keys_names_what_is_missing_and_never_fails_smoke_for_it(runtime):
    config = load_config(TEMPLATES / f"{runtime}-default", env={})
    checks = get_adapter(runtime, env={})().preflight_checks(config, {"PATH": os.environ.get("PATH", "")})
    assert all(isinstance(check, AdapterCheck) and check.title and check.detail for check in checks)
    key_checks = [c for c in checks if "key" in c.title.lower() or "token" in c.title.lower()]
    assert all(c.demote_in_smoke for c in key_checks), key_checks
    if runtime != "echo":
        assert key_checks, f"{runtime}: preflight does not say that no model key is set ({checks})"


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_default_template_boots_in_smoke_mode(runtime, tmp_path):
    configs = tmp_path / "configs"
    shutil.copytree(TEMPLATES / f"{runtime}-default", configs)
    # every endpoint points at a closed loopback port: a smoke run never reaches a real provider
    env = {k: v for k, v in os.environ.items() if k not in ("ADAPTER_MODULE", "PLATFORM_URL", "OPENAI_BASE_URL")}
    env.update(FAKE_KEYS, MOLECULE_SMOKE_MODE="1", MOLECULE_SMOKE_TIMEOUT_SECS=SMOKE_TIMEOUT.get(runtime, "15"),
               WORKSPACE_ID="fake-smoke", WORKSPACE_CONFIG_PATH=str(configs), WORKSPACE_DIR=str(tmp_path / "workspace"),
               HOME=str(tmp_path / "home"), PLATFORM_URL="http://127.0.0.1:9", OPENAI_BASE_URL="http://127.0.0.1:9/v1",
               ANTHROPIC_BASE_URL="http://127.0.0.1:9", GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:9",
               PATH=os.pathsep.join([str(NPM_BIN), env.get("PATH", os.defpath)]))
    (tmp_path / "home").mkdir()
    proc = subprocess.run([sys.executable, "-m", "molecule_runtime.main"], env=env, capture_output=True, text=True,
                          timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[smoke-mode] PASS" in proc.stdout

