"""Plugins and promoted skills reaching REAL ``molecule-runtime`` processes (local backend).

The platform is pytest-django's ``live_server``; Celery tasks are captured and run in-process
(``workspaces/tests/test_provisioner_local.py``'s ``local`` fixture). Runtimes import the
``molecule_runtime`` this test process imports (``PYTHONPATH`` as a workspace secret), so a
worktree's runtime changes are what runs.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import molecule_runtime
import pytest
from django.conf import settings

from activity.models import ActivityLog, StructureEvent
from molecule_site.tests.api_client import ADMIN_TOKEN
from molecule_site.tests.test_mixed_team_end_to_end import fake_openai
from registry.tokens import token_mint
from workspaces import services
from workspaces.models import Workspace, WorkspaceStatus
from workspaces.provisioners import local as local_backend
from workspaces.tests.test_provisioner_local import local, wait_for  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db(transaction=True)

HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
RUNTIME_SOURCE = str(Path(molecule_runtime.__file__).resolve().parent.parent)


@pytest.fixture(autouse=True)
def _secure(secure, settings):
    settings.PLUGINS_DIR = Path(settings.BASE_DIR) / "plugins"


def create(queue, name: str, *, runtime: str = "echo", parent=None, model=None, secrets=None) -> Workspace:
    body = services.workspace_create(
        new=services.NewWorkspace(name=name, runtime=runtime, model=model, parent_id=parent.id if parent else None,
                                  secrets={"PYTHONPATH": RUNTIME_SOURCE, **(secrets or {})}),
        platform_url="http://unused",
    )
    queue.run()
    return wait_for(Workspace.objects.get(pk=body["id"]), WorkspaceStatus.ONLINE)


def a2a(base_url: str, workspace: Workspace, text: str) -> str:
    body = {"jsonrpc": "2.0", "id": "1", "method": "message/send",
            "params": {"message": {"role": "user", "messageId": uuid.uuid4().hex,
                                   "parts": [{"kind": "text", "text": text}]}}}
    reply = httpx.post(f"{base_url}/workspaces/{workspace.id}/a2a", json=body, headers=HEADERS, timeout=30)
    assert reply.status_code == 200, reply.text
    return reply.json()["result"]["parts"][0]["text"]


def card_skills(workspace: Workspace) -> dict[str, dict]:
    workspace.refresh_from_db()
    return {s["id"]: s for s in (workspace.agent_card or {}).get("skills", [])}


def until(check, what: str, workspace: Workspace, timeout: float = 45):
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; runtime log:\n"
                                 f"{local_backend.read_log_tail(workspace.id)}")
        time.sleep(0.2)


# --- plugins ----------------------------------------------------------------------------------------

@pytest.fixture
def model():
    server = fake_openai.FakeOpenAIServer().start()
    yield server
    server.stop()


def test_a_local_plugin_install_restarts_the_runtime_with_its_rules_and_skills(local, live_server, model):
    _provisioner, queue = local
    dev = create(queue, "Dev", runtime="openai", model="openai:gpt-4o-mini",
                 secrets={"OPENAI_BASE_URL": model.state.base_url, "OPENAI_API_KEY": "sk-fake-plugins"})
    assert "code-review" not in card_skills(dev)
    first_pid = local_backend.read_record(dev.id)["pid"]

    for source in ("local://shared-coding-rules", "local://code-review"):
        response = httpx.post(f"{live_server.url}/workspaces/{dev.id}/plugins", json={"source": source},
                              headers=HEADERS, timeout=30)
        assert response.status_code == 200, response.text
    assert "restart_workspace" in queue.names()
    queue.run()  # what the worker does: stop, provision, start
    dev = wait_for(dev, WorkspaceStatus.ONLINE)
    assert local_backend.read_record(dev.id)["pid"] != first_pid
    skills = until(lambda: card_skills(dev).get("code-review") and card_skills(dev), "the plugin skill", dev)
    assert skills["code-review"]["name"] == "Code review"

    model.state.default = {"content": "reviewed"}
    assert a2a(live_server.url, dev, "review my diff") == "reviewed"
    request = model.state.requests[-1].body
    system = next(m["content"] for m in request["messages"] if m["role"] == "system")
    assert "## Platform Rules" in system and "Write or update a test that fails" in system
    assert "## Platform Guidelines" in system and "lead with the problems that would break users" in system
    assert "diff_stats" in {t["function"]["name"] for t in request["tools"]}  # the plugin skill's tool


def test_the_allowlist_keeps_an_unlisted_plugin_out_of_a_running_workspace(local, live_server):
    _provisioner, queue = local
    dev = create(queue, "Dev")
    allow = httpx.put(f"{live_server.url}/orgs/{dev.id}/plugins/allowlist", json={"plugins": ["shared-coding-rules"]},
                      headers=HEADERS, timeout=30)
    assert allow.status_code == 200
    refused = httpx.post(f"{live_server.url}/workspaces/{dev.id}/plugins", json={"source": "local://code-review"},
                         headers=HEADERS, timeout=30)
    assert refused.status_code == 403
    assert refused.json() == {"error": "plugin 'code-review' is not in the org plugin allowlist"}
    assert "restart_workspace" not in queue.names()
    assert not (local_backend.workspace_home(dev.id) / "configs" / "plugins").exists()


# --- skill promotion ----------------------------------------------------------------------------------

TOOL_SCRIPT = '''
def triage_ci(job: str) -> dict:
    """Classify a failing CI job."""
    return {"job": job, "verdict": "flaky", "version": VERSION}

VERSION = 1
'''


def test_a_promoted_candidate_hot_reloads_into_the_runtime_its_card_and_a_peers_discovery_then_rolls_back(
    local, live_server
):
    _provisioner, queue = local
    dev = create(queue, "Dev")
    qa = create(queue, "QA", parent=dev)
    _, qa_token = token_mint(workspace=qa)
    pid = local_backend.read_record(dev.id)["pid"]
    api = httpx.Client(base_url=live_server.url, headers=HEADERS, timeout=30)

    # the agent commits a memory that asks for promotion: the runtime records the candidate
    packet = {"promote_to_skill": True, "title": "Triage flaky CI", "repetition_signal": 3,
              "procedure": ["rerun the job once", "bisect the last green commit", "quarantine the test"]}
    reply = a2a(live_server.url, dev, "/remember " + json.dumps(packet))
    assert '"success": true' in reply.lower(), reply
    candidates = until(lambda: api.get(f"/workspaces/{dev.id}/skills/candidates").json(), "the candidate", dev)
    [candidate] = candidates
    assert candidate["summary"] == "Triage flaky CI" and candidate["suggested_name"] == "triage-flaky-ci"
    assert candidate["packet"] == packet
    assert ActivityLog.objects.get(pk=candidate["id"]).source_id == dev.id

    promoted = api.post(f"/workspaces/{dev.id}/skills/candidates/{candidate['id']}/promote",
                        json={"tool_script": TOOL_SCRIPT})
    assert promoted.status_code == 201, promoted.text
    assert promoted.json()["version"] == 1 and promoted.json()["action"] == "promoted"
    assert api.get(f"/workspaces/{dev.id}/skills/candidates").json() == []

    # hot reload: same process, new skill in the card the platform stores, the tool callable
    skills = until(lambda: card_skills(dev).get("triage-flaky-ci") and card_skills(dev), "the promoted skill", dev)
    assert skills["triage-flaky-ci"]["description"] == "Triage flaky CI"
    assert local_backend.read_record(dev.id)["pid"] == pid
    assert StructureEvent.objects.filter(event_type="AGENT_CARD_UPDATED", workspace_id=dev.id).exists()
    assert StructureEvent.objects.filter(event_type="SKILL_PROMOTED", workspace_id=dev.id).count() == 1
    assert '"verdict": "flaky"' in a2a(live_server.url, dev, '/tool triage_ci {"job": "unit"}')
    peers = httpx.get(f"{live_server.url}/registry/{qa.id}/peers", timeout=30,
                      headers={"Authorization": f"Bearer {qa_token}", "X-Workspace-ID": str(qa.id)}).json()
    [seen] = [p for p in peers if p["id"] == str(dev.id)]
    assert "triage-flaky-ci" in {s["id"] for s in seen["agent_card"]["skills"]}

    # an edit is version 2; the rollback brings version 1 back as version 3
    skill_md = api.get(f"/workspaces/{dev.id}/skills/triage-flaky-ci").json()["files"]["SKILL.md"]
    edited = api.put(f"/workspaces/{dev.id}/skills/triage-flaky-ci", json={"files": {
        "SKILL.md": skill_md.replace("description: Triage flaky CI", "description: Triage CI, v2"),
        "scripts/triage_flaky_ci.py": TOOL_SCRIPT.replace("VERSION = 1", "VERSION = 2")}})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    until(lambda: card_skills(dev)["triage-flaky-ci"]["description"] == "Triage CI, v2", "the edit", dev)
    assert '"version": 2' in a2a(live_server.url, dev, '/tool triage_ci {"job": "unit"}')

    rolled = api.post(f"/workspaces/{dev.id}/skills/triage-flaky-ci/rollback", json={})
    assert rolled.status_code == 200
    assert (rolled.json()["version"], rolled.json()["action"], rolled.json()["restored_from"]) == (3, "rolled_back", 1)
    until(lambda: card_skills(dev)["triage-flaky-ci"]["description"] == "Triage flaky CI", "the rollback", dev)
    assert '"version": 1' in a2a(live_server.url, dev, '/tool triage_ci {"job": "unit"}')
    detail = api.get(f"/workspaces/{dev.id}/skills/triage-flaky-ci").json()
    assert detail["files"]["SKILL.md"] == skill_md
    assert [(v["version"], v["action"]) for v in detail["versions"]] == [
        (3, "rolled_back"), (2, "edited"), (1, "promoted")]

    # removal: the skill leaves the card, and can be rolled back too
    assert api.delete(f"/workspaces/{dev.id}/skills/triage-flaky-ci").json()["version"] == 4
    until(lambda: "triage-flaky-ci" not in card_skills(dev), "the removal", dev)
    assert local_backend.read_record(dev.id)["pid"] == pid
    api.close()
