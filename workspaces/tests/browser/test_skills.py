"""The Skills tab (canvas spec §3.4) against the live platform: the agent card's skills, promotion
candidates (Promote / Dismiss) and plugins (install from the registry, uninstall), and the whole
loop on a real runtime: a skill promoted in the canvas is used by the agent on its next task."""

from __future__ import annotations

import json
import re
from pathlib import Path

import molecule_runtime
import pytest
from playwright.sync_api import expect

from workspaces.tests.browser.conftest import create_workspace, register_online, screenshot, wait_until
from workspaces.tests.browser.test_panel import model_server, open_panel  # noqa: F401 - the fixture

# the molecule_runtime this test imports (a worktree's, with PYTHONPATH) is the one the runtime runs
RUNTIME_SOURCE = str(Path(molecule_runtime.__file__).resolve().parent.parent)

PACKET = {"promote_to_skill": True, "title": "Triage flaky CI", "repetition_signal": 3,
          "procedure": ["rerun the job once", "bisect against the last green commit", "quarantine the test"]}


def candidate(admin_api, workspace_id: str, **packet) -> None:
    body = {**PACKET, **packet}
    response = admin_api.post(f"/workspaces/{workspace_id}/activity", json={
        "activity_type": "skill_promotion", "method": "memory/skill-promotion", "summary": body["title"],
        "request_body": body})
    assert response.status_code == 200, response.text


@pytest.fixture
def agent(admin_api):
    ws = create_workspace(admin_api, "Dev Lead", role="Reviews and ships", runtime="echo")
    register_online(admin_api, ws["id"], skills=[
        {"id": "lookup", "name": "Lookup", "description": "Finds answers in the team docs", "tags": ["search", "docs"]}])
    return ws


def test_skills_tab_promotes_and_dismisses_candidates_and_installs_plugins(canvas, admin_api, agent):
    candidate(admin_api, agent["id"])
    candidate(admin_api, agent["id"], title="Write release notes", repetition_signal=2,
              procedure=["collect merged PRs", "group by area", "link the issues"])
    canvas.reload()
    open_panel(canvas, agent["id"], "skills")
    tab = canvas.locator("#panel-skills")
    expect(tab.locator("#skills-title")).to_contain_text("Installed skills (1)")
    expect(tab.locator("[data-skill='lookup']")).to_contain_text("Finds answers in the team docs")
    expect(tab.locator("[data-candidate]")).to_have_count(2)
    registry = tab.locator("[data-plugin-registry]")
    expect(registry).to_be_visible()  # nothing installed yet: the registry is open
    expect(registry).to_contain_text("Registry · 3 plugins")
    screenshot(canvas, "skills-tab")

    # install a plugin from the registry: it is listed as installed, the registry folds away
    registry.locator("[data-plugin-install='local://code-review']").click()
    expect(tab.locator("[data-plugin-count]")).to_have_text("1 installed")
    expect(tab.locator("[data-installed-list] [data-plugin='code-review']")).to_contain_text("v1.2.0")
    expect(tab.locator("[data-plugin-registry]")).to_be_hidden()
    tab.locator("[data-plugin-toggle]").click()
    expect(tab.locator("[data-plugin-registry]")).to_contain_text("Installed")

    # promote one candidate under a name of our own, dismiss the other
    first = tab.locator("[data-candidate]", has_text="Triage flaky CI")
    first.locator("[data-candidate-name]").fill("ci-triage")
    first.locator("[data-candidate-promote]").click()
    expect(tab.locator("[data-skill='ci-triage']")).to_be_visible()
    expect(tab.locator("[data-candidate]")).to_have_count(1)
    tab.locator("[data-skill='ci-triage'] summary").click()
    expect(tab.locator("[data-skill='ci-triage'] .skill-md")).to_contain_text("1. rerun the job once")
    expect(tab.locator("[data-skill='ci-triage']")).to_contain_text("v1")
    screenshot(canvas, "skills-tab-promoted")
    tab.locator("[data-candidate-dismiss]").click()
    expect(tab.locator("[data-candidate]")).to_have_count(0)
    expect(tab).to_contain_text("None waiting.")
    files = admin_api.get(f"/workspaces/{agent['id']}/skills/ci-triage").json()
    assert files["files"]["SKILL.md"].startswith("---\nname: ci-triage\n") and files["versions"][0]["action"] == "promoted"

    # uninstall: two clicks
    uninstall = tab.locator("[data-plugin-uninstall='code-review']")
    uninstall.click()
    expect(uninstall).to_have_text("Confirm uninstall")
    uninstall.click()
    expect(tab.locator("[data-plugin-count]")).to_have_text("0 installed")
    assert admin_api.get(f"/workspaces/{agent['id']}/plugins").json() == []


def test_a_failed_install_from_source_says_why(canvas, admin_api, agent):
    canvas.reload()
    open_panel(canvas, agent["id"], "skills")
    tab = canvas.locator("#panel-skills")
    tab.locator("#plugin-source").fill("github://acme/review-kit")
    tab.locator("[data-plugin-source-form] button[type=submit]").click()
    expect(canvas.locator(".toast", has_text="must be pinned")).to_be_visible()
    screenshot(canvas, "skills-tab-install-error")


# --- a promoted skill in use ------------------------------------------------------------------------

SIGN_OFF = "Checked against the release-checklist skill"
RELEASE_PACKET = {"promote_to_skill": True, "title": "Release checklist", "repetition_signal": 3,
                  "procedure": ["Freeze the main branch", "Run the smoke suite against staging",
                                "Tag the release and post the changelog", f'End the answer with "{SIGN_OFF}"']}
NO_PROCEDURE = "I know no release procedure yet: tell me the steps."


def release_model(body: dict) -> dict:
    """The fake model's side of the story. Asked to remember, it commits the procedure as a memory
    that asks for promotion (the runtime's §6.4 signal). Asked to ship, it can only answer from what
    its system prompt says: the steps of a ``release-checklist`` skill there, signed the way the
    skill says, or that it knows no procedure."""
    messages = body["messages"]
    system = next((m["content"] for m in messages if m["role"] == "system"), "")
    task = [m for m in messages if m["role"] == "user"][-1]["content"]
    if task.startswith("Remember"):
        if messages[-1]["role"] == "tool":
            return {"content": "Noted: the release procedure is in my memory."}
        return {"tool_calls": [{"name": "commit_memory",
                                "arguments": {"content": json.dumps(RELEASE_PACKET), "scope": "LOCAL"}}]}
    skill = re.search(r"^### release-checklist\n(.*?)(?=\n##|\Z)", system, re.S | re.M)
    if not skill:
        return {"content": NO_PROCEDURE}
    steps = re.findall(r"^\d+\. (.+)$", skill.group(1), re.M)
    sign_off = re.search(r'End the answer with "(.+)"', skill.group(1))
    plan = "\n".join(f"{i}. {step}" for i, step in enumerate((s for s in steps if not s.startswith("End the answer")), 1))
    return {"content": f"Following my release-checklist skill:\n\n{plan}\n\n{sign_off.group(1) if sign_off else ''}"}


def ask(admin_api, workspace_id: str, text: str) -> str:
    sent = admin_api.post(f"/workspaces/{workspace_id}/a2a", timeout=60, json={"method": "message/send", "params": {
        "message": {"role": "user", "parts": [{"kind": "text", "text": text}]}}})
    assert sent.status_code == 200, sent.text
    return sent.json()["result"]["parts"][0]["text"]


def requests_for(model_server, task: str) -> list:
    return [r for r in model_server.state.requests
            if [m for m in r.messages if m["role"] == "user"][-1:] and
            [m for m in r.messages if m["role"] == "user"][-1]["content"] == task]


def test_a_skill_promoted_in_the_canvas_is_used_by_the_agent_on_its_next_task(canvas, admin_api, model_server):
    """An openai-runtime agent on the local backend, its model the fake OpenAI server: it records a
    promotion candidate through its memory tool, the operator promotes it in the Skills tab, the
    runtime hot-reloads it, and the next task sent from the canvas chat gets the SKILL.md in the
    model's system prompt and an answer that follows it."""
    model_server.state.default = release_model
    created = admin_api.post("/workspaces", json={"name": "Release Manager", "template": "openai-default",
                                                  "canvas": {"x": 120, "y": 140}, "secrets": {"PYTHONPATH": RUNTIME_SOURCE}})
    assert created.status_code == 201, created.text
    ws = created.json()
    wait_until(lambda: admin_api.get(f"/workspaces/{ws['id']}").json()["status"] in ("online", "failed"),
               timeout=90, what="the openai runtime online")
    assert admin_api.get(f"/workspaces/{ws['id']}").json()["status"] == "online"

    # before: the agent knows no procedure, and its prompt has no such skill
    assert ask(admin_api, ws["id"], "How do we ship version 2.3?") == NO_PROCEDURE
    [before] = requests_for(model_server, "How do we ship version 2.3?")
    assert "release-checklist" not in before.messages[0]["content"]

    # the agent commits the procedure as a memory asking for promotion: its runtime records the candidate
    assert ask(admin_api, ws["id"], "Remember how we release: it worked the last three times.") == \
        "Noted: the release procedure is in my memory."
    [candidate] = wait_until(lambda: admin_api.get(f"/workspaces/{ws['id']}/skills/candidates").json(),
                             timeout=15, what="the runtime's promotion candidate")
    assert candidate["summary"] == "Release checklist" and candidate["suggested_name"] == "release-checklist"
    assert candidate["packet"] == RELEASE_PACKET

    # the operator promotes it in the Skills tab
    canvas.reload()
    open_panel(canvas, ws["id"], "skills")
    tab = canvas.locator("#panel-skills")
    row = tab.locator("[data-candidate]", has_text="Release checklist")
    expect(row).to_contain_text("Freeze the main branch")
    expect(row.locator("[data-candidate-name]")).to_have_value("release-checklist")
    screenshot(canvas, "skill-use-candidate")
    row.locator("[data-candidate-promote]").click()
    skill = tab.locator("[data-skill='release-checklist']")
    expect(skill).to_be_visible()
    expect(tab.locator("[data-candidate]")).to_have_count(0)
    # hot reload: the runtime loads the folder and pushes its new card; the tab drops "not loaded"
    expect(skill.locator(".ns-badge.is-warn")).to_have_count(0, timeout=30_000)
    card = admin_api.get(f"/workspaces/{ws['id']}").json()["agent_card"]
    assert "release-checklist" in {s["id"] for s in card["skills"]}
    expect(canvas.locator("#panel-head .pill", has_text="Skills")).to_have_text(re.compile(r"Skills\s*1$", re.I))
    skill.locator("summary").click()
    expect(skill.locator(".skill-md")).to_contain_text(f'4. End the answer with "{SIGN_OFF}"')
    screenshot(canvas, "skill-use-promoted")

    # the next task, from the canvas chat: the model sees the skill and the answer follows it
    task = "We are ready to ship version 2.4. What do we do?"
    canvas.click("#tab-chat")
    textarea = canvas.locator('[data-chat-pane="mine"] textarea')
    expect(textarea).to_be_enabled()
    textarea.fill(task)
    textarea.press("Enter")
    reply = canvas.locator(".chat-log .bubble.is-agent", has_text=SIGN_OFF)
    expect(reply).to_have_count(1, timeout=60_000)
    expect(reply.locator("ol li")).to_have_text(RELEASE_PACKET["procedure"][:3])  # markdown: a numbered list
    screenshot(canvas, "skill-use-answer")

    [call] = requests_for(model_server, task)
    system = call.messages[0]
    assert system["role"] == "system"
    section = system["content"].split("## Your Skills", 1)[1]
    assert "### release-checklist\nRelease checklist\n1. Freeze the main branch\n2. Run the smoke suite against staging" in section
    assert f'4. End the answer with "{SIGN_OFF}"' in section
