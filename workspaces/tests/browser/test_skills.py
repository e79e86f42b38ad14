"""The Skills tab (canvas spec §3.4) against the live platform: the agent card's skills, promotion
candidates (Promote / Dismiss) and plugins (install from the registry, uninstall)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from workspaces.tests.browser.conftest import create_workspace, register_online, screenshot
from workspaces.tests.browser.test_panel import open_panel

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
