"""ClaudeCodeAdapter: identity, settings (model, cwd, retry knobs), preflight (dependency, credentials,
model), setup, smoke mode through the real CLI, and the whole `molecule-runtime` process."""

import asyncio
import sys

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.claude_code import Adapter, ClaudeCodeExecutor
from molecule_runtime.adapters.claude_code.adapter import (latest_transcript, project_dir_name,
                                                           resolve_claude_settings, split_model)
from molecule_runtime.adapters.claude_code.executor import inter_agent_block, mcp_server, with_history
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight

from ...conftest import write_config
from ..conftest import process_env, run_cli
from .conftest import CLAUDE_CONFIG, CLAUDE_KEY, CLAUDE_VARS


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def _env(tmp_path, **extra):
    """The test process's environment without Claude's variables, a HOME of its own, plus ``extra``."""
    env = process_env(**extra)
    for name in CLAUDE_VARS:
        if name not in extra:
            env.pop(name, None)
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.setdefault("HOME", str(home))
    env.setdefault("WORKSPACE_DIR", str(tmp_path / "no-workspace"))
    return env


def test_identity_registry_and_config_schema():
    assert get_adapter("claude-code", env={}) is Adapter
    assert get_adapter("claude_code", env={}) is Adapter
    adapter = Adapter()
    assert (adapter.name(), adapter.display_name()) == ("claude-code", "Claude Code")
    assert "claude-agent-sdk" in adapter.description()
    assert adapter.executor_class() is ClaudeCodeExecutor
    schema = adapter.get_config_schema()
    assert schema["model"]["default"] == "sonnet"
    assert schema["rate_limit_retries"] == {"type": "integer", "default": 3}
    assert schema["retry_base_delay"]["default"] == 5.0


def test_settings_model_cwd_auth_and_retries(tmp_path):
    assert split_model("anthropic:claude-sonnet-4-5") == "claude-sonnet-4-5"
    assert split_model("") == split_model("anthropic:") == "sonnet"
    assert split_model("anthropic:opus", {"model": "haiku"}) == "haiku"  # runtime_config.model wins
    assert split_model("claude-opus-4-1") == "claude-opus-4-1"
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    workspace = tmp_path / "ws"
    workspace.mkdir()
    s = resolve_claude_settings("anthropic:sonnet", {}, {"WORKSPACE_DIR": str(workspace), "ANTHROPIC_API_KEY": "k"},
                                config_path=config_dir)
    assert s.cwd == str(config_dir.resolve())  # an empty workspace: the config dir
    assert (s.auth_env, s.rate_limit_retries, s.retry_base_delay, s.cli_max_retries, s.stream) == (
        "ANTHROPIC_API_KEY", 3, 5.0, 0, True)
    (workspace / "README.md").write_text("hi")
    s = resolve_claude_settings("sonnet", {"retry_base_delay": "0.5", "rate_limit_retries": 1, "max_turns": 4},
                                {"WORKSPACE_DIR": str(workspace), "CLAUDE_CODE_OAUTH_TOKEN": "t",
                                 "ANTHROPIC_API_KEY": "k", "ANTHROPIC_BASE_URL": "http://127.0.0.1:1"},
                                config_path=config_dir)
    assert (s.cwd, s.auth_env, s.retry_base_delay, s.rate_limit_retries, s.max_turns, s.base_url) == (
        str(workspace), "CLAUDE_CODE_OAUTH_TOKEN", 0.5, 1, 4, "http://127.0.0.1:1")
    with pytest.raises(ValueError, match="retry_base_delay must be a number"):
        resolve_claude_settings("sonnet", {"retry_base_delay": "soon"}, {})
    with pytest.raises(ValueError, match="stream must be true or false"):
        resolve_claude_settings("sonnet", {"stream": "yes"}, {})


def test_preflight_passes_with_either_credential(tmp_path):
    for env in ({"ANTHROPIC_API_KEY": "k"}, {"CLAUDE_CODE_OAUTH_TOKEN": "t"}):
        report = _preflight(tmp_path, CLAUDE_CONFIG, env)
        assert report.ok and report.warnings == [], env


def test_preflight_names_both_credentials_and_smoke_mode_demotes_it(tmp_path):
    report = _preflight(tmp_path, CLAUDE_CONFIG, {})
    [failure] = report.failures
    assert failure.title == "Missing API key"
    assert failure.detail.startswith("CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY is not set (runtime 'claude-code'")
    assert "claude setup-token" in failure.fix
    report = _preflight(tmp_path, CLAUDE_CONFIG, {}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_rejects_another_providers_model_and_bad_values(tmp_path):
    for smoke in (False, True):
        report = _preflight(tmp_path, "runtime: claude-code\nmodel: openai:gpt-4.1-mini\n",
                            {"ANTHROPIC_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Unsupported model" and "'openai:gpt-4.1-mini' is a openai model" in failure.detail
    report = _preflight(tmp_path, "runtime: claude-code\nruntime_config: {rate_limit_retries: -1}\n",
                        {"ANTHROPIC_API_KEY": "k"})
    [failure] = report.failures
    assert failure.title == "Invalid runtime_config" and "rate_limit_retries must be >= 0" in failure.detail


def test_preflight_names_a_missing_dependency(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "claude_agent_sdk", None)  # as if the extra were not installed
    for smoke in (False, True):  # a missing package is never demoted
        report = _preflight(tmp_path, CLAUDE_CONFIG, {"ANTHROPIC_API_KEY": "k"}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing dependency" and "claude_agent_sdk" in failure.detail
        assert failure.fix == "pip install 'molecule-runtime[claude-code]'"


def test_setup_builds_prompt_tools_and_refuses_missing_credentials(tmp_path, monkeypatch):
    for name in CLAUDE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WORKSPACE_DIR", str(tmp_path / "none"))
    config_dir = write_config(tmp_path / "configs", CLAUDE_CONFIG)
    (config_dir / "system-prompt.md").write_text("You are Claude the tester.")

    async def commit_memory(content: str, scope: str = "LOCAL") -> dict:
        """Save a memory."""
        return {"id": "m"}

    cfg = AdapterConfig(model="anthropic:sonnet", config_path=str(config_dir), builtin_tools={"commit_memory": commit_memory})
    with pytest.raises(RuntimeError, match="CLAUDE_CODE_OAUTH_TOKEN or ANTHROPIC_API_KEY is not set"):
        asyncio.run(Adapter().setup(cfg))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    adapter = Adapter()
    asyncio.run(adapter.setup(cfg))
    assert "You are Claude the tester." in adapter.system_prompt and list(adapter.all_tools) == ["commit_memory"]
    assert adapter.settings.model == "sonnet" and adapter.settings.cwd == str(config_dir.resolve())
    block = inter_agent_block(adapter.all_tools)
    assert block.startswith("## Inter-Agent Communication") and "- mcp__a2a__commit_memory: Save a memory." in block
    server = mcp_server(adapter.all_tools)
    assert server["type"] == "sdk" and server["name"] == "a2a"
    # smoke mode: a stand-in key, never a real one
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    adapter = Adapter()
    asyncio.run(adapter.setup(AdapterConfig(model="sonnet", config_path=str(config_dir), smoke_mode=True)))
    assert dict(adapter.settings.extra_env) == {"ANTHROPIC_API_KEY": "sk-ant-smoke-never-sent"}


def test_history_prompt_and_transcript_paths(tmp_path):
    assert with_history("now?", []) == "now?"
    assert with_history("now?", [("user", "a"), ("assistant", "b")]) == \
        "Conversation so far:\nUser: a\nAssistant: b\n\nNow the user says:\nnow?"
    assert project_dir_name("/work/my_ws.1") == "-work-my-ws-1"
    home = tmp_path / "home"
    folder = home / ".claude" / "projects" / "-w-x"
    folder.mkdir(parents=True)
    assert latest_transcript("/w/x", {"HOME": str(home)}) is None
    (folder / "a.jsonl").write_text("{}\n")
    assert latest_transcript("/w/x", {"HOME": str(home)}) == folder / "a.jsonl"
    assert latest_transcript("/w/x", {"CLAUDE_CONFIG_DIR": str(tmp_path / "other")}) is None


def test_transcript_limit_is_capped_at_1000(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    adapter = Adapter()
    adapter.settings = resolve_claude_settings("sonnet", {}, {"WORKSPACE_DIR": "/nonexistent"}, config_path="/w/x")
    folder = tmp_path / ".claude" / "projects" / "-w-x"
    folder.mkdir(parents=True)
    (folder / "s.jsonl").write_text("".join(f'{{"n": {i}}}\n' for i in range(1500)) + "not json\n")
    out = asyncio.run(adapter.transcript_lines(0, 5000))
    assert len(out["lines"]) == 1000 and out["cursor"] == 1000 and out["more"] is True
    assert out["lines"][0] == {"n": 0} and out["source"] == str(folder / "s.jsonl")
    tail = asyncio.run(adapter.transcript_lines(1499, 10))
    assert tail["lines"] == [{"n": 1499}, {"raw": "not json"}] and tail["more"] is False


def test_smoke_mode_passes_through_the_cli_without_a_key(tmp_path, fake_anthropic):
    fake_anthropic.script = [{"content": "smoke answer"}]
    config_dir = write_config(tmp_path / "configs", CLAUDE_CONFIG)
    proc = run_cli(_env(tmp_path, MOLECULE_SMOKE_MODE="1", MOLECULE_SMOKE_TIMEOUT_SECS="90",
                        WORKSPACE_CONFIG_PATH=str(config_dir), ANTHROPIC_BASE_URL=fake_anthropic.base_url),
                   timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr
    [call] = fake_anthropic.conversation()  # execute() really ran a CLI turn, with the stand-in key
    assert "smoke test" in str(call.messages[0]) and call.headers["x-api-key"] == "sk-ant-smoke-never-sent"


def test_smoke_mode_fails_on_a_broken_lazy_import(tmp_path):
    config_dir = write_config(tmp_path / "configs", CLAUDE_CONFIG)
    proc = run_cli(_env(tmp_path, MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir), ANTHROPIC_API_KEY="k",
                        ANTHROPIC_BASE_URL="http://127.0.0.1:9"),
                   prelude="import sys; sys.modules['claude_agent_sdk.client'] = None")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "[smoke-mode] FAIL: execute() raised" in proc.stdout


def test_smoke_mode_fails_naming_a_missing_dependency(tmp_path):
    config_dir = write_config(tmp_path / "configs", CLAUDE_CONFIG)
    proc = run_cli(_env(tmp_path, MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)),
                   prelude="import sys; sys.modules['claude_agent_sdk'] = None")
    assert proc.returncode == 1
    assert "[FAIL] Missing dependency: runtime 'claude-code' needs the Python package(s) claude_agent_sdk" in proc.stderr


def test_running_runtime_answers_message_send_and_calls_a_platform_tool(tmp_path, fake_anthropic, fake_platform):
    """The whole process: config → preflight → adapter → A2A server → register; message/send → CLI → tool."""
    from ...conftest import free_port
    from ...fake_anthropic import answer_with_tool_result
    from ..conftest import runtime_process

    ws = "55555555-5555-4555-8555-555555555555"
    configs = write_config(tmp_path / "configs", CLAUDE_CONFIG)
    (configs / "system-prompt.md").write_text("You are a Claude worker.")
    fake_anthropic.script = [
        {"tool_calls": [{"name": "mcp__a2a__commit_memory", "arguments": {"content": "deadline is Monday"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    port = free_port()
    env = _env(tmp_path, WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
               PORT=str(port), HOST="127.0.0.1", HEARTBEAT_INTERVAL="60", ANTHROPIC_API_KEY=CLAUDE_KEY,
               ANTHROPIC_BASE_URL=fake_anthropic.base_url)
    with runtime_process(env, fake_platform, ws) as url:
        import httpx

        out = httpx.post(url + "/", json={"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {
            "message": {"role": "user", "messageId": "m1", "parts": [{"kind": "text", "text": "note the deadline"}]}}},
            timeout=90).json()
        text = out["result"]["parts"][0]["text"]
    assert text.startswith("Stored: ") and fake_platform.memories[0]["id"] in text
    assert fake_platform.memories[0]["content"] == "deadline is Monday"
    assert "You are a Claude worker." in fake_anthropic.conversation()[0].system_text
