"""LangGraphAdapter: identity, default runtime, preflight (dependency, key, endpoint), setup, smoke mode."""

import asyncio
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.langgraph import Adapter, LangGraphExecutor
from molecule_runtime.adapters.langgraph.executor import as_langchain_tools, content_text
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight

from ...conftest import write_config
from ..conftest import process_env, run_cli


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_and_it_is_the_default_runtime(tmp_path):
    assert get_adapter("langgraph", env={}) is Adapter
    assert get_adapter("", env={}) is Adapter  # the seed's default
    config_dir = write_config(tmp_path / "configs", "name: No runtime given\n")
    assert get_adapter(load_config(config_dir, env={}).runtime, env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("langgraph", "LangGraph")
    assert not any(adapter.capabilities().to_dict().values())


def test_preflight_names_the_missing_key_of_the_model_provider(tmp_path):
    # the shipped templates say anthropic:claude-…; langgraph speaks the Messages API to it (ChatAnthropic)
    report = _preflight(tmp_path, "runtime: langgraph\nmodel: anthropic:claude-opus-4-7\n", {"OPENAI_API_KEY": "k"})
    [failure] = report.failures
    assert "ANTHROPIC_API_KEY is not set" in failure.detail
    assert _preflight(tmp_path, "runtime: langgraph\nmodel: openai:gpt-4.1-mini\n", {"OPENAI_API_KEY": "k"}).ok


def test_preflight_names_a_missing_base_url_and_bad_runtime_config(tmp_path):
    [failure] = _preflight(tmp_path, "runtime: langgraph\nmodel: litellm:claude\n", {"OPENAI_API_KEY": "k"}).failures
    assert "OPENAI_BASE_URL is not set" in failure.detail
    [failure] = _preflight(tmp_path, "runtime: langgraph\nmodel: gpt-4o\nruntime_config: {max_tool_rounds: x}\n",
                           {"OPENAI_API_KEY": "k"}).failures
    assert failure.title == "Invalid runtime_config" and "max_tool_rounds must be an integer" in failure.detail


def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "langchain_openai", None)
    report = _preflight(tmp_path, "runtime: langgraph\nmodel: gpt-4o\n", {"OPENAI_API_KEY": "k"}, smoke=True)
    [failure] = report.failures
    assert failure.title == "Missing dependency" and "langchain_openai" in failure.detail
    assert failure.fix == "pip install 'molecule-runtime[langgraph]'"
    with pytest.raises(RuntimeError, match=r"molecule-runtime\[langgraph\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))


def test_setup_fails_naming_the_key_unless_smoke_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))
    adapter = Adapter()
    cfg = AdapterConfig(model="gpt-4o", config_path=str(tmp_path), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    assert isinstance(asyncio.run(adapter.create_executor(cfg)), LangGraphExecutor)


def test_built_in_tools_become_langchain_tools_with_the_same_schema():
    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        """Save a fact.

        More detail."""
        return {"saved": content, "scope": scope}

    [tool] = as_langchain_tools({"commit_memory": commit_memory})
    assert (tool.name, tool.description) == ("commit_memory", "Save a fact.")
    assert tool.args_schema["required"] == ["content"]
    assert asyncio.run(tool.ainvoke({"content": "x"})) == '{"saved": "x", "scope": "LOCAL"}'


def test_content_text_skips_non_text_blocks():
    assert content_text("plain") == "plain"
    assert content_text([{"type": "text", "text": "a"}, {"type": "tool_use", "id": "t"}, "b"]) == "ab"
    assert content_text(None) == ""


def test_cli_exits_non_zero_naming_the_missing_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: langgraph\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               PLATFORM_URL="http://127.0.0.1:9"))
    assert proc.returncode == 1
    assert "[FAIL] Missing API key: OPENAI_API_KEY is not set" in proc.stderr


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: langgraph\nmodel: openai:gpt-4.1-mini\n"
                                                    "runtime_config: {max_retries: 0}\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: langgraph\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['langgraph'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'langgraph' needs the Python package(s) langgraph" in proc.stderr
