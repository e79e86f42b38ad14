"""A team of real runtimes on the real platform: the issue's end-to-end scenario.

The platform runs as ``make run`` runs it (web + Celery worker + beat, local-process
provisioner). The operator deploys the demo PM template and expands its team: three
``molecule-runtime`` processes (echo adapter, no LLM) register and come online. A canvas message
to the PM is delegated to a child and the answer comes back through the proxy; memories follow
their scopes; a killed runtime goes offline and is brought back; deleting the team stops every
process and revokes every token.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import asyncio
import uuid

import httpx
import psutil
import pytest
from a2a.client import A2ACardResolver, ClientConfig, ClientFactory
from a2a.types import AgentCard, Message, Part, Role, SendMessageRequest

from molecule_site.tests.launch import platform_on_fresh_database, wait_until

ADMIN = "team-e2e-admin"
TTL_SECONDS = 4
SWEEP_SECONDS = 1
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}




def say(api: httpx.Client, workspace_id: str, text: str) -> str:
    """A canvas message (no X-Workspace-ID) through the proxy; returns the agent's text."""
    response = api.post(f"/workspaces/{workspace_id}/a2a", json={
        "method": "message/send",
        "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": text}]}},
    })
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    return "".join(part.get("text", "") for part in result["parts"])


def runtime_pid(home: Path, workspace_id: str) -> int | None:
    try:
        return json.loads((home / "workspaces" / workspace_id / "runtime.json").read_text())["pid"]
    except (OSError, ValueError, KeyError):
        return None


def sdk_reply_through_proxy(agent_url: str, proxy_url: str, version: str, streaming: bool) -> str:
    """a2a-sdk's own client, pointed at the platform proxy instead of the agent, in one A2A
    generation: the card comes from the agent, its interface URL is the proxy's. It calls as
    the operator (the admin token): a call with no caller workspace needs one."""

    async def run() -> str:
        async with httpx.AsyncClient(timeout=30, headers=ADMIN_HEADERS) as http:
            card = await A2ACardResolver(http, agent_url).get_agent_card()
            via_proxy = AgentCard()
            via_proxy.CopyFrom(card)
            interfaces = [i for i in card.supported_interfaces if i.protocol_version == version]
            del via_proxy.supported_interfaces[:]
            for interface in interfaces:
                interface.url = proxy_url
                via_proxy.supported_interfaces.append(interface)
            client = ClientFactory(ClientConfig(streaming=streaming, httpx_client=http)).create(via_proxy)
            request = SendMessageRequest(message=Message(
                role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=f"sdk {version}")]))
            texts = []
            async for event in client.send_message(request):
                for field in ("message", "task", "status_update"):
                    if event.HasField(field):
                        value = getattr(event, field)
                        message = value if field == "message" else value.status.message
                        texts.extend(part.text for part in message.parts if part.text)
            await client.close()
            return " ".join(texts)

    return asyncio.run(run())


@pytest.fixture
def platform(home):
    with platform_on_fresh_database(
        home, redis_db=2, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="local",
        LIVENESS_TTL_SECONDS=str(TTL_SECONDS), LIVENESS_SWEEP_SECONDS=str(SWEEP_SECONDS),
        CONTAINER_SWEEP_SECONDS=str(SWEEP_SECONDS),
    ) as launch:
        yield launch


def test_demo_team_runs_talks_delegates_remembers_recovers_and_is_deleted(platform, home):
    with httpx.Client(base_url=platform.url, timeout=30, headers=ADMIN_HEADERS) as api:
        pm = api.post("/workspaces", json={"name": "PM", "template": "demo-pm"}).json()["id"]
        children = [c["id"] for c in api.post(f"/workspaces/{pm}/expand").json()["children"]]
        team = [pm, *children]

        def status(workspace_id):
            return api.get(f"/workspaces/{workspace_id}").json()["status"]

        wait_until(lambda: all(status(w) == "online" for w in team), 60, "the team to come online")
        pids = {w: runtime_pid(home, w) for w in team}
        assert all(pid and psutil.pid_exists(pid) for pid in pids.values()), pids

        # a2a-sdk's own client talks to a runtime through the proxy, in both method generations.
        agent_url = api.get(f"/workspaces/{pm}").json()["url"]
        for version in ("0.3", "1.0"):
            for streaming in (False, True):
                reply = sdk_reply_through_proxy(agent_url, f"{platform.url}/workspaces/{pm}/a2a", version, streaming)
                assert f"PM: sdk {version}" in reply, (version, streaming, reply)

        # Canvas → PM → delegated to a child → the child's answer comes back through the proxy.
        researcher = children[0]
        answer = say(api, pm, f"/delegate {researcher} find three facts")
        assert "specialist: find three facts" in answer

        # Memories follow their scopes: a sibling sees TEAM, never LOCAL.
        say(api, researcher, '/tool commit_memory {"content": "launch is on friday", "scope": "TEAM"}')
        say(api, researcher, '/tool commit_memory {"content": "my private note", "scope": "LOCAL"}')
        team_view = say(api, children[1], '/tool search_memory {"query": "", "scope": "TEAM"}')
        assert "launch is on friday" in team_view and "my private note" not in team_view
        own_view = say(api, researcher, '/tool search_memory {"query": "", "scope": "LOCAL"}')
        assert "my private note" in own_view

        # A killed runtime goes offline (deadline missed) and the provisioner brings it back.
        os.kill(pids[researcher], signal.SIGKILL)
        # the restart is queued at once, so the offline status may last less than a poll: the
        # event log says it happened
        wait_until(lambda: any(e["event_type"] == "WORKSPACE_OFFLINE" for e in api.get(f"/events/{researcher}").json()),
                   TTL_SECONDS + SWEEP_SECONDS + 10, "offline")
        wait_until(lambda: status(researcher) == "online", 60, "the runtime to be restarted")
        assert runtime_pid(home, researcher) not in (None, pids[researcher])
        assert "specialist: back" in say(api, researcher, "back")

        # Deleting the team stops every process and revokes every token.
        live_pids = [runtime_pid(home, w) for w in team]
        response = api.delete(f"/workspaces/{pm}?confirm=true")
        assert response.json() == {"status": "removed", "cascade_deleted": 2}
        wait_until(lambda: not any(p and psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
                                   for p in live_pids), 30, "every runtime to stop")
        for workspace_id in team:
            assert api.get(f"/workspaces/{workspace_id}/tokens").json() == {"tokens": [], "count": 0}
