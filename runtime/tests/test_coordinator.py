"""Coordinator mode and parent context (spec/runtime.md §8.1) against the fake platform."""

from __future__ import annotations

import asyncio

import pytest

from molecule_runtime.adapters.base import AdapterConfig
from molecule_runtime.adapters.echo import Adapter as EchoAdapter
from molecule_runtime.adapters.openai import Adapter as OpenAIAdapter
from molecule_runtime.coordinator import NO_TEAM_ERROR, find_children, make_route_tool
from molecule_runtime.platform import PlatformClient
from molecule_runtime.server import CardHolder, build_app
from molecule_runtime.tools import build_tools

from a2a_helpers import send03
from conftest import ThreadServer, free_port

CHILD = "22222222-2222-4222-8222-222222222222"
SIBLING = "33333333-3333-4333-8333-333333333333"


@pytest.fixture(autouse=True)
def _no_shared_plugins(tmp_path, monkeypatch):
    monkeypatch.setenv("PLUGINS_DIR", str(tmp_path / "no-plugins"))
    monkeypatch.delenv("PARENT_ID", raising=False)
    monkeypatch.setenv("DELEGATION_RETRY_DELAY", "0")


@pytest.fixture
def team(fake_platform, workspace_id):
    fake_platform.add_peer(workspace_id, CHILD, name="Researcher")
    fake_platform.add_peer(workspace_id, SIBLING, name="Sibling")
    child = fake_platform.peers[workspace_id][0]
    child.update(parent_id=workspace_id, agent_card={"skills": [{"id": "search", "name": "Web search"}]})
    return fake_platform


def _setup(adapter, make_client, config_dir, workspace_id, *, client=None, call=None):
    """Run adapter.setup (and optionally an async follow-up) in one event loop."""
    async def scenario():
        c = client if client is not None else make_client()
        cfg = AdapterConfig(model="openai:gpt-4o", config_path=str(config_dir), workspace_id=workspace_id,
                            builtin_tools=dict(build_tools(c)), platform=c)
        await adapter.setup(cfg)
        executor = await adapter.create_executor(cfg)
        result = await call(adapter) if call else None
        await c.aclose()
        return cfg, executor, result
    return asyncio.run(scenario())


def test_children_detected(team, make_client, workspace_id):
    async def scenario():
        c = make_client()
        try:
            return await find_children(c, workspace_id)
        finally:
            await c.aclose()
    children = asyncio.run(scenario())
    assert [c["id"] for c in children] == [CHILD]
    req = team.requests_to(f"/registry/{workspace_id}/peers")[0]
    assert req.headers["x-workspace-id"] == workspace_id


def test_coordinator_prompt_and_tool(team, make_client, config_dir, workspace_id, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    (config_dir / "system-prompt.md").write_text("You lead a team.")
    adapter = OpenAIAdapter()
    _setup(adapter, make_client, config_dir, workspace_id)
    prompt = adapter.system_prompt
    assert "## Platform Guidelines\n## Your Team (sub-workspaces you coordinate)" in prompt
    assert f"- **Researcher** (id: `{CHILD}`, status: online)\n  Skills: Web search" in prompt
    assert "Sibling" not in prompt
    assert "### Coordination Rules — MANDATORY" in prompt
    assert "7. Reply in the language the caller used." in prompt
    assert prompt.index("You lead a team.") < prompt.index("## Your Team") < prompt.index("## Your Tools")
    assert "route_task_to_team" in adapter.all_tools


def test_not_a_coordinator_without_children(fake_platform, make_client, config_dir, workspace_id, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    fake_platform.add_peer(workspace_id, SIBLING, name="Sibling")
    adapter = OpenAIAdapter()
    _setup(adapter, make_client, config_dir, workspace_id)
    assert "## Your Team" not in adapter.system_prompt
    assert "route_task_to_team" not in adapter.all_tools


def test_platform_down_is_not_a_coordinator(make_client, config_dir, workspace_id, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PARENT_ID", "parent-1")
    adapter = OpenAIAdapter()
    down = PlatformClient(platform_url=f"http://127.0.0.1:{free_port()}", workspace_id=workspace_id,
                          config_dir=config_dir, timeout=2.0)
    _setup(adapter, make_client, config_dir, workspace_id, client=down)
    assert "## Your Team" not in adapter.system_prompt
    assert "## Parent Context" not in adapter.system_prompt
    assert "route_task_to_team" not in adapter.all_tools


def test_route_shapes():
    async def scenario():
        empty = await make_route_tool([], {})(task="do it")
        members = await make_route_tool([{"id": "c1", "name": "One", "status": "online", "agent_card": None}],
                                        {})(task="do it")
        return empty, members
    empty, members = asyncio.run(scenario())
    assert empty == {"success": False, "error": NO_TEAM_ERROR, "task": "do it", "members": []}
    assert members["success"] is True and members["action"] == "choose_member"
    assert members["task"] == "do it" and isinstance(members["message"], str)
    assert members["members"] == [{"id": "c1", "name": "One", "status": "online", "skills": []}]


def test_route_to_preferred_member_delegates(team, make_client, config_dir, workspace_id):
    adapter = EchoAdapter()
    _, executor, result = _setup(
        adapter, make_client, config_dir, workspace_id,
        call=lambda a: a.all_tools["route_task_to_team"](task="find papers", preferred_member_id=CHILD))
    assert result["success"] is True and result["workspace_id"] == CHILD
    assert "find papers" in result["response"]
    assert team.peer_hits[CHILD] == 1
    assert "route_task_to_team" in executor.tools


def test_echo_tool_command_lists_team(team, make_client, config_dir, workspace_id):
    adapter = EchoAdapter()
    _, executor, _ = _setup(adapter, make_client, config_dir, workspace_id)
    from molecule_runtime.card import build_agent_card
    from molecule_runtime.config import load_config
    (config_dir / "config.yaml").write_text("name: Lead\nruntime: echo\n")
    port = free_port()
    cards = CardHolder(build_agent_card(load_config(config_dir, env={}), f"http://127.0.0.1:{port}", []))
    with ThreadServer(build_app(executor, cards, adapter=adapter), port) as srv:
        text = send03(srv.url, '/tool route_task_to_team {"task": "t"}')["parts"][0]["text"]
    assert '"action": "choose_member"' in text and CHILD in text


def test_parent_context_in_prompt(fake_platform, make_client, config_dir, workspace_id, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("PARENT_ID", "parent-1")
    fake_platform.shared_context["parent-1"] = [{"path": "team/goals.md", "content": "Ship v2.\n"}]
    (config_dir / "plugins" / "p" / "rules").mkdir(parents=True)
    (config_dir / "plugins" / "p" / "rules" / "r.md").write_text("Be safe.")
    adapter = OpenAIAdapter()
    _setup(adapter, make_client, config_dir, workspace_id)
    prompt = adapter.system_prompt
    assert "## Parent Context\n" in prompt and "### team/goals.md\nShip v2." in prompt
    assert prompt.index("## Parent Context") < prompt.index("## Platform Rules\nBe safe.")
    req = fake_platform.requests_to("/workspaces/parent-1/shared-context")[0]
    assert req.headers["x-workspace-id"] == workspace_id
