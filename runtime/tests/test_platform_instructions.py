"""Platform instructions (spec/runtime.md §3.1 step 6, §3.4 step 1): fetched from
``GET /workspaces/:id/instructions/resolve`` at every boot and put first in the system prompt;
a platform that cannot answer never keeps the agent from starting."""

from __future__ import annotations

import asyncio

import pytest

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.adapters.openai import Adapter as OpenAIAdapter
from molecule_runtime.adapters.shared_runtime import WorkspaceExtras, build_system_prompt, with_platform_instructions
from molecule_runtime.tools import build_tools

RULES = "## Coding rules\n\nAlways write a test first."
TOKEN = "instructions-test-token"


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch, config_dir, fake_platform, workspace_id):
    monkeypatch.setenv("PLUGINS_DIR", str(tmp_path / "no-plugins"))
    monkeypatch.delenv("PARENT_ID", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    (config_dir / "system-prompt.md").write_text("You are the Dev Lead.")
    (config_dir / ".auth_token").write_text(TOKEN)
    fake_platform.tokens[workspace_id] = {TOKEN}


def _setup(adapter, make_client, config_dir, workspace_id, **config):
    async def scenario():
        client = make_client()
        cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(config_dir), workspace_id=workspace_id,
                            builtin_tools=dict(build_tools(client)), platform=client, **config)
        try:
            await adapter.setup(cfg)
        finally:
            await client.aclose()
    asyncio.run(scenario())
    return adapter.system_prompt


def test_the_rules_come_first_in_the_prompt(fake_platform, make_client, config_dir, workspace_id):
    fake_platform.instructions[workspace_id] = RULES
    prompt = _setup(OpenAIAdapter(), make_client, config_dir, workspace_id)
    assert prompt.startswith(f"# Platform Instructions\n{RULES}\n\nYou are the Dev Lead.")
    [request] = fake_platform.requests_to(f"/workspaces/{workspace_id}/instructions/resolve", "GET")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"


def test_the_rules_come_before_an_explicit_system_prompt_too(fake_platform, make_client, config_dir, workspace_id):
    fake_platform.instructions[workspace_id] = RULES
    prompt = _setup(OpenAIAdapter(), make_client, config_dir, workspace_id, system_prompt="Given prompt.")
    assert prompt == f"# Platform Instructions\n{RULES}\n\nGiven prompt."


def test_the_echo_runtime_puts_them_first_as_well(fake_platform, make_client, config_dir, workspace_id):
    fake_platform.instructions[workspace_id] = RULES
    assert _setup(EchoAdapter(), make_client, config_dir, workspace_id).startswith("# Platform Instructions\n")


def test_no_rules_no_heading(fake_platform, make_client, config_dir, workspace_id):
    prompt = _setup(OpenAIAdapter(), make_client, config_dir, workspace_id)
    assert prompt.startswith("You are the Dev Lead.")
    assert "Platform Instructions" not in prompt


@pytest.mark.parametrize("status", [404, 500, 401])
def test_a_failing_platform_gives_the_prompt_without_them(fake_platform, make_client, config_dir, workspace_id,
                                                          status, caplog):
    fake_platform.instructions[workspace_id] = RULES
    fake_platform.instructions_status = status
    prompt = _setup(OpenAIAdapter(), make_client, config_dir, workspace_id)
    assert prompt.startswith("You are the Dev Lead.")
    assert "platform instructions unavailable" in caplog.text


def test_an_unreachable_platform_gives_the_prompt_without_them(make_client, config_dir, workspace_id, caplog):
    from conftest import free_port

    prompt = _setup(OpenAIAdapter(), lambda: make_client(platform_url=f"http://127.0.0.1:{free_port()}"),
                    config_dir, workspace_id)
    assert prompt.startswith("You are the Dev Lead.")
    assert "platform instructions unavailable" in caplog.text


def test_build_system_prompt_puts_them_before_every_other_part(tmp_path):
    (tmp_path / "system-prompt.md").write_text("You are PM.")
    extras = WorkspaceExtras(platform_instructions="  Be brief.\n", parent_context=[{"path": "a.md", "content": "x"}])
    prompt = build_system_prompt(tmp_path, [], [], tool_names=["delegate_task"], extras=extras)
    assert prompt.startswith("# Platform Instructions\nBe brief.\n\nYou are PM.")
    assert prompt.index("You are PM.") < prompt.index("## Parent Context") < prompt.index("## Handling delegation")
    assert with_platform_instructions("", extras) == "# Platform Instructions\nBe brief."
    assert with_platform_instructions("P", WorkspaceExtras(platform_instructions="  ")) == "P"


def test_a_running_runtime_sends_the_rules_first_to_the_model(tmp_path, fake_openai, fake_platform):
    """The whole process: boot fetches the rules, the model's system message starts with them."""
    from pathlib import Path

    import molecule_runtime
    from a2a_helpers import send03
    from conftest import free_port, write_config

    from .adapters.conftest import process_env, runtime_process

    ws = "44444444-4444-4444-8444-444444444444"
    fake_platform.instructions[ws] = RULES
    configs = write_config(tmp_path / "process-configs", "name: Dev Lead\nruntime: openai\nmodel: openai:gpt-4o\n")
    (configs / "system-prompt.md").write_text("You are the Dev Lead.")
    (configs / ".auth_token").write_text(TOKEN)  # the provisioner injects the token before the start
    fake_platform.tokens[ws] = {TOKEN}
    fake_openai.script = [{"content": "ok"}]
    env = process_env(WORKSPACE_ID=ws, WORKSPACE_CONFIG_PATH=str(configs), PLATFORM_URL=fake_platform.base_url,
                      PORT=str(free_port()), HOST="127.0.0.1", OPENAI_BASE_URL=fake_openai.base_url,
                      OPENAI_API_KEY="sk-process-key", DELEGATION_RESULTS_FILE=str(tmp_path / "d.jsonl"),
                      HEARTBEAT_INTERVAL="30", PLUGINS_DIR=str(tmp_path / "no-plugins"),
                      PYTHONPATH=str(Path(molecule_runtime.__file__).parents[1]))  # this checkout's runtime
    with runtime_process(env, fake_platform, ws) as url:
        assert send03(url, "hello")["parts"][0]["text"] == "ok"
    system = fake_openai.requests[0].messages[0]
    assert system["role"] == "system"
    assert system["content"].startswith(f"# Platform Instructions\n{RULES}\n\nYou are the Dev Lead.")
    [request] = fake_platform.requests_to(f"/workspaces/{ws}/instructions/resolve", "GET")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
