"""The agent promotes a skill itself: our runtime's built-in tools (``request_approval`` then
``promote_skill``) against the real platform over HTTP (pytest-django's ``live_server``), with a
human deciding the approval in between, as on the canvas."""

from __future__ import annotations

import asyncio
import threading

import pytest

from activity.models import ApprovalRequest
from molecule_site.tests.runtime_contract import platform_client
from plugins_app.models import SkillVersion
from plugins_app.tests.test_skills import candidate, configs, dev  # noqa: F401 - fixture
from workspaces.models import Workspace

molecule_runtime = pytest.importorskip("molecule_runtime")
from molecule_runtime.tools import build_tools  # noqa: E402

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]


@pytest.fixture(autouse=True)
def _secure(secure, settings, tmp_path, monkeypatch):
    settings.MOLECULE_HOME = tmp_path / "home"
    monkeypatch.setenv("APPROVAL_POLL_INTERVAL", "0.05")
    monkeypatch.setenv("APPROVAL_TIMEOUT", "20")


def _tools(live_server, workspace, tmp_path):
    client = platform_client(live_server, workspace, tmp_path)
    return client, build_tools(client)


def test_the_agent_promotes_its_newest_candidate_after_an_approval(live_server, dev, tmp_path):  # noqa: F811
    candidate(dev, title="Old habit")
    newest = candidate(dev, title="Triage flaky CI", skill_name="triage-flaky-ci")
    unrelated = str(ApprovalRequest.objects.create(workspace=dev, action="unrelated").id)  # stays pending

    async def agent():
        client, tools = _tools(live_server, dev, tmp_path)
        try:
            refused = await tools["promote_skill"](approval_id="")
            unapproved = await tools["promote_skill"](approval_id=unrelated)
            approval = await tools["request_approval"](action="promote skill triage-flaky-ci",
                                                       reason="done three times this week")
            promoted = await tools["promote_skill"](approval_id=approval["approval_id"])
            again = await tools["promote_skill"](approval_id=approval["approval_id"], candidate_id=str(newest.id))
            return refused, unapproved, approval, promoted, again
        finally:
            await client.aclose()

    # the human on the canvas approves the request the agent files (and only that one: the
    # unrelated pending request stays pending)
    def decide():
        for _ in range(400):
            row = ApprovalRequest.objects.filter(workspace=dev, action="promote skill triage-flaky-ci").first()
            if row is not None:
                ApprovalRequest.objects.filter(pk=row.pk).update(status="approved", decided_by="operator")
                return
            threading.Event().wait(0.05)

    human = threading.Thread(target=decide, daemon=True)
    human.start()
    refused, unapproved, approval, promoted, again = asyncio.run(agent())
    human.join(timeout=5)

    assert refused == {"success": False, "error": "approval_id is required: ask with request_approval first"}
    assert unapproved["success"] is False and "approved approval request" in unapproved["error"]
    assert approval["approved"] is True
    assert promoted == {"success": True, "skill": "triage-flaky-ci", "version": 1}
    assert again["success"] is False and "already decided" in again["error"]  # one decision per candidate
    row = SkillVersion.objects.get(workspace=dev, skill="triage-flaky-ci")
    assert row.candidate_id == newest.id and row.actor == f"workspace:{dev.id}"
    assert "triage-flaky-ci" in (configs(dev) / "config.yaml").read_text()
    assert (configs(dev) / "skills" / "triage-flaky-ci" / "SKILL.md").is_file()


def test_without_a_candidate_the_tool_says_so(live_server, dev, tmp_path):  # noqa: F811
    async def agent():
        client, tools = _tools(live_server, dev, tmp_path)
        try:
            return await tools["promote_skill"](approval_id="00000000-0000-0000-0000-000000000000")
        finally:
            await client.aclose()

    assert asyncio.run(agent()) == {"success": False, "error": "no skill promotion candidate to promote"}
