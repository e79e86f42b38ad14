"""OpenAIAdapter: identity, preflight (dependency, key, endpoint), setup, skills, smoke mode."""

import asyncio
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.openai import Adapter, OpenAIExecutor
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight
from molecule_runtime.skills import load_skill

from ...conftest import write_config, write_skill
from ..conftest import process_env, run_cli


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_and_registry():
    assert get_adapter("openai", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("openai", "OpenAI-compatible")
    assert "Ollama" in adapter.description()
    assert not any(adapter.capabilities().to_dict().values())
    assert adapter.get_config_schema()["max_tool_rounds"] == {"type": "integer", "default": 10}


def test_preflight_passes_with_a_key(tmp_path):
    report = _preflight(tmp_path, "runtime: openai\nmodel: openai:gpt-4o\n", {"OPENAI_API_KEY": "sk-x"})
    assert report.ok and report.warnings == []


def test_preflight_names_a_missing_key_and_smoke_mode_demotes_it(tmp_path):
    report = _preflight(tmp_path, "runtime: openai\nmodel: openai:gpt-4o\n", {})
    [failure] = report.failures
    assert failure.title == "Missing API key" and "OPENAI_API_KEY is not set" in failure.detail
    report = _preflight(tmp_path, "runtime: openai\nmodel: openai:gpt-4o\n", {}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_names_a_missing_base_url(tmp_path):
    report = _preflight(tmp_path, "runtime: openai\nmodel: vllm:qwen2.5\n", {"OPENAI_API_KEY": "k"})
    [failure] = report.failures
    assert failure.title == "Missing base URL" and "OPENAI_BASE_URL is not set" in failure.detail


def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "openai", None)  # as if the extra were not installed
    for smoke in (False, True):  # a missing package is never demoted
        report = _preflight(tmp_path, "runtime: openai\nmodel: gpt-4o\n", {"OPENAI_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency" and "openai" in failure.detail
        assert failure.fix == "pip install 'molecule-runtime[openai]'"
    with pytest.raises(RuntimeError, match=r"molecule-runtime\[openai\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))


def test_setup_fails_naming_the_key_unless_smoke_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="openai:gpt-4o", config_path=str(tmp_path))))
    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(tmp_path), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    assert isinstance(asyncio.run(adapter.create_executor(cfg)), OpenAIExecutor)


def test_setup_merges_skill_tools_and_hot_reload_swaps_them(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    (tmp_path / "system-prompt.md").write_text("You are Ops.")
    write_skill(tmp_path, "calc", "name: Calc\nruntime: [openai]\n", "def double(x: int) -> int:\n    return 2 * x\n")
    write_skill(tmp_path, "echo-only", "name: E\nruntime: echo\n", "def nope():\n    return 0\n")

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        return {}

    adapter = Adapter()
    cfg = AdapterConfig(model="gpt-4o", config_path=str(tmp_path), tools=["calc", "echo-only"],
                        builtin_tools={"commit_memory": commit_memory})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert sorted(executor.tools) == ["commit_memory", "double"]
    assert adapter.system_prompt.startswith("You are Ops.") and "### Calc" in adapter.system_prompt
    (tmp_path / "skills" / "calc" / "scripts" / "calc.py").write_text("def triple(x: int) -> int:\n    return 3 * x\n")
    adapter.replace_skills({"calc": load_skill(tmp_path, "calc", "openai")})
    assert sorted(executor.tools) == ["commit_memory", "triple"]
    # a skill promoted while running: its instructions reach the prompt the next task uses
    write_skill(tmp_path, "triage", "name: Triage\ndescription: Triage flaky CI\n", None)
    adapter.replace_skills({"triage": load_skill(tmp_path, "triage", "openai")})
    assert "### Triage\nTriage flaky CI" in executor.system_prompt and executor.system_prompt == adapter.system_prompt
    assert executor.system_prompt.startswith("You are Ops.") and "### Calc" in executor.system_prompt
    adapter.replace_skills({"triage": None})
    assert "### Triage" not in executor.system_prompt


def test_a_restored_snapshot_reaches_the_executor_and_stays_through_a_skill_promotion(tmp_path, monkeypatch):
    """main restores the pre-stop snapshot after the executor exists: the model must see it, and a
    skill promoted afterwards rebuilds the prompt without dropping it."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    (tmp_path / "system-prompt.md").write_text("You are Ops.")
    adapter = Adapter()
    cfg = AdapterConfig(model="gpt-4o", config_path=str(tmp_path))
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    adapter.restore_state({"timestamp": "2026-12-03T10:00:00Z", "current_task": "writing the report"})
    assert "## Before your last restart" in executor.system_prompt and "writing the report" in executor.system_prompt
    write_skill(tmp_path, "triage", "name: Triage\ndescription: Triage flaky CI\n", None)
    adapter.replace_skills({"triage": load_skill(tmp_path, "triage", "openai")})
    prompt = executor.system_prompt
    assert prompt.startswith("You are Ops.") and "### Triage\nTriage flaky CI" in prompt
    assert prompt.index("### Triage") < prompt.index("## Before your last restart") and "writing the report" in prompt
    adapter.replace_skills({"triage": None})
    assert "### Triage" not in executor.system_prompt and "writing the report" in executor.system_prompt


def test_cli_exits_non_zero_naming_the_missing_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: openai\nmodel: openai:gpt-4o\n")
    proc = run_cli(process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               PLATFORM_URL="http://127.0.0.1:9"))
    assert proc.returncode == 1
    assert "[FAIL] Missing API key: OPENAI_API_KEY is not set" in proc.stderr


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: openai\nmodel: openai:gpt-4o\n"
                                                    "runtime_config: {max_retries: 0}\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: openai\nmodel: openai:gpt-4o\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['openai'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'openai' needs the Python package(s) openai" in proc.stderr
    assert "pip install 'molecule-runtime[openai]'" in proc.stderr
