"""DeepAgentsAdapter: identity, preflight (dependency of the model's provider, key, config), setup
(filesystem root), config schema, smoke mode."""

import asyncio
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.deepagents import Adapter, DeepAgentsExecutor
from molecule_runtime.adapters.deepagents.adapter import filesystem_root, required_modules
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight

from ...conftest import write_config
from ..conftest import process_env, run_cli


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_and_config_schema():
    assert get_adapter("deepagents", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("deepagents", "Deep Agents")
    schema = adapter.get_config_schema()
    assert {"base_url", "api_key_env", "max_retries", "timeout", "temperature", "stream"} == set(schema)
    assert "ANTHROPIC_BASE_URL" in schema["base_url"]["description"]


def test_required_modules_follow_the_model_provider():
    assert required_modules("openai:gpt-4.1-mini", {}, {})[-1] == "langchain_openai"
    assert required_modules("anthropic:claude-sonnet-4-5", {}, {})[-1] == "langchain_anthropic"
    assert required_modules("google_genai:gemini-2.5-flash", {}, {})[-1] == "langchain_google_genai"
    assert required_modules("ollama:llama3.1", {}, {})[-1] == "langchain_ollama"
    assert required_modules("qianfan:ernie-4.5", {}, {})[:3] == ("deepagents", "langgraph", "langchain_core")


def test_preflight_names_the_missing_key_of_the_model_provider(tmp_path):
    [failure] = _preflight(tmp_path, "runtime: deepagents\nmodel: anthropic:claude-sonnet-4-5\n",
                           {"OPENAI_API_KEY": "k"}).failures
    assert failure.title == "Missing API key" and "ANTHROPIC_API_KEY is not set (runtime 'deepagents'" in failure.detail
    [failure] = _preflight(tmp_path, "runtime: deepagents\nmodel: qianfan:ernie-4.5\n", {}).failures
    assert "QIANFAN_API_KEY is not set" in failure.detail and "(or AISTUDIO_API_KEY)" in failure.fix
    assert _preflight(tmp_path, "runtime: deepagents\nmodel: qianfan:ernie-4.5\n", {"AISTUDIO_API_KEY": "k"}).ok


def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_anthropic", None)
    report = _preflight(tmp_path, "runtime: deepagents\nmodel: anthropic:claude-sonnet-4-5\n",
                        {"ANTHROPIC_API_KEY": "k"})
    [failure] = report.failures
    assert failure.title == "Missing dependency" and "langchain_anthropic" in failure.detail
    assert failure.fix == "pip install 'molecule-runtime[deepagents]'"
    assert _preflight(tmp_path, "runtime: deepagents\nmodel: openai:gpt-4.1-mini\n", {"OPENAI_API_KEY": "k"}).ok
    monkeypatch.setitem(sys.modules, "deepagents", None)
    with pytest.raises(RuntimeError, match=r"deepagents.*molecule-runtime\[deepagents\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))


def test_filesystem_root_is_the_workspace_if_it_exists_else_the_config_dir(tmp_path, workspace_root):
    configs = tmp_path / "configs"
    configs.mkdir()
    assert filesystem_root(configs, {"WORKSPACE_DIR": str(workspace_root)}) == workspace_root
    assert filesystem_root(configs, {"WORKSPACE_DIR": str(tmp_path / "missing")}) == configs.resolve()


def test_setup_fails_naming_the_key_unless_smoke_mode(tmp_path, monkeypatch, workspace_root):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))
    adapter = Adapter()
    cfg = AdapterConfig(model="gpt-4o", config_path=str(tmp_path), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert isinstance(executor, DeepAgentsExecutor)
    assert (executor.root_dir, executor.config_dir) == (workspace_root, tmp_path.resolve())


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: deepagents\nmodel: openai:gpt-4.1-mini\n"
                                                    "runtime_config: {max_retries: 0}\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               OPENAI_BASE_URL="http://127.0.0.1:9/v1", WORKSPACE_DIR=str(tmp_path / "workspace")),
                   timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: deepagents\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['deepagents'] = None", timeout=120)
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'deepagents' needs the Python package(s) deepagents" in proc.stderr
