"""GoogleADKAdapter: identity, settings, preflight (dependency, key, Vertex AI, model), setup, skills,
smoke mode, and the whole `molecule-runtime` process answering through the fake Gemini."""

import asyncio
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.google_adk import Adapter, GoogleADKExecutor
from molecule_runtime.adapters.google_adk.adapter import resolve_adk_settings
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight
from molecule_runtime.skills import load_skill

from ...a2a_helpers import msg03, rpc
from ...conftest import write_config, write_skill
from ...fake_gemini import answer_with_function_response
from ..conftest import process_env, run_cli
from .conftest import ADK_CONFIG, GOOGLE_VARS


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def _env(**extra):
    """The test process's environment without Google's variables, plus ``extra``."""
    env = process_env(**extra)
    for name in GOOGLE_VARS:
        if name not in extra:
            env.pop(name, None)
    return env


def test_identity_registry_and_config_schema():
    assert get_adapter("google-adk", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("google-adk", "Google ADK")
    assert "LlmAgent" in adapter.description()
    assert not any(adapter.capabilities().to_dict().values())
    schema = adapter.get_config_schema()
    assert schema["agent_name"] == {"type": "string", "default": "molecule-adk-agent"}
    assert schema["max_output_tokens"] == {"type": "integer", "default": 8192}
    assert schema["temperature"] == {"type": "number", "default": 1.0}


def test_settings_defaults_prefix_and_keys():
    s = resolve_adk_settings("google_genai:gemini-2.5-flash", {}, {"GEMINI_API_KEY": "g-key"})
    assert (s.model, s.api_key, s.agent_name, s.adk_name) == ("gemini-2.5-flash", "g-key", "molecule-adk-agent",
                                                              "molecule_adk_agent")
    assert (s.max_output_tokens, s.temperature, s.stream, s.vertexai) == (8192, 1.0, True, False)
    s = resolve_adk_settings("gemini-2.5-pro", {"agent_name": "9 lives", "temperature": "0.3", "max_output_tokens": 64,
                                                "api_key_env": "MY_GEMINI"},
                             {"GOOGLE_API_KEY": "ignored", "MY_GEMINI": "mine", "OPENAI_BASE_URL": "http://x/v1",
                              "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:1"})
    assert (s.model, s.api_key, s.adk_name, s.temperature, s.max_output_tokens) == (
        "gemini-2.5-pro", "mine", "_9_lives", 0.3, 64)
    assert s.base_url == "http://127.0.0.1:1"  # Google's variable, never OPENAI_BASE_URL
    assert resolve_adk_settings("gemini-2.5-flash", {"base_url": "http://127.0.0.1:2"}, {}).base_url == \
        "http://127.0.0.1:2"  # runtime_config.base_url when the variable is unset
    s = resolve_adk_settings("gemini-2.5-flash", {}, {"GOOGLE_GENAI_USE_VERTEXAI": "true",
                                                      "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_LOCATION": "us-central1"})
    assert (s.vertexai, s.project, s.location, s.api_key) == (True, "p", "us-central1", None)
    assert not resolve_adk_settings("gemini-2.5-flash", {}, {"GOOGLE_GENAI_USE_VERTEXAI": "1",
                                                             "GOOGLE_GENAI_USE_ENTERPRISE": "false"}).vertexai
    assert resolve_adk_settings("gemini-2.5-flash", {}, {"GOOGLE_GENAI_USE_ENTERPRISE": "True"}).vertexai
    with pytest.raises(ValueError, match="max_output_tokens must be >= 1"):
        resolve_adk_settings("gemini-2.5-flash", {"max_output_tokens": 0}, {})


def test_preflight_passes_with_a_key_or_vertex_ai(tmp_path):
    for env in ({"GOOGLE_API_KEY": "k"}, {"GEMINI_API_KEY": "k"},
                {"GOOGLE_GENAI_USE_VERTEXAI": "1", "GOOGLE_CLOUD_PROJECT": "p", "GOOGLE_CLOUD_LOCATION": "europe-west4"}):
        report = _preflight(tmp_path, ADK_CONFIG, env)
        assert report.ok and report.warnings == [], env


def test_preflight_names_a_missing_key_and_smoke_mode_demotes_it(tmp_path):
    report = _preflight(tmp_path, ADK_CONFIG, {})
    [failure] = report.failures
    assert failure.title == "Missing API key"
    assert failure.detail.startswith("GOOGLE_API_KEY (or GEMINI_API_KEY) is not set (runtime 'google-adk'")
    assert "GOOGLE_GENAI_USE_VERTEXAI=1" in failure.fix
    report = _preflight(tmp_path, ADK_CONFIG, {}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_names_a_missing_vertex_project(tmp_path):
    report = _preflight(tmp_path, ADK_CONFIG, {"GOOGLE_GENAI_USE_VERTEXAI": "1", "GOOGLE_CLOUD_LOCATION": "us-east1"})
    [failure] = report.failures
    assert failure.title == "Missing Vertex AI project" and "GOOGLE_CLOUD_PROJECT not set" in failure.detail


def test_preflight_rejects_a_model_that_is_not_gemini_even_in_smoke_mode(tmp_path):
    for smoke in (False, True):
        report = _preflight(tmp_path, "runtime: google-adk\nmodel: openai:gpt-4o\n", {"GOOGLE_API_KEY": "k"},
                            smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Unsupported model" and "'openai:gpt-4o' is not one" in failure.detail


def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "google.adk", None)  # as if the extra were not installed
    for smoke in (False, True):  # a missing package is never demoted
        report = _preflight(tmp_path, ADK_CONFIG, {"GOOGLE_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency" and "google.adk" in failure.detail
        assert failure.fix == "pip install 'molecule-runtime[google-adk]'"
    with pytest.raises(RuntimeError, match=r"molecule-runtime\[google-adk\]"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gemini-2.5-flash", config_path=str(tmp_path))))


def test_setup_fails_naming_the_key_unless_smoke_mode(tmp_path, monkeypatch):
    for name in GOOGLE_VARS:
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match=r"GOOGLE_API_KEY \(or GEMINI_API_KEY\) is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="gemini-2.5-flash", config_path=str(tmp_path))))
    adapter = Adapter()
    cfg = AdapterConfig(model="gemini-2.5-flash", config_path=str(tmp_path), smoke_mode=True)
    asyncio.run(adapter.setup(cfg))
    assert isinstance(asyncio.run(adapter.create_executor(cfg)), GoogleADKExecutor)
    assert adapter.settings.api_key == "smoke-key-never-sent"


def test_setup_merges_skill_tools_and_hot_reload_rebuilds_the_agent(tmp_path, monkeypatch):
    monkeypatch.setenv("GOOGLE_API_KEY", "k")
    (tmp_path / "system-prompt.md").write_text("You are Ops. Reply as {\"ok\": true}.")
    write_skill(tmp_path, "calc", "name: Calc\nruntime: [google-adk]\n", "def double(x: int) -> int:\n    return 2 * x\n")
    write_skill(tmp_path, "echo-only", "name: E\nruntime: echo\n", "def nope():\n    return 0\n")

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        return {}

    adapter = Adapter()
    cfg = AdapterConfig(model="gemini-2.5-flash", config_path=str(tmp_path), tools=["calc", "echo-only"],
                        builtin_tools={"commit_memory": commit_memory})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert sorted(executor.tools) == ["commit_memory", "double"]
    assert adapter.system_prompt.startswith("You are Ops.") and "### Calc" in adapter.system_prompt
    runner = executor.runner()
    assert sorted(t.name for t in runner.agent.tools) == ["commit_memory", "double"]
    assert runner.app_name == "molecule-adk-agent" and runner.agent.name == "molecule_adk_agent"
    (tmp_path / "skills" / "calc" / "scripts" / "calc.py").write_text("def triple(x: int) -> int:\n    return 3 * x\n")
    adapter.replace_skills({"calc": load_skill(tmp_path, "calc", "google-adk")})
    assert sorted(executor.tools) == ["commit_memory", "triple"]
    rebuilt = executor.runner()
    assert rebuilt is not runner and sorted(t.name for t in rebuilt.agent.tools) == ["commit_memory", "triple"]
    assert rebuilt.session_service is runner.session_service  # conversations survive a hot reload


def test_cli_exits_non_zero_naming_the_missing_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", ADK_CONFIG)
    proc = run_cli(_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir), PLATFORM_URL="http://127.0.0.1:9"))
    assert proc.returncode == 1
    assert "[FAIL] Missing API key: GOOGLE_API_KEY (or GEMINI_API_KEY) is not set" in proc.stderr


def test_smoke_mode_passes_without_a_key(tmp_path):
    config_dir = write_config(tmp_path / "configs", ADK_CONFIG + "runtime_config: {max_retries: 0}\n")
    proc = run_cli(_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                        GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:9"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr


def test_smoke_mode_fails_on_a_broken_lazy_import(tmp_path):
    """google.adk is installed but a module the executor imports lazily is broken: smoke mode says so."""
    config_dir = write_config(tmp_path / "configs", ADK_CONFIG)
    proc = run_cli(_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir), GOOGLE_API_KEY="k",
                        GOOGLE_GEMINI_BASE_URL="http://127.0.0.1:9"),
                   prelude="import sys; sys.modules['google.adk.runners'] = None")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[smoke-mode] FAIL: execute() raised ModuleNotFoundError" in proc.stdout


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", ADK_CONFIG)
    proc = run_cli(_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['google.adk'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'google-adk' needs the Python package(s) google.adk" in proc.stderr
    assert "pip install 'molecule-runtime[google-adk]'" in proc.stderr


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_gemini, fake_platform):
    """The whole process: config → preflight → adapter → A2A server → register; message/send → Gemini → tool."""
    from ...conftest import free_port
    from ..conftest import runtime_process

    ws = "44444444-4444-4444-8444-444444444444"
    configs = write_config(tmp_path / "configs", "name: ADK Worker\nruntime: google-adk\n"
                                                 "model: google_genai:gemini-2.5-flash\n")
    (configs / "system-prompt.md").write_text("You are the ADK worker.")
    fake_gemini.script = [
        {"function_calls": [{"id": "fc-p1", "name": "commit_memory", "args": {"content": "process fact"}}]},
        answer_with_function_response("Stored: {result}"),
    ]
    env = _env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(free_port()), HOST="127.0.0.1", GOOGLE_GEMINI_BASE_URL=fake_gemini.base_url,
               GEMINI_API_KEY="gemini-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
               HEARTBEAT_INTERVAL="30")
    with runtime_process(env, fake_platform, ws) as url:  # the first task imports google-adk: a slow start
        result = rpc(url, "message/send", {"message": msg03("remember the process fact")}, timeout=90)["result"]
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "process fact", "scope": "LOCAL"}
    memory_id = fake_platform.memories[0]["id"]
    assert result["parts"][0]["text"] == f'Stored: {{"success": true, "id": "{memory_id}", "scope": "LOCAL"}}'
    assert [c.model for c in fake_gemini.requests] == ["gemini-2.5-flash", "gemini-2.5-flash"]
    assert fake_gemini.requests[0].system_text.startswith("You are the ADK worker.")
    assert fake_gemini.requests[0].headers["x-goog-api-key"] == "gemini-process-key"
