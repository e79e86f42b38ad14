"""CLIAdapter: identity, config schema, preflight (missing CLI named with its npm install, missing
key, custom command), setup (presets, codex config.toml), smoke mode and the whole runtime process."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tomllib

import pytest

from molecule_runtime.adapters import get_adapter
from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.cli import Adapter, CLIExecutor
from molecule_runtime.adapters.cli.adapter import CODEX_NPM_PACKAGE, INTER_AGENT_BLOCK
from molecule_runtime.adapters.cli.executor import codex_config_toml
from molecule_runtime.config import load_config
from molecule_runtime.preflight import run_preflight
from molecule_runtime.skills import load_skill

from ...a2a_helpers import msg03, rpc
from ...conftest import free_port, write_config, write_skill
from ...fake_openai import answer_with_tool_result
from ..conftest import process_env, run_cli, runtime_process
from .conftest import NPM_BIN, codex_bin

EMPTY_PATH = "/nonexistent-bin"


def _preflight(tmp_path, body, env, smoke=False):
    config_dir = write_config(tmp_path / "configs", body)
    (config_dir / "system-prompt.md").write_text("x")
    return run_preflight(load_config(config_dir, env=env), config_dir, env=env, smoke_mode=smoke)


def test_identity_registry_and_schema():
    assert get_adapter("cli", env={}) is Adapter
    adapter = Adapter()
    assert adapter.name() == "cli" and "codex" in adapter.display_name()
    schema = adapter.get_config_schema()
    assert schema["preset"] == {"type": "string", "enum": ["codex", "custom"], "default": "codex"}
    assert schema["timeout"]["default"] == 300.0
    assert {"command", "args", "model", "cwd", "sandbox"} <= set(schema)
    assert not any(adapter.capabilities().to_dict().values())


def test_preflight_names_the_missing_codex_cli_with_its_npm_install(tmp_path):
    body = "runtime: cli\nmodel: openai:gpt-4.1-mini\n"
    for smoke in (False, True):  # a missing CLI is never demoted
        report = _preflight(tmp_path, body, {"OPENAI_API_KEY": "k", "PATH": EMPTY_PATH}, smoke=smoke)
        [failure] = report.failures
        assert failure.title == "Missing CLI" and "`codex` CLI" in failure.detail
        assert failure.fix == f"npm install -g {CODEX_NPM_PACKAGE}"
    assert CODEX_NPM_PACKAGE == "@openai/codex@0.171.0"


def test_preflight_passes_with_codex_and_a_key_and_names_a_missing_key(tmp_path):
    body = "runtime: cli\nmodel: openai:gpt-4.1-mini\n"
    report = _preflight(tmp_path, body, {"OPENAI_API_KEY": "k", "PATH": str(NPM_BIN)})
    assert report.ok and report.warnings == []
    report = _preflight(tmp_path, body, {"PATH": str(NPM_BIN)})
    [failure] = report.failures
    assert failure.title == "Missing API key" and "OPENAI_API_KEY is not set" in failure.detail
    report = _preflight(tmp_path, body, {"PATH": str(NPM_BIN)}, smoke=True)
    assert report.ok and [w.title for w in report.warnings] == ["Missing API key"]


def test_preflight_of_the_custom_preset(tmp_path):
    ok = f"runtime: cli\nruntime_config:\n  command: {sys.executable}\n  args: ['-c', 'print(1)']\n"
    assert _preflight(tmp_path, ok, {}).ok  # a custom command needs no key
    missing = "runtime: cli\nruntime_config:\n  command: no-such-agent-cli\n"
    [failure] = _preflight(tmp_path, missing, {"PATH": EMPTY_PATH}).failures
    assert failure.title == "Missing CLI" and "`no-such-agent-cli` is not on PATH" in failure.detail
    no_command = "runtime: cli\nruntime_config:\n  preset: custom\n"
    [failure] = _preflight(tmp_path, no_command, {}).failures
    assert failure.title == "Missing command" and "runtime_config.command" in failure.detail
    bad = "runtime: cli\nruntime_config:\n  preset: gemini\n"
    [failure] = _preflight(tmp_path, bad, {}).failures
    assert failure.title == "Invalid runtime_config" and "preset must be one of codex, custom" in failure.detail


def test_setup_fails_naming_the_cli_and_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", EMPTY_PATH)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(RuntimeError, match=r"npm install -g @openai/codex@0\.171\.0"):
        asyncio.run(Adapter().setup(AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path))))
    monkeypatch.setenv("PATH", str(NPM_BIN))
    with pytest.raises(RuntimeError, match="OPENAI_API_KEY is not set"):
        asyncio.run(Adapter().setup(AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path))))


def test_codex_setup_writes_a_private_config_for_the_provider_and_the_mcp_server(tmp_path, monkeypatch):
    codex_bin()
    monkeypatch.setenv("PATH", str(NPM_BIN))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-setup-key")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PLATFORM_URL", "http://platform.test:8080")
    (tmp_path / "system-prompt.md").write_text('You are "Ops".\nBe brief.')
    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path), workspace_id="ws-9",
                        runtime_config={"model": "gpt-5-codex", "sandbox": "workspace-write"})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert isinstance(executor, CLIExecutor)
    assert adapter.system_prompt.startswith('You are "Ops".') and adapter.system_prompt.endswith(INTER_AGENT_BLOCK)
    plan = adapter.plan
    assert (plan.preset, plan.command, plan.model, plan.timeout) == ("codex", str(NPM_BIN / "codex"), "gpt-5-codex", 300.0)
    argv, stdin, env = executor.command_line("hello")
    assert argv[1:] == ["exec", "--json", "--skip-git-repo-check", "--ephemeral", "-C", plan.cwd,
                        "-m", "gpt-5-codex", "-"]
    assert stdin == "hello" and env["MOLECULE_CODEX_API_KEY"] == "sk-setup-key"
    home = env["CODEX_HOME"]
    config = tomllib.loads(open(os.path.join(home, "config.toml")).read())
    assert config["model"] == "gpt-5-codex" and config["model_provider"] == "molecule"
    assert config["approval_policy"] == "never" and config["sandbox_mode"] == "workspace-write"
    assert config["developer_instructions"] == adapter.system_prompt  # quotes and newlines survive TOML
    provider = config["model_providers"]["molecule"]
    assert provider["base_url"] == "http://127.0.0.1:9/v1" and provider["wire_api"] == "responses"
    assert provider["env_key"] == "MOLECULE_CODEX_API_KEY"
    assert "sk-setup-key" not in open(os.path.join(home, "config.toml")).read()  # the key stays in env
    mcp = config["mcp_servers"]["molecule"]
    assert (mcp["command"], mcp["args"], mcp["required"]) == (sys.executable, ["-m", "molecule_runtime.mcp_server"], True)
    assert mcp["env"]["WORKSPACE_ID"] == "ws-9" and mcp["env"]["PLATFORM_URL"] == "http://platform.test:8080"
    assert mcp["env"]["CONFIGS_DIR"] == str(tmp_path.resolve())


def test_a_skill_promoted_while_running_reaches_the_cli_prompt_before_the_inter_agent_block(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-x")
    (tmp_path / "system-prompt.md").write_text("You are Ops.")
    adapter = Adapter()
    cfg = AdapterConfig(model="openai:gpt-4.1-mini", config_path=str(tmp_path),
                        runtime_config={"command": sys.executable, "args": ["-c", "print(42)"]})
    asyncio.run(adapter.setup(cfg))
    executor = asyncio.run(adapter.create_executor(cfg))
    assert "### Triage" not in executor.system_prompt
    write_skill(tmp_path, "triage", "name: Triage\ndescription: Triage flaky CI\n", None)
    adapter.replace_skills({"triage": load_skill(tmp_path, "triage", "cli")})
    prompt = executor.system_prompt
    assert prompt.startswith("You are Ops.") and "### Triage\nTriage flaky CI\nDo triage things." in prompt
    assert prompt.endswith(INTER_AGENT_BLOCK) and prompt.count(INTER_AGENT_BLOCK) == 1
    _argv, _stdin, env = executor.command_line("hello")
    assert env["MOLECULE_SYSTEM_PROMPT"] == prompt  # what the CLI is given on the next task


def test_toml_strings_escape_control_characters():
    from molecule_runtime.adapters.cli.executor import CLIPlan

    plan = CLIPlan(preset="codex", command="codex", model='m"\\', mcp_command=[])
    parsed = tomllib.loads(codex_config_toml(plan, "tab\there\x01 bell \U0001F600 \\n"))
    assert parsed["model"] == 'm"\\' and parsed["developer_instructions"] == "tab\there\x01 bell \U0001F600 \\n"


def test_cli_exits_non_zero_naming_the_missing_codex(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: cli\nmodel: openai:gpt-4.1-mini\n")
    proc = run_cli(process_env(WORKSPACE_ID="ws-1", WORKSPACE_CONFIG_PATH=str(config_dir), OPENAI_API_KEY="k",
                               PLATFORM_URL="http://127.0.0.1:9", PATH=EMPTY_PATH))
    assert proc.returncode == 1
    assert "[FAIL] Missing CLI: runtime 'cli' (preset codex) needs the `codex` CLI" in proc.stderr
    assert f"npm install -g {CODEX_NPM_PACKAGE}" in proc.stderr


def test_smoke_mode_passes_with_codex_and_no_key(tmp_path):
    codex_bin()
    config_dir = write_config(tmp_path / "configs", "runtime: cli\nmodel: openai:gpt-4.1-mini\n"
                                                    "runtime_config: {max_retries: 0, timeout: 20}\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir),
                               OPENAI_BASE_URL="http://127.0.0.1:9/v1",
                               PATH=f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}"), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS" in proc.stdout
    assert "[WARN] Missing API key" in proc.stderr


def test_smoke_mode_passes_with_a_custom_command(tmp_path):
    config_dir = write_config(tmp_path / "configs", "runtime: cli\nruntime_config:\n"
                                                    f"  command: {sys.executable}\n  args: ['-c', 'print(42)']\n")
    proc = run_cli(process_env(MOLECULE_SMOKE_MODE="1", WORKSPACE_CONFIG_PATH=str(config_dir)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[smoke-mode] PASS: execute() returned" in proc.stdout


def test_running_runtime_answers_with_codex_and_calls_a_platform_tool(tmp_path, fake_openai, fake_platform):
    """The whole process: config → preflight → cli adapter → A2A → codex → our MCP server → platform."""
    codex_bin()
    ws = "55555555-5555-4555-8555-555555555555"
    configs = write_config(tmp_path / "configs", "name: Codex Worker\nruntime: cli\nmodel: openai:gpt-4.1-mini\n"
                                                 "runtime_config: {max_retries: 0}\n")
    (configs / "system-prompt.md").write_text("You are the codex worker.")
    fake_openai.script = [
        {"tool_calls": [{"id": "call_p1", "namespace": "mcp__molecule", "name": "commit_memory",
                         "arguments": {"content": "process fact"}}]},
        answer_with_tool_result("Stored: {result}"),
    ]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", HEARTBEAT_INTERVAL="30",
                      PATH=f"{NPM_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    with runtime_process(env, fake_platform, ws) as url:
        out = rpc(url, "message/send", {"message": msg03("remember the process fact")}, timeout=90)
    token = (configs / ".auth_token").read_text()
    [req] = fake_platform.requests_to(f"/workspaces/{ws}/memories", "POST")
    assert req.json == {"content": "process fact", "scope": "LOCAL"}
    assert req.headers["authorization"] == f"Bearer {token}"
    memory_id = fake_platform.memories[0]["id"]
    text = out["result"]["parts"][0]["text"]
    assert text.startswith("Stored: ") and memory_id in text
    assert [c.body["model"] for c in fake_openai.requests] == ["gpt-4.1-mini", "gpt-4.1-mini"]
    assert fake_openai.requests[0].headers["authorization"] == "Bearer sk-process-key"
    assert json.loads(out["result"]["metadata"]["tool_trace"][0]["input"]) == {"content": "process fact"}
