"""HermesAdapter: identity, settings (HERMES_MODEL, Nous/OpenRouter/OpenAI keys), preflight, setup
(private HERMES_HOME, health probe), smoke mode."""

import asyncio
import os
import stat
import sys
from pathlib import Path

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.hermes import Adapter, HermesExecutor
from molecule_runtime.adapters.hermes.adapter import NOUS_BASE_URL, private_hermes_home, resolve_hermes_settings
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight

from ...conftest import write_config
from ..conftest import process_env, run_cli
from .conftest import hermes_yaml


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_registry_and_schema():
    assert get_adapter("hermes", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("hermes", "Hermes Agent")
    assert "OpenRouter" in adapter.description()
    assert adapter.idle_timeout_override() == 1800
    schema = adapter.get_config_schema()
    assert schema["max_iterations"] == {"type": "integer", "default": 90}
    assert schema["toolsets"]["default"] == []


def test_settings_pick_the_provider_from_prefix_or_key():
    s = resolve_hermes_settings("nous:Hermes-4-70B", {}, {"NOUS_API_KEY": "nk"})
    assert (s.hermes_provider, s.llm.model, s.llm.base_url, s.llm.api_key) == ("nous", "Hermes-4-70B", NOUS_BASE_URL, "nk")
    s = resolve_hermes_settings("openrouter:nousresearch/hermes-4-405b", {}, {"OPENROUTER_API_KEY": "ok"})
    assert (s.hermes_provider, s.llm.model, s.llm.base_url, s.llm.api_key) == (
        "openrouter", "nousresearch/hermes-4-405b", "https://openrouter.ai/api/v1", "ok")
    # a bare name: the first key that is set
    assert resolve_hermes_settings("Hermes-4-70B", {}, {"NOUS_API_KEY": "nk", "OPENROUTER_API_KEY": "ok"}).hermes_provider == "nous"
    assert resolve_hermes_settings("m", {}, {"OPENROUTER_API_KEY": "ok", "OPENAI_API_KEY": "sk"}).hermes_provider == "openrouter"
    s = resolve_hermes_settings("qwen3:8b", {}, {"OPENAI_API_KEY": "sk", "OPENAI_BASE_URL": "http://vllm:8000/v1"})
    assert (s.hermes_provider, s.llm.model, s.llm.base_url, s.llm.api_key) == ("custom", "qwen3:8b", "http://vllm:8000/v1", "sk")
    # HERMES_MODEL wins over model:, OPENAI_BASE_URL over every default endpoint
    s = resolve_hermes_settings("openai:gpt-4o", {}, {"HERMES_MODEL": "nous:Hermes-4-405B", "NOUS_API_KEY": "nk",
                                                      "OPENAI_BASE_URL": "http://127.0.0.1:1/v1"})
    assert (s.llm.model, s.llm.base_url) == ("Hermes-4-405B", "http://127.0.0.1:1/v1")
    s = resolve_hermes_settings("m", {"toolsets": "terminal, file", "max_iterations": 5}, {"OPENAI_API_KEY": "k"})
    assert (s.toolsets, s.max_iterations) == (("terminal", "file"), 5)
    with pytest.raises(ValueError, match="runtime_config.toolsets"):
        resolve_hermes_settings("m", {"toolsets": {"x": 1}}, {})


def test_preflight_passes_with_a_nous_key(tmp_path):
    report = _preflight(tmp_path, hermes_yaml(model="nous:Hermes-4-70B"), {"NOUS_API_KEY": "nk"})
    assert report.ok and report.warnings == []


def test_preflight_names_the_nous_and_openrouter_keys_and_smoke_mode_demotes_it(tmp_path):
    report = _preflight(tmp_path, hermes_yaml(model="Hermes-4-70B"), {})
    [failure] = report.failures
    assert failure.title == "Missing API key"
    assert failure.detail.startswith("NOUS_API_KEY or OPENROUTER_API_KEY is not set (runtime 'hermes'")
    assert failure.fix.startswith("Set NOUS_API_KEY or OPENROUTER_API_KEY (or OPENAI_API_KEY with OPENAI_BASE_URL)")
    report = _preflight(tmp_path, hermes_yaml(model="nous:Hermes-4-70B"), {"OPENAI_API_KEY": "sk"})
    [failure] = report.failures
    assert failure.detail.startswith("NOUS_API_KEY is not set (runtime 'hermes', model 'nous:Hermes-4-70B')")
    report = _preflight(tmp_path, hermes_yaml(model="Hermes-4-70B"), {}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_names_a_missing_model_and_a_bad_runtime_config(tmp_path):
    report = _preflight(tmp_path, "runtime: hermes\nmodel: ''\n", {"NOUS_API_KEY": "k"})
    assert [f.title for f in report.failures] == ["Missing model"]
    report = _preflight(tmp_path, hermes_yaml("  max_iterations: 0\n"), {"OPENAI_API_KEY": "k"})
    [failure] = report.failures
    assert failure.title == "Invalid runtime_config" and "max_iterations must be >= 1" in failure.detail


def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "run_agent", None)  # as if hermes-agent were not installed
    for smoke in (False, True):  # a missing package is never demoted
        report = _preflight(tmp_path, hermes_yaml(), {"OPENAI_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency" and "run_agent" in failure.detail
        assert failure.fix == "pip install 'molecule-runtime[hermes]'"
    with pytest.raises(RuntimeError, match=r"molecule-runtime\[hermes\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))


def test_setup_fails_naming_the_key_unless_smoke_mode(tmp_path, monkeypatch):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="NOUS_API_KEY or OPENROUTER_API_KEY"):
        asyncio.run(Adapter().setup(AdapterConfig(model="Hermes-4-70B", config_path=str(tmp_path))))
    adapter = Adapter()
    home = tmp_path / "hh"
    cfg = AdapterConfig(model="Hermes-4-70B", config_path=str(tmp_path), smoke_mode=True,
                        runtime_config={"hermes_home": str(home)})
    asyncio.run(adapter.setup(cfg))
    assert isinstance(asyncio.run(adapter.create_executor(cfg)), HermesExecutor)
    assert adapter.settings.api_key == "sk-smoke-never-sent"
    assert os.environ["HERMES_HOME"] == str(home)
    assert stat.S_IMODE(home.stat().st_mode) == 0o700 and (home / "config.yaml").is_file()


def test_default_hermes_home_is_private_never_the_users():
    home = private_hermes_home("ws/1")
    assert home.name == f"molecule-hermes-ws_1-{os.getuid()}"
    assert home.resolve() != Path("~/.hermes").expanduser().resolve()
    assert str(private_hermes_home("ws", "/srv/h")) == "/srv/h"


def test_setup_health_probe_registers_the_tools_in_hermes(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    (tmp_path / "system-prompt.md").write_text("You are Ops.")

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        """Save a fact."""
        return {}

    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(tmp_path), builtin_tools={"commit_memory": commit_memory},
                        runtime_config={"hermes_home": str(tmp_path / "hh")})
    asyncio.run(adapter.setup(cfg))
    from tools.registry import registry  # hermes' registry, imported by the probe

    entry = registry.get_entry("commit_memory")
    assert entry.toolset == "molecule" and entry.schema["parameters"]["required"] == ["content"]
    assert adapter.system_prompt.startswith("You are Ops.")


def test_cli_exits_non_zero_naming_the_missing_keys(tmp_path):
    config_dir = write_config(tmp_path / "configs", hermes_yaml(model="Hermes-4-70B"))
    proc = run_cli(process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               PLATFORM_URL="http://127.0.0.1:9"))
    assert proc.returncode == 1
    assert "[FAIL] Missing API key: NOUS_API_KEY or OPENROUTER_API_KEY" in proc.stderr


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", hermes_yaml(f"  hermes_home: {tmp_path / 'hh'}\n"))
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", MOLECULE_SMOKE_TIMEOUT_SECS="60",
                               WORKSPACE_CONFIG_PATH=str(config_dir), OPENAI_BASE_URL="http://127.0.0.1:9/v1"),
                   timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr
    # execute ran hermes' loop for real: its agent tried the (unreachable) endpoint
    assert "Connection" in (tmp_path / "hh" / "logs" / "agent.log").read_text()


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", hermes_yaml())
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['run_agent'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'hermes' needs the Python package(s) run_agent" in proc.stderr
    assert "pip install 'molecule-runtime[hermes]'" in proc.stderr


def test_hot_reloaded_tools_replace_the_old_ones_in_hermes_registry(tmp_path, monkeypatch):
    from molecule_runtime.adapters.hermes.executor import register_tools

    monkeypatch.setenv("HERMES_HOME", str(tmp_path / "hh"))

    def double(x: int) -> int:
        """Double x."""
        return 2 * x

    def triple(x: int) -> int:
        """Triple x."""
        return 3 * x

    assert register_tools({"double": double}) == ["double"]
    from tools.registry import registry

    assert registry.get_tool_names_for_toolset("molecule") == ["double"]
    assert register_tools({"triple": triple}) == ["triple"]
    assert registry.get_tool_names_for_toolset("molecule") == ["triple"]
    assert registry.get_entry("double") is None
    assert registry.get_entry("triple").schema["parameters"]["properties"] == {"x": {"type": "integer"}}


def test_a_hermes_home_that_is_a_symlink_is_refused(tmp_path):
    from molecule_runtime.adapters.hermes.adapter import prepare_hermes_home

    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "hh").symlink_to(tmp_path / "elsewhere")
    settings = resolve_hermes_settings("m", {}, {"OPENAI_API_KEY": "k"})
    with pytest.raises(RuntimeError, match="not a directory owned by this user"):
        prepare_hermes_home(tmp_path / "hh", settings)
    assert not (tmp_path / "elsewhere" / "config.yaml").exists()
