"""The operator admin of plugins_app: allowlist entries through the services, candidates promoted
or dismissed by admin actions."""

from __future__ import annotations

import pytest
from django.urls import reverse

from activity.models import ActivityLog, StructureEvent
from plugins_app.models import OrgPluginAllowlist, SkillCandidateDecision, SkillVersion
from workspaces.filestores import host_root_dir
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _home(settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path / "home"


def _candidate(ws, title):
    return ActivityLog.objects.create(workspace=ws, activity_type="skill_promotion", method="memory/skill-promotion",
                                      summary=title, request_body={"promote_to_skill": True, "procedure": "do it"})


def test_candidates_are_promoted_or_dismissed_by_admin_actions(operator_client):
    ws = Workspace.objects.create(name="Dev")
    first, second = _candidate(ws, "Triage CI"), _candidate(ws, "Release notes")
    url = reverse("admin:plugins_app_skillpromotioncandidate_changelist")
    page = operator_client.get(url).content.decode()
    assert "Triage CI" in page and "triage-ci" in page
    operator_client.post(url, {"action": "promote_selected", "_selected_action": [str(first.id)]})
    operator_client.post(url, {"action": "dismiss_selected", "_selected_action": [str(second.id)]})
    assert SkillVersion.objects.get().skill == "triage-ci"
    assert (host_root_dir(ws.id) / "skills" / "triage-ci" / "SKILL.md").is_file()
    assert dict(SkillCandidateDecision.objects.values_list("skill", "decision")) == {
        "triage-ci": "promoted", None: "dismissed"}
    assert SkillCandidateDecision.objects.get(decision="promoted").decided_by == "operator"
    assert "Triage CI" not in operator_client.get(url).content.decode()  # decided: off the list


def test_allowlist_entries_are_checked_and_announced(operator_client):
    root = Workspace.objects.create(name="Org")
    child = Workspace.objects.create(name="Team", parent=root)
    add = reverse("admin:plugins_app_orgpluginallowlist_add")
    refused = operator_client.post(add, {"org": str(child.id), "plugin_name": "../x"})
    assert refused.status_code == 200 and not OrgPluginAllowlist.objects.exists()
    assert operator_client.post(add, {"org": str(root.id), "plugin_name": "code-review"}).status_code == 302
    entry = OrgPluginAllowlist.objects.get()
    assert entry.enabled_by == "operator"
    assert StructureEvent.objects.get(event_type="PLUGIN_ALLOWLIST_UPDATED").payload["plugins"] == ["code-review"]
