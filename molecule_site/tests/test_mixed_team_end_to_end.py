"""A team of three agent frameworks on the real platform (issue 14's end-to-end scenario).

A LangGraph PM leads a CrewAI researcher and an AutoGen writer, each deployed from its runtime's
``<runtime>-default`` template and run by the local backend (CrewAI from its own environment, see
the Makefile's runtime envs). All three call one local fake model server that speaks OpenAI's
chat-completions API, so each framework's real client code runs. A canvas message to the PM is
delegated to the researcher, then to the writer, and the PM's answer joins both; the delegations
are in the activity log of the PM and of its children.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from molecule_site.tests.launch import platform_on_fresh_database, wait_until

ADMIN = "mixed-team-admin"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN}"}
CREWAI_ENV = Path(settings.LOCAL_RUNTIME_ENVS_DIR) / "crewai" / "bin" / "molecule-runtime"

pytestmark = pytest.mark.slow


def _load_fake_openai():
    """The runtime suite's fake model server (its own package, not importable from here)."""
    path = Path(settings.BASE_DIR) / "runtime" / "tests" / "fake_openai.py"
    spec = importlib.util.spec_from_file_location("molecule_fake_openai", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


fake_openai = _load_fake_openai()


def first_text(body: dict) -> str:
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        if content:
            return str(content)
    return ""


def tool_results(body: dict) -> list[str]:
    results = []
    for message in body.get("messages", []):
        if message.get("role") == "tool":
            content = message.get("content")
            if isinstance(content, list):
                content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
            results.append(str(content))
    return results


class Team:
    """Answers each agent's model calls by who is asking (its system prompt names its framework)."""

    def __init__(self) -> None:
        self.researcher_id = ""
        self.writer_id = ""
        self.seen: list[str] = []

    def __call__(self, body: dict) -> dict:
        opening = first_text(body)[:400]
        if "CrewAI" in opening:
            self.seen.append("crewai")
            return {"content": "Otters hold hands while they sleep so they do not drift apart."}
        if "AutoGen" in opening:
            self.seen.append("autogen")
            return {"content": "Paws linked in the kelp, two otters drift into sleep, the tide cannot part."}
        self.seen.append("langgraph")
        done = tool_results(body)
        if not done:
            return {"tool_calls": [{"name": "delegate_task", "arguments": {
                "workspace_id": self.researcher_id, "task": "Find one surprising fact about otters."}}]}
        if len(done) == 1:
            return {"tool_calls": [{"name": "delegate_task", "arguments": {
                "workspace_id": self.writer_id, "task": f"Write a haiku from this fact: {done[0]}"}}]}
        return {"content": "Team answer. " + " | ".join(done)}


@pytest.fixture
def model():
    server = fake_openai.FakeOpenAIServer().start()
    yield server
    server.stop()


@pytest.fixture
def platform(home):
    with platform_on_fresh_database(home, redis_db=11, ADMIN_TOKEN=ADMIN, MOLECULE_PROVISIONER="local") as launch:
        yield launch


def runtime_logs(home: Path) -> str:
    """Every runtime's log, for the assertion message when something goes wrong."""
    return "\n".join(f"--- {path.parent.name}\n{path.read_text(errors='replace')[-4000:]}"
                     for path in sorted(home.glob("workspaces/*/runtime.log")))


def test_a_langgraph_pm_delegates_to_a_crewai_researcher_and_an_autogen_writer(platform, model, home):
    assert CREWAI_ENV.is_file(), f"{CREWAI_ENV} is missing: `make runtime-envs` installs it"
    team = Team()
    model.state.default = team
    with httpx.Client(base_url=platform.url, timeout=60, headers=ADMIN_HEADERS) as api:
        for key, value in (("OPENAI_BASE_URL", model.state.base_url), ("OPENAI_API_KEY", "sk-fake-mixed-team")):
            assert api.put("/settings/secrets", json={"key": key, "value": value}).json()["status"] == "saved"
        pm = api.post("/workspaces", json={"name": "PM", "template": "langgraph-default"}).json()["id"]
        team.researcher_id = api.post("/workspaces", json={
            "name": "Researcher", "template": "crewai-default", "parent_id": pm}).json()["id"]
        team.writer_id = api.post("/workspaces", json={
            "name": "Writer", "template": "autogen-default", "parent_id": pm}).json()["id"]
        members = {"langgraph": pm, "crewai": team.researcher_id, "autogen": team.writer_id}

        def workspace(workspace_id):
            return api.get(f"/workspaces/{workspace_id}").json()

        wait_until(lambda: all(workspace(w)["status"] == "online" for w in members.values()), 180,
                   "the three runtimes to come online")
        assert {runtime: workspace(w)["runtime"] for runtime, w in members.items()} == {
            "langgraph": "langgraph", "crewai": "crewai", "autogen": "autogen"}

        # the canvas's message to the PM, through the proxy
        response = api.post(f"/workspaces/{pm}/a2a", timeout=180, json={
            "method": "message/send",
            "params": {"message": {"role": "user", "parts": [{"kind": "text", "text": "A haiku about otters, please."}]}},
        })
        assert response.status_code == 200, response.text + runtime_logs(home) + platform.output[-6000:]
        answer = "".join(part.get("text", "") for part in response.json()["result"]["parts"])
        assert answer.startswith("Team answer.")
        assert "Otters hold hands while they sleep" in answer
        assert "Paws linked in the kelp" in answer
        assert {"langgraph", "crewai", "autogen"} <= set(team.seen)

        # the delegations are in the activity log: sent by the PM, received by each child
        def activity(workspace_id):
            return api.get(f"/workspaces/{workspace_id}/activity", params={"limit": 100}).json()

        sent = [a for a in activity(pm) if a["activity_type"] == "a2a_send"]
        assert {a["target_id"] for a in sent} >= {team.researcher_id, team.writer_id}
        for child in (team.researcher_id, team.writer_id):
            received = [a for a in activity(child) if a["activity_type"] == "a2a_receive"]
            assert any(a["source_id"] == pm and a["status"] == "ok" for a in received), received
