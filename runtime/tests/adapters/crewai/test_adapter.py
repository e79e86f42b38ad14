"""CrewAIAdapter: identity, preflight (dependency, key), setup (skills, crewAI kept quiet), the pieces
the executor builds, the CLI, smoke mode and a whole running process."""

import asyncio
import os
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.crewai import Adapter, CrewAIExecutor
from molecule_runtime.adapters.crewai.executor import CREWAI_ENV, agent_role, crewai_model, task_description
from molecule_runtime.adapters.shared_runtime import resolve_llm_settings
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight
from molecule_runtime.skills import load_skill

from ...conftest import free_port, write_config, write_skill
from ...fake_openai import answer_with_tool_result
from ..conftest import process_env, run_cli, runtime_process
from .conftest import BOOT_TIMEOUT


@pytest.fixture
def restore_crewai_env(monkeypatch):
    """setup() writes CREWAI_ENV into os.environ: put the test process's values back afterwards."""
    for name in (*CREWAI_ENV, "OTEL_SDK_DISABLED"):
        monkeypatch.delenv(name, raising=False)


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_registry_and_config_schema():
    assert get_adapter("crewai", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("crewai", "CrewAI")
    assert "CrewAI" in adapter.description()
    assert not any(adapter.capabilities().to_dict().values())
    schema = adapter.get_config_schema()
    assert schema["max_tool_rounds"]["default"] == 10 and schema["max_retries"] == {"type": "integer", "default": 2}
    assert "stream" not in schema  # the reply comes whole from kickoff()


def test_preflight_passes_with_a_key_and_names_a_missing_one(tmp_path):
    report = _preflight(tmp_path, "runtime: crewai\nmodel: openai:gpt-4.1-mini\n", {"OPENAI_API_KEY": "sk-x"})
    assert report.ok and report.warnings == []
    report = _preflight(tmp_path, "runtime: crewai\nmodel: openai:gpt-4.1-mini\n", {})
    [failure] = report.failures
    assert failure.title == "Missing API key" and "OPENAI_API_KEY is not set" in failure.detail
    report = _preflight(tmp_path, "runtime: crewai\nmodel: openai:gpt-4.1-mini\n", {}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_and_setup_name_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "crewai", None)  # as if the extra were not installed
    for smoke in (False, True):  # a missing package is never demoted
        report = _preflight(tmp_path, "runtime: crewai\nmodel: gpt-4o\n", {"OPENAI_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency"
        assert failure.detail == "runtime 'crewai' needs the Python package(s) crewai, which are not installed"
        assert failure.fix == "pip install 'molecule-runtime[crewai]'"
    with pytest.raises(RuntimeError, match=r"molecule-runtime\[crewai\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gpt-4o", config_path=str(tmp_path))))


def test_setup_merges_skill_tools_keeps_crewai_quiet_and_hot_reload_swaps_tools(tmp_path, monkeypatch,
                                                                               restore_crewai_env):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    monkeypatch.setenv("CREWAI_TRACING_ENABLED", "true")  # an operator's .env cannot turn the upload on
    (tmp_path / "system-prompt.md").write_text("You are Ops.")
    write_skill(tmp_path, "calc", "name: Calc\nruntime: [crewai]\n", "def double(x: int) -> int:\n    return 2 * x\n")
    write_skill(tmp_path, "echo-only", "name: E\nruntime: echo\n", "def nope():\n    return 0\n")

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        return {}

    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path), tools=["calc", "echo-only"],
                        builtin_tools={"commit_memory": commit_memory})
    asyncio.run(adapter.setup(cfg))
    assert {name: os.environ[name] for name in CREWAI_ENV} == CREWAI_ENV
    assert os.environ["CREWAI_TRACING_ENABLED"] == "false"
    assert "OTEL_SDK_DISABLED" not in os.environ  # that would switch off the runtime's own tracing
    assert "crewai" in sys.modules  # imported at setup, not in the first request
    executor = asyncio.run(adapter.create_executor(cfg))
    assert isinstance(executor, CrewAIExecutor)
    assert sorted(executor.tools) == ["commit_memory", "double"]
    assert adapter.system_prompt.startswith("You are Ops.") and "### Calc" in adapter.system_prompt
    (tmp_path / "skills" / "calc" / "scripts" / "calc.py").write_text("def triple(x: int) -> int:\n    return 3 * x\n")
    adapter.replace_skills({"calc": load_skill(tmp_path, "calc", "crewai")})
    assert sorted(executor.tools) == ["commit_memory", "triple"]


def test_crewai_objects_built_for_a_request(tmp_path, monkeypatch, restore_crewai_env):
    """What one request's Agent, Task and LLM are (no model call)."""
    from molecule_runtime.adapters.crewai.executor import ToolBridge

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        """Save a fact."""
        return {}

    settings = resolve_llm_settings("openai:gpt-4.1-mini", {"max_tool_rounds": 4, "max_retries": 1,
                                                            "temperature": 0.2},
                                    env={"OPENAI_API_KEY": "sk-y", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    executor = CrewAIExecutor(settings=settings, system_prompt="Researcher\nFind things.",
                              tools={"commit_memory": commit_memory})
    crew = executor.build_crew("find x", [("user", "hi"), ("assistant", "hello")],
                               ToolBridge(asyncio.new_event_loop(), executor.tools, []))
    [agent], [task] = crew.agents, crew.tasks
    assert (agent.role, agent.backstory) == ("Researcher", "Researcher\nFind things.")
    assert agent.allow_delegation is False and agent.cache is False and agent.max_retry_limit == 0
    assert agent.max_iter == 4 and agent.respect_context_window is False
    assert task.description == "Conversation so far:\nUser: hi\nAssistant: hello\n\nCurrent message:\nfind x"
    assert crew.memory is False and crew.tracing is False
    llm = agent.llm
    assert (llm.model, llm.base_url, llm.api_key, llm.max_retries, llm.temperature) == (
        "gpt-4.1-mini", "http://127.0.0.1:9/v1", "sk-y", 1, 0.2)
    from crewai.llms.providers.openai.completion import OpenAICompletion

    from molecule_runtime.adapters.crewai.executor import traced_llm_class

    # crewAI's native OpenAI provider (not LiteLLM), as the traced subclass, with crewAI's routing kept
    assert isinstance(llm, OpenAICompletion) and type(llm) is traced_llm_class()
    assert llm.custom_openai is False and llm._molecule_provider == "openai"
    other = CrewAIExecutor(settings=resolve_llm_settings("openai:llama3.1-local", env={
        "OPENAI_API_KEY": "sk-y", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}), system_prompt="").build_llm()
    assert other.custom_openai is True  # a name crewAI does not know, on a custom endpoint
    [tool] = agent.tools
    assert tool.name == "commit_memory" and tool.description == "Save a fact."
    assert set(tool.args_schema.model_fields) == {"content", "scope"}
    assert tool.args_schema.model_fields["content"].is_required()
    assert not tool.args_schema.model_fields["scope"].is_required()


def test_helpers():
    assert crewai_model(resolve_llm_settings("openai:gpt-4o", env={})) == "openai/gpt-4o"
    assert crewai_model(resolve_llm_settings("ollama:llama3.1:8b", env={})) == "openai/llama3.1:8b"
    assert agent_role("\n\n## Senior Researcher\nbody") == "Senior Researcher"
    assert agent_role("You are CrewAI, an assistant on a Molecule AI team.\n") == "CrewAI, an assistant on a Molecule AI team"
    assert agent_role("...\nAnalyst") == "Analyst"
    assert agent_role("") == "Assistant"
    assert task_description("now", []) == "now"


def test_cli_exits_non_zero_naming_the_missing_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: crewai\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               PLATFORM_URL="http://127.0.0.1:9"), timeout=BOOT_TIMEOUT)
    assert proc.returncode == 1
    assert "[FAIL] Missing API key: OPENAI_API_KEY is not set" in proc.stderr


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: crewai\nmodel: openai:gpt-4.1-mini\n"
                                                    "runtime_config: {max_retries: 0}\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               OPENAI_BASE_URL="http://127.0.0.1:9/v1"), timeout=BOOT_TIMEOUT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: crewai\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['crewai'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'crewai' needs the Python package(s) crewai" in proc.stderr
    assert "pip install 'molecule-runtime[crewai]'" in proc.stderr


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_openai, fake_platform):
    """The whole process: config → preflight → adapter → A2A server → register; a message/send (what a
    delegating peer sends) → crew → tool → the reply text as the A2A result."""
    ws = "44444444-4444-4444-8444-444444444444"
    configs = write_config(tmp_path / "configs", "name: Researcher\nruntime: crewai\nmodel: openai:gpt-4.1-mini\n")
    (configs / "system-prompt.md").write_text("Researcher\nYou research and remember findings.")
    fake_openai.script = [
        {"tool_calls": [{"id": "call_p1", "name": "commit_memory", "arguments": {"content": "process fact"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30")
    with runtime_process(env, fake_platform, ws, boot_timeout=BOOT_TIMEOUT) as url:
        from ...a2a_helpers import rpc, msg03

        result = rpc(url, "message/send", {"message": msg03("remember the process fact")}, timeout=60)["result"]
    token = (configs / ".auth_token").read_text()
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "process fact", "scope": "LOCAL"}
    assert req.headers["authorization"] == f"Bearer {token}"
    memory_id = fake_platform.memories[0]["id"]
    assert result["parts"][0]["text"] == f'Stored: {{"success": true, "id": "{memory_id}", "scope": "LOCAL"}}'
    assert [c.body["model"] for c in fake_openai.requests] == ["gpt-4.1-mini", "gpt-4.1-mini"]
    assert fake_openai.requests[0].messages[0]["content"].startswith("You are Researcher. Researcher\n")
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-process-key"
