"""AutoGenAdapter: identity, config schema, preflight (dependency, key, endpoint, model_info), setup,
tools as AutoGen tools, the model client's model_info, the CLI and smoke mode."""

import asyncio
import json
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.autogen import Adapter, AutoGenExecutor
from molecule_runtime.adapters.autogen.executor import DEFAULT_MODEL_INFO, as_autogen_tools, history_messages
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.shared_runtime import resolve_llm_settings
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight
from molecule_runtime.skills import load_skill
from molecule_runtime.tools import tool_schemas

from ...conftest import write_config, write_skill
from ..conftest import process_env, run_cli


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_registry_and_config_schema():
    assert get_adapter("autogen", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("autogen", "AutoGen")
    assert "AssistantAgent" in adapter.description()
    assert not any(adapter.capabilities().to_dict().values())
    schema = adapter.get_config_schema()
    assert schema["max_tool_rounds"]["default"] == 10 and schema["stream"] == {"type": "boolean", "default": True}
    assert schema["model_info"]["type"] == "object"


def test_the_package_imports_without_autogen():
    """Registry, heartbeat and preflight load the adapter where the extra is not installed."""
    import subprocess

    code = ("import sys\n"
            "for m in ('autogen_agentchat', 'autogen_core', 'autogen_ext', 'openai', 'tiktoken'): sys.modules[m] = None\n"
            "from molecule_runtime.adapters import get_adapter\n"
            "adapter = get_adapter('autogen', env={})()\n"
            "print(adapter.name(), sorted(adapter.get_config_schema())[:2])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "autogen ['api_key_env', 'base_url']"


def test_preflight_passes_with_a_key(tmp_path):
    report = _preflight(tmp_path, "runtime: autogen\nmodel: openai:gpt-4.1-mini\n", {"OPENAI_API_KEY": "sk-x"})
    assert report.ok and report.warnings == []


def test_preflight_names_a_missing_key_and_smoke_mode_demotes_it(tmp_path):
    report = _preflight(tmp_path, "runtime: autogen\nmodel: openai:gpt-4.1-mini\n", {})
    [failure] = report.failures
    assert failure.title == "Missing API key" and "OPENAI_API_KEY is not set (runtime 'autogen'" in failure.detail
    report = _preflight(tmp_path, "runtime: autogen\nmodel: openai:gpt-4.1-mini\n", {}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]
    # the key of the model's provider, as for the other OpenAI-compatible adapters
    [failure] = _preflight(tmp_path, "runtime: autogen\nmodel: groq:llama-3.3-70b\n", {}).failures
    assert "GROQ_API_KEY is not set" in failure.detail


def test_preflight_names_a_missing_base_url_and_bad_runtime_config(tmp_path):
    [failure] = _preflight(tmp_path, "runtime: autogen\nmodel: vllm:qwen2.5\n", {"OPENAI_API_KEY": "k"}).failures
    assert failure.title == "Missing base URL" and "OPENAI_BASE_URL is not set" in failure.detail
    [failure] = _preflight(tmp_path, "runtime: autogen\nmodel: gpt-4o\nruntime_config: {max_tool_rounds: 0}\n",
                           {"OPENAI_API_KEY": "k"}).failures
    assert failure.title == "Invalid runtime_config" and "max_tool_rounds must be >= 1" in failure.detail
    [failure] = _preflight(tmp_path, "runtime: autogen\nmodel: gpt-4o\nruntime_config: {model_info: {vision: maybe}}\n",
                           {"OPENAI_API_KEY": "k"}).failures
    assert failure.title == "Invalid runtime_config"
    assert failure.detail == "runtime_config.model_info.vision must be a bool, got 'maybe'"
    [failure] = _preflight(tmp_path, "runtime: autogen\nmodel: gpt-4o\nruntime_config: {model_info: {colour: red}}\n",
                           {"OPENAI_API_KEY": "k"}).failures
    assert "model_info.colour is not a model_info key" in failure.detail


@pytest.mark.parametrize("module", ["autogen_agentchat", "autogen_ext", "openai"])
def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch, module):
    monkeypatch.setitem(sys.modules, module, None)  # as if the extra were not installed
    for smoke in (False, True):  # a missing package is never demoted
        report = _preflight(tmp_path, "runtime: autogen\nmodel: gpt-4o\n", {"OPENAI_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency" and module in failure.detail
        assert failure.fix == "pip install 'molecule-runtime[autogen]'"
    with pytest.raises(RuntimeError, match=r"molecule-runtime\[autogen\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))


def test_setup_fails_naming_the_key_unless_smoke_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path))))
    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    assert isinstance(asyncio.run(adapter.create_executor(cfg)), AutoGenExecutor)


def test_setup_rejects_a_bad_model_info(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    with pytest.raises(RuntimeError, match="model_info must be a mapping"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path),
                                                  runtime_config={"model_info": "vision"})))


def test_setup_merges_skill_tools_and_hot_reload_swaps_them(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    (tmp_path / "system-prompt.md").write_text("You are the Writer.")
    write_skill(tmp_path, "calc", "name: Calc\nruntime: [autogen]\n", "def double(x: int) -> int:\n    return 2 * x\n")
    write_skill(tmp_path, "echo-only", "name: E\nruntime: echo\n", "def nope():\n    return 0\n")

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        return {}

    adapter = Adapter()
    cfg = AdapterConfig(model="gpt-4.1-mini", config_path=str(tmp_path), tools=["calc", "echo-only"],
                        builtin_tools={"commit_memory": commit_memory})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert sorted(executor.tools) == ["commit_memory", "double"]
    assert executor.system_prompt == adapter.system_prompt
    assert adapter.system_prompt.startswith("You are the Writer.") and "### Calc" in adapter.system_prompt
    (tmp_path / "skills" / "calc" / "scripts" / "calc.py").write_text("def triple(x: int) -> int:\n    return 3 * x\n")
    adapter.replace_skills({"calc": load_skill(tmp_path, "calc", "autogen")})
    assert sorted(executor.tools) == ["commit_memory", "triple"]
    assert sorted(t.name for t in as_autogen_tools(executor.tools)) == ["commit_memory", "triple"]


def test_tools_become_autogen_tools_with_the_same_schema_and_json_results():
    from autogen_core import CancellationToken

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        """Save a fact.

        More detail."""
        return {"saved": content, "scope": scope}

    def double(x: int) -> int:  # a sync skill tool
        return 2 * x

    tools = {"commit_memory": commit_memory, "double": double}
    wrapped = as_autogen_tools(tools)
    assert [t.schema for t in wrapped] == [
        {"name": s["function"]["name"], "description": s["function"]["description"],
         "parameters": s["function"]["parameters"], "strict": False} for s in tool_schemas(tools)]
    memory, dbl = wrapped
    assert memory.description == "Save a fact."
    token = CancellationToken()

    async def call(tool, args):
        return tool.return_value_as_string(await tool.run_json(args, token, call_id="c1"))

    assert asyncio.run(call(memory, {"content": "x"})) == '{"saved": "x", "scope": "LOCAL"}'
    assert asyncio.run(call(dbl, {"x": 21})) == "42"
    assert "bad arguments for commit_memory" in json.loads(asyncio.run(call(memory, {"scope": "TEAM"})))["error"]


def test_history_becomes_user_and_assistant_messages():
    from autogen_core.models import AssistantMessage, UserMessage

    messages = history_messages([("user", "hi"), ("assistant", "hello"), ("user", "again")])
    assert [(type(m), m.content) for m in messages] == [
        (UserMessage, "hi"), (AssistantMessage, "hello"), (UserMessage, "again")]


def _client(model: str, model_info=None, **rc):
    executor = AutoGenExecutor(settings=resolve_llm_settings(model, rc, {"OPENAI_API_KEY": "sk-x", "ANTHROPIC_API_KEY": "sk-ant"}))
    executor.model_info = model_info

    async def build():
        return executor.model_client()

    return asyncio.run(build())


def test_model_info_known_unknown_and_overridden():
    known = _client("openai:gpt-4.1-mini")  # AutoGen's own table
    assert known.model_info["function_calling"] is True and known.model_info["family"] != "unknown"
    assert _client("ollama:llama3.1").model_info == DEFAULT_MODEL_INFO
    vision = _client("openrouter:qwen/qwen2.5-vl", {"vision": True, "family": "qwen"})
    assert vision.model_info == {**DEFAULT_MODEL_INFO, "vision": True, "family": "qwen"}


def test_the_model_client_uses_the_resolved_endpoint_key_and_options():
    client = _client("anthropic:claude-sonnet-4-5", temperature=0.2, timeout=12, max_retries=4)
    raw = client._client  # the AsyncOpenAI underneath
    assert str(raw.base_url) == "https://api.anthropic.com/v1/"
    assert (raw.api_key, raw.max_retries, raw.timeout) == ("sk-ant", 4, 12.0)
    assert client._create_args == {"model": "claude-sonnet-4-5", "temperature": 0.2, "timeout": 12.0}
    # a bare claude-* name stays on the resolved (OpenAI) endpoint, not AutoGen's guess
    assert str(_client("claude-sonnet-4-5")._client.base_url) == "https://api.openai.com/v1/"


def test_cli_exits_non_zero_naming_the_missing_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: autogen\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               PLATFORM_URL="http://127.0.0.1:9"))
    assert proc.returncode == 1
    assert "[FAIL] Missing API key: OPENAI_API_KEY is not set" in proc.stderr


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: autogen\nmodel: openai:gpt-4.1-mini\n"
                                                    "runtime_config: {max_retries: 0}\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               OPENAI_BASE_URL="http://127.0.0.1:9/v1"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: autogen\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['autogen_agentchat'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'autogen' needs the Python package(s) autogen_agentchat" in proc.stderr
    assert "pip install 'molecule-runtime[autogen]'" in proc.stderr
