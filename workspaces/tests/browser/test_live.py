"""The canvas follows the platform live (canvas spec §5, §1.4, §1.1): changes made elsewhere — the API,
a runtime, the Django admin — show without a reload, the socket comes back by itself, and the
pictures (A2A edges, sparklines, minimap) are drawn from real activity."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from workspaces.tests.browser.conftest import create_workspace, register_online, screenshot


def card(page, workspace_id):
    return page.locator(f'.ws-node[data-workspace-id="{workspace_id}"]')


def beat(admin_api, workspace_id, **fields):
    response = admin_api.post("/registry/heartbeat", json={"workspace_id": workspace_id, **fields})
    assert response.status_code == 200, response.text


def test_workspaces_started_elsewhere_come_online_live_and_their_delegation_is_drawn(canvas, admin_api):
    created = admin_api.post("/workspaces", json={"name": "Lead", "template": "demo-pm"})
    assert created.status_code == 201, created.text
    lead = created.json()["id"]
    created = admin_api.post("/workspaces", json={"name": "Scout", "template": "demo-specialist", "parent_id": lead})
    assert created.status_code == 201, created.text
    scout_id = created.json()["id"]
    scout = card(canvas, scout_id)
    expect(scout).to_be_visible(timeout=5_000)
    assert card(canvas, lead).locator(f'[data-workspace-id="{scout_id}"]').count() == 1  # nested in its team
    label = scout.locator(".ws-status-label")
    expect(label).to_have_text("Starting")
    assert label.evaluate("el => getComputedStyle(el).textTransform") == "uppercase"  # reads STARTING
    expect(scout.locator(".ws-dot")).to_have_css("background-color", "rgb(56, 189, 248)")  # sky
    # The echo runtimes start on the local provisioner and register themselves.
    for ws in (lead, scout_id):
        expect(card(canvas, ws)).to_have_class(re.compile(r"\bstatus-online\b"), timeout=60_000)
    expect(label).to_have_text("")
    expect(scout.locator(".ws-dot")).to_have_css("background-color", "rgb(52, 211, 153)")  # emerald
    assert scout.get_attribute("aria-label") == "Scout workspace — Online"
    expect(scout.locator(".ws-runtime")).to_have_text("echo")
    # The lead's runtime delegates to the scout through the platform's A2A proxy.
    message = {"role": "user", "messageId": "m-1", "parts": [{"kind": "text", "text": f"/delegate {scout_id} map the market"}]}
    answer = admin_api.post(f"/workspaces/{lead}/a2a", json={"jsonrpc": "2.0", "id": "1", "method": "message/send",
                                                              "params": {"message": message}}, timeout=60)
    assert answer.status_code == 200 and "specialist: map the market" in answer.text, answer.text
    edge = canvas.locator(f'#edges path.a2a-edge.is-recent[data-source="{lead}"][data-target="{scout_id}"]')
    expect(edge).to_have_count(1, timeout=10_000)
    expect(canvas.locator(f'#edges .a2a-label[data-source="{lead}"]')).to_have_text(re.compile(r"^1 call · "))


def test_a_heartbeat_shows_the_task_the_busy_count_and_the_sparkline(canvas, admin_api):
    ws = create_workspace(admin_api, "Writer")
    register_online(admin_api, ws["id"])
    writer = card(canvas, ws["id"])
    expect(writer).to_have_class(re.compile(r"\bstatus-online\b"))
    spark = writer.locator(".ws-spark")
    expect(spark).to_be_hidden()
    beat(admin_api, ws["id"], active_tasks=2, current_task="Drafting the launch notes")
    expect(writer.locator(".ws-task")).to_be_visible()
    expect(writer.locator(".ws-task-text")).to_have_text("Drafting the launch notes")
    expect(writer.locator(".ws-busy")).to_have_text("2 tasks")
    for tasks in (3, 1):
        beat(admin_api, ws["id"], active_tasks=tasks, current_task="Drafting the launch notes")
    expect(spark).to_have_attribute("data-load", "2,3,1")
    expect(spark).to_be_visible()
    assert len(spark.locator("polyline").get_attribute("points").split()) == 3
    # A fresh page draws the same samples (kept by the heartbeats on the server).
    canvas.reload()
    canvas.wait_for_selector("#ws-pill.is-live")
    expect(spark).to_have_attribute("data-load", "2,3,1")
    expect(spark.locator("polyline")).to_have_count(1)
    screenshot(canvas, "sparkline")
    beat(admin_api, ws["id"], active_tasks=0, current_task="")
    expect(writer.locator(".ws-task")).to_be_hidden()
    expect(writer.locator(".ws-busy")).to_be_hidden()
    expect(spark).to_have_attribute("data-load", "2,3,1,0")


def test_removals_renames_moves_and_re_parents_made_through_the_api_show_without_a_reload(canvas, admin_api):
    team = create_workspace(admin_api, "Platform Team")
    member = create_workspace(admin_api, "Release Bot", parent_id=team["id"])
    loner = create_workspace(admin_api, "Loner", canvas={"x": 700, "y": 100})  # no position for the page to save
    expect(card(canvas, member["id"])).to_be_visible()
    # The member's element is inside its team's, as the server renders it.
    assert card(canvas, team["id"]).locator(f'[data-workspace-id="{member["id"]}"]').count() == 1

    admin_api.patch(f"/workspaces/{loner['id']}", json={"name": "Lone Ranger", "role": "Keeps to itself"})
    expect(card(canvas, loner["id"]).locator(".ws-name")).to_have_text("Lone Ranger")
    expect(card(canvas, loner["id"]).locator(".ws-role")).to_have_text("Keeps to itself")

    admin_api.patch(f"/workspaces/{loner['id']}", json={"x": 900, "y": 620})
    expect(card(canvas, loner["id"])).to_have_attribute("data-x", "900")

    admin_api.patch(f"/workspaces/{loner['id']}", json={"parent_id": team["id"]})
    expect(card(canvas, team["id"]).locator(f'[data-workspace-id="{loner["id"]}"]')).to_have_count(1)
    expect(card(canvas, team["id"]).locator(".ws-sub")).to_have_text("2 sub")

    admin_api.delete(f"/workspaces/{loner['id']}")
    expect(card(canvas, loner["id"])).to_have_count(0)
    expect(card(canvas, team["id"]).locator(".ws-sub")).to_have_text("1 sub")

    admin_api.delete(f"/workspaces/{team['id']}", params={"confirm": "true"})
    expect(canvas.locator(".ws-node")).to_have_count(0)
    expect(canvas.locator("#sr-status")).to_have_text("No workspaces on canvas")


def test_a_change_made_in_the_django_admin_shows_on_the_canvas(canvas, admin_api, context):
    ws = create_workspace(admin_api, "Support Desk")
    expect(card(canvas, ws["id"])).to_be_visible()
    admin = context.new_page()  # same context: the operator's session
    admin.goto(f"/django-admin/workspaces/workspace/{ws['id']}/change/")
    admin.fill("#id_name", "Customer Care")
    admin.select_option("#id_tier", "4")
    admin.click("input[name=_save]")
    admin.wait_for_url(re.compile(r"/django-admin/workspaces/workspace/($|\?)"))
    admin.close()
    expect(card(canvas, ws["id"]).locator(".ws-name")).to_have_text("Customer Care")
    expect(card(canvas, ws["id"]).locator(".ws-tier")).to_have_text("T4")


def test_the_socket_reconnects_and_catches_up_on_what_it_missed(canvas, admin_api):
    ws = create_workspace(admin_api, "Night Shift")
    expect(card(canvas, ws["id"])).to_be_visible()
    pill = canvas.locator("#ws-pill")
    expect(pill).to_have_text("Live")
    # Close the socket from the page, as a network drop would, and wait until the page knows.
    canvas.evaluate("""() => new Promise((resolve) => {
        const socket = window.moleculeCanvas.live.socket;
        socket.addEventListener("close", () => setTimeout(resolve));
        socket.close();
    })""")
    expect(pill).to_have_class(re.compile(r"\bis-connecting\b"))
    expect(pill).to_have_text("Reconnecting")
    admin_api.patch(f"/workspaces/{ws['id']}", json={"name": "Day Shift"})
    later = create_workspace(admin_api, "Made While Away")
    assert canvas.evaluate("() => window.moleculeCanvas.live.status") == "connecting", "reconnected too early"
    expect(pill).to_have_class(re.compile(r"\bis-live\b"), timeout=10_000)
    expect(pill).to_have_text("Live")
    expect(canvas.locator(".toast", has_text="Live updates restored")).to_be_visible()
    expect(card(canvas, ws["id"]).locator(".ws-name")).to_have_text("Day Shift")
    expect(card(canvas, later["id"])).to_be_visible()


def test_the_a2a_overlay_draws_delegations_between_cards_and_can_be_turned_off(canvas, admin_api, page_errors):
    pm = create_workspace(admin_api, "Project Manager", role="Plans and delegates", canvas={"x": 120, "y": 140})
    dev = create_workspace(admin_api, "Developer", role="Builds features", parent_id=pm["id"])
    qa = create_workspace(admin_api, "QA Engineer", role="Tests releases", parent_id=pm["id"])
    ops = create_workspace(admin_api, "Ops", role="Runs production", canvas={"x": 820, "y": 160})
    for ws in (pm, dev, qa, ops):
        register_online(admin_api, ws["id"])
    expect(card(canvas, ops["id"])).to_have_class(re.compile(r"\bstatus-online\b"))
    for source, target, times in ((pm, dev, 2), (pm, qa, 1), (dev, ops, 1)):
        for n in range(times):
            response = admin_api.post(f"/workspaces/{source['id']}/delegate",
                                      json={"target_id": target["id"], "task": f"Task {n} for {target['id'][:4]}"})
            assert response.status_code == 202, response.text
    edge = canvas.locator(f'#edges path.a2a-edge[data-source="{pm["id"]}"][data-target="{dev["id"]}"]')
    expect(edge).to_have_count(1, timeout=10_000)
    expect(canvas.locator("#edges .a2a-edge")).to_have_count(3)
    assert "is-recent" in edge.get_attribute("class")
    assert edge.get_attribute("marker-end") == "url(#a2a-arrow-recent)"
    label = canvas.locator(f'#edges .a2a-label[data-source="{pm["id"]}"][data-target="{dev["id"]}"]')
    expect(label).to_have_text(re.compile(r"^2 calls · (just now|\d+s ago)$"))
    assert canvas.locator("#edges").evaluate("el => getComputedStyle(el).pointerEvents") == "none"
    canvas.click('[data-action="zoom-fit"]')
    canvas.wait_for_timeout(300)  # let the dashes run: the screenshot shows them mid-flow
    screenshot(canvas, "a2a-overlay")

    toggle = canvas.locator("#a2a-toggle")
    expect(toggle).to_have_attribute("aria-pressed", "true")
    assert toggle.get_attribute("title") == "A2A edges"
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(edge).to_be_hidden()
    canvas.reload()
    canvas.wait_for_selector("#ws-pill.is-live")
    expect(canvas.locator("#a2a-toggle")).to_have_attribute("aria-pressed", "false")
    canvas.locator("#a2a-toggle").click()
    expect(edge).to_be_visible()
    page_errors.check()


def test_the_minimap_shows_the_org_and_moves_the_view(canvas, admin_api):
    create_workspace(admin_api, "North", canvas={"x": 100, "y": 100})
    create_workspace(admin_api, "South", canvas={"x": 2200, "y": 1600})
    canvas.reload()
    canvas.wait_for_selector("#ws-pill.is-live")
    minimap = canvas.locator("#minimap canvas")
    expect(minimap).to_be_visible()
    box = minimap.bounding_box()
    assert (round(box["width"]), round(box["height"])) == (200, 140)
    screenshot(canvas, "minimap")
    # Something is drawn: a card's status colour (awaiting agent: violet) somewhere on the map.
    coloured = minimap.evaluate("""(el) => {
        const data = el.getContext("2d").getImageData(0, 0, el.width, el.height).data;
        let n = 0;
        const near = (i, r, g, b) => Math.abs(data[i] - r) < 4 && Math.abs(data[i + 1] - g) < 4 && Math.abs(data[i + 2] - b) < 4;
        for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 100 && near(i, 167, 139, 250)) n++;
        return n;
    }""")
    assert coloured > 0
    before = canvas.evaluate("() => ({ ...window.moleculeCanvas.view })")
    canvas.mouse.click(box["x"] + box["width"] - 12, box["y"] + box["height"] - 12)
    after = canvas.evaluate("() => ({ ...window.moleculeCanvas.view })")
    assert after["zoom"] == before["zoom"]
    assert after["x"] < before["x"] and after["y"] < before["y"]  # moved toward the south-east card


JS = Path(__file__).resolve().parents[3] / "static" / "canvas" / "js"
HELPERS_PAGE = ('<!doctype html><title>overlay</title><script type="module">import * as overlay from "/overlay.js";'
                ' window.overlay = overlay; document.body.dataset.ready = "1";</script><body></body>')


def test_the_overlay_s_pure_helpers(page):
    """Labels, edge geometry and sparkline points (static/canvas/js/overlay.js), served from the
    working tree under a made-up origin."""
    def serve(route):
        name = route.request.url.rsplit("/", 1)[-1]
        if name.endswith(".js"):
            route.fulfill(status=200, content_type="text/javascript", body=(JS / name).read_text())
        else:
            route.fulfill(status=200, content_type="text/html", body=HELPERS_PAGE)

    page.route("http://overlay.test/**", serve)
    page.goto("http://overlay.test/")
    page.wait_for_selector("body[data-ready]", state="attached")

    def call(expression):
        return page.evaluate(f"() => {{ const o = window.overlay; return {expression}; }}")

    assert call("[o.edgeLabel(1, 4), o.edgeLabel(3, 45), o.edgeLabel(2, 125), o.edgeLabel(9, 7300)]") == [
        "1 call · just now", "3 calls · 45s ago", "2 calls · 2m ago", "9 calls · 2h ago"]
    box = "{x: 0, y: 0, w: 100, h: 50}"
    assert call(f"o.borderPoint({box}, {{x: 300, y: 25}})") == {"x": 100, "y": 25}
    assert call(f"o.borderPoint({box}, {{x: 50, y: -200}})") == {"x": 50, "y": 0}
    # Between two cards side by side: from the right edge of one to the left edge of the other,
    # and the way back bends the other way (the two edges of a pair do not overlap).
    there = call(f"o.edgeGeometry({box}, {{x: 300, y: 0, w: 100, h: 50}})")
    back = call(f"o.edgeGeometry({{x: 300, y: 0, w: 100, h: 50}}, {box})")
    assert (there["p1"], there["p2"]) == ({"x": 100, "y": 25}, {"x": 300, "y": 25})
    assert there["mid"]["y"] > 25 > back["mid"]["y"]
    # A team's edge to a member on its right half leaves from its right side, loops outside it
    # and comes back in to the member's right side; one on the left half uses the left side.
    team, right, left = "{x: 0, y: 0, w: 500, h: 400}", "{x: 260, y: 130, w: 240, h: 130}", "{x: 16, y: 130, w: 240, h: 130}"
    to_right = call(f"o.nestedEdgeGeometry({team}, {right}, true)")
    assert to_right["p1"] == {"x": 500, "y": 44} and to_right["p2"] == {"x": 500, "y": 195}
    assert to_right["mid"]["x"] > 500
    from_left = call(f"o.nestedEdgeGeometry({team}, {left}, false)")
    assert from_left["p1"]["x"] == 16 and from_left["p2"]["x"] == 0 and from_left["mid"]["x"] < 0
    # Sparkline: the samples spread over the width, the peak at the top, zero at the bottom.
    assert call("o.sparkPoints([0, 2, 1])") == [[0, 12.5], [30, 1.5], [60, 7]]
    assert call("o.sparkPoints([0, 0])") == [[0, 12.5], [60, 12.5]]
