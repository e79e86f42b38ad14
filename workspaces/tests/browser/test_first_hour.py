"""Issue 12's "done when", walked as a person would: log in at /, deploy the demo team from the
palette, watch it come online, nest and extract a workspace, chat with the PM, see the
delegation on the A2A overlay — all in one page load, without curl.

The team is the shipped ``engineering-team`` org (echo runtime: no model or key), run by the
local provisioner; the PM hands the Dev Lead a first task on its own (its initial prompt), then
delegates again from the chat with the echo runtime's ``/delegate <peer name> <task>``.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from workspaces.tests.browser.conftest import OPERATOR, VIEWPORT, screenshot, wait_until

pytestmark = pytest.mark.slow


def _cards_by_name(admin_api) -> dict[str, dict]:
    return {row["name"]: row for row in admin_api.get("/workspaces").json()}


def _drag(page, workspace_id: str, dx: float, dy: float) -> None:
    head = page.locator(f'.ws-node[data-workspace-id="{workspace_id}"] > .ws-head').bounding_box()
    x, y = head["x"] + 40, head["y"] + head["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=15)
    page.mouse.up()


def test_a_new_operator_deploys_the_demo_team_reorganises_it_and_talks_to_the_pm(browser, platform, admin_api):
    context = browser.new_context(base_url=platform.url, viewport=VIEWPORT)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto("/")
    page.fill("#id_username", OPERATOR[0])
    page.fill("#id_password", OPERATOR[1])
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-canvas-ready]")
    expect(page.locator("#ws-pill")).to_have_text("Live", timeout=10_000)
    page.evaluate("window.__sameDocument = true")  # gone if anything reloads the page

    # Deploy the team from the palette; its cards arrive live, nested as the org chart says.
    page.get_by_title("Template Palette").click()
    section = page.get_by_test_id("org-templates-section")
    section.locator(".org-row", has_text="Engineering Team").get_by_role("button", name="Import org").click()
    page.get_by_role("dialog", name="Import Engineering Team").get_by_role("button", name="Import").click()
    expect(page.locator(".ws-node")).to_have_count(4, timeout=30_000)
    rows = _cards_by_name(admin_api)
    pm, lead, qa = rows["PM"], rows["Dev Lead"], rows["QA"]
    assert page.evaluate("([c, p]) => moleculeCanvas.card(p).contains(moleculeCanvas.card(c))", [qa["id"], lead["id"]])
    expect(page.locator("#palette-toggle")).to_have_attribute("aria-expanded", "false")  # the import closed it

    # Every card goes Starting → online, live.
    for name in ("PM", "Dev Lead", "Backend", "QA"):
        expect(page.locator(f'.ws-node[data-name="{name}"]')).to_have_attribute("data-status", "online", timeout=90_000)
    page.get_by_role("button", name="Fit all workspaces").click()
    screenshot(page, "first-hour-team-online")

    # Extract QA from the Dev Lead's team (dragged well outside it), then nest it back.
    qa_box = page.locator(f'.ws-node[data-workspace-id="{qa["id"]}"]').bounding_box()
    lead_box = page.locator(f'.ws-node[data-workspace-id="{lead["id"]}"]').bounding_box()
    _drag(page, qa["id"], lead_box["x"] + lead_box["width"] + 120 - qa_box["x"], 0)
    page.get_by_role("dialog", name="Extract Workspace").get_by_role("button", name="Extract").click()
    wait_until(lambda: admin_api.get(f"/workspaces/{qa['id']}").json()["parent_id"] is None, what="QA at the root")
    qa_box = page.locator(f'.ws-node[data-workspace-id="{qa["id"]}"]').bounding_box()
    lead_box = page.locator(f'.ws-node[data-workspace-id="{lead["id"]}"]').bounding_box()
    # drop QA's centre on the Dev Lead's header band
    target_x, target_y = lead_box["x"] + lead_box["width"] / 2, lead_box["y"] + 40
    centre_x, centre_y = qa_box["x"] + qa_box["width"] / 2, qa_box["y"] + qa_box["height"] / 2
    _drag(page, qa["id"], target_x - centre_x, target_y - centre_y)
    nest = page.get_by_role("dialog", name="Nest Workspace")
    expect(nest).to_contain_text('Move "QA" inside "Dev Lead"?')
    nest.get_by_role("button", name="Nest").click()
    wait_until(lambda: admin_api.get(f"/workspaces/{qa['id']}").json()["parent_id"] == lead["id"], what="QA back in the team")

    # Nobody has messaged the team yet: the PM's initial prompt has handed the Dev Lead a first
    # task, which the A2A overlay draws as one call.
    edge = page.locator(f'#edges path.a2a-edge[data-source="{pm["id"]}"][data-target="{lead["id"]}"]')
    calls = page.locator(f'#edges .a2a-label[data-source="{pm["id"]}"][data-target="{lead["id"]}"]')
    expect(edge).to_have_count(1, timeout=120_000)
    expect(calls).to_have_text(re.compile(r"^1 call · "))

    # Chat with the PM: it answers, and its delegation to the Dev Lead (by name) is the pair's second call.
    page.locator(f'.ws-node[data-workspace-id="{pm["id"]}"] > .ws-head').click()
    page.locator("#tab-chat").click()
    composer = page.locator("#panel-chat textarea")
    composer.fill("/delegate Dev Lead Plan the release notes")
    composer.press("Enter")
    reply = page.locator("#panel-chat .bubble.is-agent").last
    expect(reply).to_contain_text("specialist: Plan the release notes", timeout=60_000)
    expect(edge).to_have_count(1)
    expect(calls).to_have_text(re.compile(r"^2 calls · "), timeout=30_000)
    screenshot(page, "first-hour-chat-and-overlay")

    assert page.evaluate("window.__sameDocument === true"), "the page reloaded"
    assert errors == []
    context.close()
