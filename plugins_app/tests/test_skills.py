"""Skills as versioned files and the promotion loop through the API (plugins_app.skills): who may
promote, one decision per candidate, config.yaml listing, baselines, rollback, bad input."""

from __future__ import annotations


import pytest
import yaml

from activity.models import ActivityLog, ApprovalRequest, StructureEvent
from molecule_site.tests.api_client import call
from plugins_app.models import SkillCandidateDecision, SkillVersion
from registry.tokens import token_mint
from workspaces.filestores import host_root_dir
from workspaces.models import Workspace, WorkspaceStatus

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("redis_client")]

@pytest.fixture(autouse=True)
def _home(secure, settings, tmp_path):
    settings.MOLECULE_HOME = tmp_path / "home"


@pytest.fixture
def dev():
    ws = Workspace.objects.create(name="Dev", status=WorkspaceStatus.ONLINE, runtime="echo")
    _, ws.token = token_mint(workspace=ws)
    configs = host_root_dir(ws.id)
    configs.mkdir(parents=True)
    (configs / "config.yaml").write_text("name: Dev\nruntime: echo\nskills:\n- lookup\n")
    (configs / "skills" / "lookup").mkdir(parents=True)
    (configs / "skills" / "lookup" / "SKILL.md").write_text("---\nname: Lookup\n---\nfrom the template")
    return ws


def candidate(ws, **packet) -> ActivityLog:
    packet = {"promote_to_skill": True, "title": "Triage flaky CI", "procedure": "rerun, bisect, quarantine", **packet}
    return ActivityLog.objects.create(workspace=ws, activity_type="skill_promotion", method="memory/skill-promotion",
                                      summary=packet["title"], source_id=ws.id, request_body=packet)


def configs(ws):
    return host_root_dir(ws.id)


def test_an_operator_promotes_a_candidate_into_files_config_and_history(client, dev):
    cand = candidate(dev)
    response = call(client, "post", f"/workspaces/{dev.id}/skills/candidates/{cand.id}/promote",
                    {"description": "Triage a flaky CI job", "tool_script": "def triage(job: str) -> str:\n    return job\n"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["skill"], body["version"], body["action"], body["actor"]) == ("triage-flaky-ci", 1, "promoted", "admin")
    assert body["files"] == ["SKILL.md", "scripts/triage_flaky_ci.py"] and body["candidate_id"] == str(cand.id)
    md = (configs(dev) / "skills" / "triage-flaky-ci" / "SKILL.md").read_text()
    assert md == ("---\nname: triage-flaky-ci\ndescription: Triage a flaky CI job\ntags:\n- promoted\n---\n"
                  "rerun, bisect, quarantine\n")
    assert yaml.safe_load((configs(dev) / "config.yaml").read_text())["skills"] == ["lookup", "triage-flaky-ci"]
    assert SkillCandidateDecision.objects.get(candidate=cand).decision == "promoted"
    assert StructureEvent.objects.get(event_type="SKILL_PROMOTED").payload == {
        "skill": "triage-flaky-ci", "version": 1, "actor": "admin"}
    again = call(client, "post", f"/workspaces/{dev.id}/skills/candidates/{cand.id}/promote", {})
    assert again.status_code == 409 and again.json() == {"error": "skill promotion candidate already decided"}


def test_a_workspace_token_promotes_only_with_an_approved_approval_of_its_own(client, dev):
    cand = candidate(dev)
    path = f"/workspaces/{dev.id}/skills/candidates/{cand.id}/promote"
    refused = call(client, "post", path, {}, token=dev.token)
    assert refused.status_code == 403
    assert refused.json() == {"error": "promoting a skill with a workspace token needs the id of an approved approval request"}
    pending = ApprovalRequest.objects.create(workspace=dev, action="promote skill triage-flaky-ci")
    other = Workspace.objects.create(name="Other")
    foreign = ApprovalRequest.objects.create(workspace=other, action="promote", status="approved")
    for approval in (pending.id, foreign.id, "not-a-uuid"):
        assert call(client, "post", path, {"approval_id": str(approval)}, token=dev.token).status_code == 403
    assert not SkillVersion.objects.exists()
    pending.status = "approved"
    pending.save()
    ok = call(client, "post", path, {"approval_id": str(pending.id)}, token=dev.token)
    assert ok.status_code == 201 and ok.json()["actor"] == f"workspace:{dev.id}"


def test_candidates_of_another_workspace_or_of_another_kind_are_not_found(client, dev):
    other = Workspace.objects.create(name="Other")
    theirs = candidate(other)
    log = ActivityLog.objects.create(workspace=dev, activity_type="agent_log", summary="x")
    for cid in (theirs.id, log.id, "nope", "00000000-0000-0000-0000-000000000000"):
        for verb in ("promote", "dismiss"):
            response = call(client, "post", f"/workspaces/{dev.id}/skills/candidates/{cid}/{verb}", {})
            assert response.status_code == 404 and response.json() == {"error": "skill promotion candidate not found"}


def test_dismissing_takes_the_candidate_off_the_list_once(client, dev):
    cand = candidate(dev)
    listed = call(client, "get", f"/workspaces/{dev.id}/skills/candidates").json()
    assert [c["id"] for c in listed] == [str(cand.id)] and listed[0]["suggested_name"] == "triage-flaky-ci"
    assert call(client, "post", f"/workspaces/{dev.id}/skills/candidates/{cand.id}/dismiss", {}).json() == {
        "status": "dismissed", "candidate_id": str(cand.id)}
    assert call(client, "get", f"/workspaces/{dev.id}/skills/candidates").json() == []
    assert call(client, "post", f"/workspaces/{dev.id}/skills/candidates/{cand.id}/promote", {}).status_code == 409
    assert StructureEvent.objects.filter(event_type="SKILL_CANDIDATE_DISMISSED").count() == 1


@pytest.mark.parametrize("name", ["../evil", "Evil", "a/b", "-x", "x" * 65, ".."])
def test_bad_skill_names_are_refused_everywhere(client, dev, name):
    cand = candidate(dev)
    response = call(client, "post", f"/workspaces/{dev.id}/skills/candidates/{cand.id}/promote", {"name": name})
    assert response.status_code == 400
    assert response.json() == {"error": "invalid skill name: lowercase letters, digits and '-', at most 64"}
    assert not SkillCandidateDecision.objects.exists()
    assert sorted(p.name for p in (configs(dev) / "skills").iterdir()) == ["lookup"]


def test_edit_files_are_checked(client, dev):
    path = f"/workspaces/{dev.id}/skills/lookup"
    for files, status in (({"../x.md": "x", "SKILL.md": "x"}, 400), ({"notes.md": "x"}, 400), ({"SKILL.md": 3}, 400),
                          ("SKILL.md", 400), ({"SKILL.md": "x" * (1024 * 1024 + 1)}, 413)):
        assert call(client, "put", path, {"files": files}).status_code == status, files
    assert (configs(dev) / "skills" / "lookup" / "SKILL.md").read_text() == "---\nname: Lookup\n---\nfrom the template"


def test_first_edit_of_a_template_skill_keeps_a_baseline_and_rollback_restores_it(client, dev):
    path = f"/workspaces/{dev.id}/skills/lookup"
    edited = call(client, "put", path, {"files": {"SKILL.md": "---\nname: Lookup\n---\nv2"}})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert [(v.version, v.action) for v in SkillVersion.objects.order_by("version")] == [(1, "baseline"), (2, "edited")]
    rolled = call(client, "post", f"{path}/rollback", {})
    assert rolled.json()["version"] == 3 and rolled.json()["restored_from"] == 1
    assert (configs(dev) / "skills" / "lookup" / "SKILL.md").read_text() == "---\nname: Lookup\n---\nfrom the template"
    to_two = call(client, "post", f"{path}/rollback", {"version": 2})
    assert to_two.json()["version"] == 4
    assert (configs(dev) / "skills" / "lookup" / "SKILL.md").read_text() == "---\nname: Lookup\n---\nv2"
    for bad, status in (({"version": 4}, 404), ({"version": 99}, 404), ({"version": "1"}, 400), ({"version": True}, 400)):
        assert call(client, "post", f"{path}/rollback", bad).status_code == status, bad
    assert StructureEvent.objects.filter(event_type="SKILL_ROLLED_BACK").count() == 2


def test_removal_unlists_the_skill_and_a_rollback_brings_it_back(client, dev):
    removed = call(client, "delete", f"/workspaces/{dev.id}/skills/lookup")
    assert removed.status_code == 200 and removed.json()["action"] == "removed"
    assert not (configs(dev) / "skills" / "lookup").exists()
    assert yaml.safe_load((configs(dev) / "config.yaml").read_text())["skills"] == []
    assert call(client, "delete", f"/workspaces/{dev.id}/skills/lookup").status_code == 404
    call(client, "post", f"/workspaces/{dev.id}/skills/lookup/rollback", {})
    assert (configs(dev) / "skills" / "lookup" / "SKILL.md").is_file()
    assert yaml.safe_load((configs(dev) / "config.yaml").read_text())["skills"] == ["lookup"]
    detail = call(client, "get", f"/workspaces/{dev.id}/skills/lookup").json()
    assert [v["action"] for v in detail["versions"]] == ["rolled_back", "removed", "baseline"]


def test_skills_list_joins_the_card_and_the_files(client, dev):
    dev.agent_card = {"skills": [{"id": "lookup", "name": "Lookup", "description": "d", "tags": ["t"]},
                                 {"id": "remote", "name": "Remote"}]}
    dev.save()
    listed = {s["id"]: s for s in call(client, "get", f"/workspaces/{dev.id}/skills").json()}
    assert listed["lookup"]["loaded"] and listed["lookup"]["in_files"] and listed["lookup"]["version"] is None
    assert listed["remote"]["loaded"] and not listed["remote"]["in_files"]
    assert call(client, "get", f"/workspaces/{dev.id}/skills/nothing").status_code == 404


def test_a_workspace_token_cannot_touch_another_workspaces_skills(client, dev):
    other = Workspace.objects.create(name="Other")
    _, token = token_mint(workspace=other)
    for method, path in (("get", f"/workspaces/{dev.id}/skills"), ("delete", f"/workspaces/{dev.id}/skills/lookup"),
                         ("post", f"/workspaces/{dev.id}/skills/lookup/rollback")):
        assert call(client, method, path, {} if method == "post" else None, token=token).status_code == 401
    assert (configs(dev) / "skills" / "lookup").exists()
