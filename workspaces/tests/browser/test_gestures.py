"""Gestures on the canvas (canvas spec §2.3–§2.11, scenarios 4–8 and 12 of §7.3, §6's
context-menu delete): drag, nest, extract, the context menu, delete, collapse, keyboard, ⌘K.

Cards are dragged with the real mouse in small steps; every outcome is checked in the page, in
the platform API and again after a reload (the server's rendering is the proof it was saved).
"""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect

from workspaces.tests.browser.conftest import create_workspace, register_online, screenshot, wait_until

CYCLE_ERROR = {"error": "parent_id would create a cycle in the workspace hierarchy"}


# --- helpers ------------------------------------------------------------------------------------

@pytest.fixture
def canvas(page, page_errors):
    """The test's page (failing on page errors, as conftest's), opened by ``load`` only once the
    test has built its org: a canvas open while a team is created one call at a time lays out the
    half-made team and saves the positions it computed for it."""
    return page


def set_view(admin_api, x, y, zoom):
    """A saved viewport other than the default (0, 0, 1), which the page would replace by a fit."""
    assert admin_api.put("/canvas/viewport", json={"x": x, "y": y, "zoom": zoom}).status_code == 200


def load(page):
    page.goto("/")
    page.wait_for_selector("body[data-canvas-ready]")
    page.wait_for_selector("#ws-pill.is-live", timeout=10_000)


def card(page, workspace_id):
    return page.locator(f'.ws-node[data-workspace-id="{workspace_id}"]')


def abs_pos(page, workspace_id):
    return page.evaluate("id => { const c = moleculeCanvas; const p = c.absPos(c.card(id)); return [p.x, p.y]; }", workspace_id)


def api_row(admin_api, workspace_id):
    return admin_api.get(f"/workspaces/{workspace_id}").json()


def api_pos(admin_api, workspace_id):
    row = api_row(admin_api, workspace_id)
    return [row["x"], row["y"]]


def grab_point(page, workspace_id):
    """A point on the card's own header (not on a child card)."""
    box = card(page, workspace_id).locator(":scope > .ws-head").bounding_box()
    return box["x"] + 40, box["y"] + box["height"] / 2


def press_and_move(page, workspace_id, dx, dy):
    x, y = grab_point(page, workspace_id)
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + dx, y + dy, steps=12)


def drag(page, workspace_id, dx, dy):
    press_and_move(page, workspace_id, dx, dy)
    page.mouse.up()


def is_inside(page, child_id, parent_id):
    return page.evaluate(
        "([c, p]) => moleculeCanvas.card(p).querySelector(':scope > .ws-children').contains(moleculeCanvas.card(c))",
        [child_id, parent_id])


def is_root(page, workspace_id):
    return page.evaluate("id => moleculeCanvas.card(id).parentElement.id === 'cards'", workspace_id)


def record_selects(page):
    page.evaluate("window.selects = []; moleculeCanvas.on('select', (d) => window.selects.push(d))")


def build_team(admin_api):
    """Platform (root) → Backend (with the grandchild Database) and Frontend, at grid slots."""
    root = create_workspace(admin_api, "Platform", role="Owns the platform", canvas={"x": 120, "y": 140})
    backend = create_workspace(admin_api, "Backend", role="APIs and data", parent_id=root["id"], canvas={"x": 136, "y": 270})
    database = create_workspace(admin_api, "Database", role="Schemas, migrations", parent_id=backend["id"], canvas={"x": 152, "y": 400})
    frontend = create_workspace(admin_api, "Frontend", role="The web app", parent_id=root["id"], canvas={"x": 510, "y": 270})
    return root["id"], backend["id"], frontend["id"], database["id"]


# --- §2.3 drag to move ------------------------------------------------------------------------------

def test_a_dragged_card_keeps_its_absolute_position_and_a_child_stays_inside(canvas, admin_api):
    root, backend, frontend, database = build_team(admin_api)
    register_online(admin_api, frontend)
    set_view(admin_api, 40, 30, 0.8)
    load(canvas)
    assert is_inside(canvas, database, backend) and is_inside(canvas, backend, root)
    assert card(canvas, root).locator(":scope > .ws-head .ws-sub").inner_text() == "3 sub"
    screenshot(canvas, "team-3-levels")

    # 160×80 screen pixels at zoom 0.8 are 200×100 on the canvas; the whole team moves
    drag(canvas, root, 160, 80)
    wait_until(lambda: api_pos(admin_api, root) == [320, 240], what="the root's new position saved")
    wait_until(lambda: api_pos(admin_api, database) == [352, 500], what="the grandchild's absolute position saved")
    wait_until(lambda: api_pos(admin_api, frontend) == [710, 370], what="the other child's absolute position saved")
    assert canvas.evaluate("moleculeCanvas.selectedId") is None  # a drag is not a click
    load(canvas)
    assert abs_pos(canvas, root) == [320, 240]
    assert abs_pos(canvas, database) == [352, 500]
    assert is_inside(canvas, database, backend)

    # Frontend (flush with its parent's right padding) released 10 % beyond its right edge is
    # put back inside, and the parent did not have to grow
    start = abs_pos(canvas, frontend)
    drag(canvas, frontend, 32, -16)
    expected = [start[0], start[1] - 20]
    wait_until(lambda: abs_pos(canvas, frontend) == expected, what="the child clamped inside")
    assert canvas.evaluate("id => moleculeCanvas.size(moleculeCanvas.card(id)).w", root) == 646
    wait_until(lambda: api_pos(admin_api, frontend) == expected, what="the clamped position saved")
    assert api_row(admin_api, frontend)["parent_id"] == root
    expect(canvas.get_by_role("dialog")).to_have_count(0)


# --- §2.4 drag to nest --------------------------------------------------------------------------------

def test_dropping_a_card_on_another_asks_to_nest_it_and_cancel_puts_it_back(canvas, admin_api):
    alpha = create_workspace(admin_api, "Alpha", role="Writes the drafts", canvas={"x": 100, "y": 120})["id"]
    beta = create_workspace(admin_api, "Beta", role="Edits and publishes", canvas={"x": 520, "y": 120})["id"]
    register_online(admin_api, beta)
    set_view(admin_api, 20, 40, 1)
    load(canvas)

    press_and_move(canvas, alpha, 380, 40)  # Alpha's centre over Beta, Beta still in sight
    badge = canvas.locator("#drop-badge")
    expect(badge).to_be_visible()
    expect(badge).to_have_text("Drop into: Beta")
    assert "is-drop-target" in card(canvas, beta).get_attribute("class")
    expect(card(canvas, beta).locator(".drop-ghost")).to_be_visible()
    screenshot(canvas, "mid-drag")
    canvas.mouse.up()

    dialog = canvas.get_by_role("dialog", name="Nest Workspace")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text('Move "Alpha" inside "Beta"? This changes the org hierarchy — Alpha will become a sub-workspace of Beta.')
    expect(badge).to_be_hidden()
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    wait_until(lambda: abs_pos(canvas, alpha) == [100, 120], what="Alpha back where the drag started")
    assert is_root(canvas, alpha)
    assert "is-drop-target" not in card(canvas, beta).get_attribute("class")
    assert api_row(admin_api, alpha)["parent_id"] is None
    assert api_pos(admin_api, alpha) == [100, 120]

    drag(canvas, alpha, 420, 0)
    canvas.get_by_role("dialog", name="Nest Workspace").get_by_role("button", name="Nest").click()
    wait_until(lambda: is_inside(canvas, alpha, beta), what="Alpha's element inside Beta's")
    # at the first slot of Beta's grid; Beta grew to hold it and counts it
    assert abs_pos(canvas, alpha) == [520 + 16, 120 + 130]
    assert canvas.evaluate("id => moleculeCanvas.size(moleculeCanvas.card(id))", beta) == {"w": 360, "h": 276}
    assert card(canvas, beta).locator(":scope > .ws-head .ws-sub").inner_text() == "1 sub"
    assert card(canvas, alpha).get_attribute("data-parent-id") == beta
    wait_until(lambda: api_row(admin_api, alpha)["parent_id"] == beta, what="the parent saved")
    assert api_pos(admin_api, alpha) == [536, 250]

    load(canvas)
    assert is_inside(canvas, alpha, beta)
    assert abs_pos(canvas, alpha) == [536, 250]


def test_a_refused_nest_is_rolled_back(canvas, admin_api):
    alpha = create_workspace(admin_api, "Alpha", canvas={"x": 100, "y": 120})["id"]
    beta = create_workspace(admin_api, "Beta", canvas={"x": 520, "y": 120})["id"]
    set_view(admin_api, 20, 40, 1)
    load(canvas)
    # the platform refuses the re-parent (as it would for a workspace deleted meanwhile)
    canvas.route(f"**/workspaces/{alpha}", lambda route: route.fulfill(
        status=404, content_type="application/json", body='{"error": "workspace not found"}')
        if route.request.method == "PATCH" else route.continue_())
    drag(canvas, alpha, 420, 0)
    canvas.get_by_role("dialog", name="Nest Workspace").get_by_role("button", name="Nest").click()
    expect(canvas.get_by_role("alert").filter(has_text='Could not re-parent "Alpha": workspace not found')).to_be_visible()
    assert is_root(canvas, alpha)
    assert abs_pos(canvas, alpha) == [100, 120]
    assert card(canvas, beta).locator(".ws-sub").count() == 0
    assert canvas.evaluate("id => moleculeCanvas.size(moleculeCanvas.card(id))", beta) == {"w": 240, "h": 130}


def test_a_multi_selection_dragged_onto_a_card_is_nested_together(canvas, admin_api):
    alpha = create_workspace(admin_api, "Alpha", canvas={"x": 100, "y": 100})["id"]
    beta = create_workspace(admin_api, "Beta", canvas={"x": 100, "y": 300})["id"]
    hub = create_workspace(admin_api, "Hub", canvas={"x": 600, "y": 100})["id"]
    set_view(admin_api, 20, 20, 1)
    load(canvas)
    for ws in (alpha, beta):
        card(canvas, ws).locator(":scope > .ws-head").click(modifiers=["Shift"])
    assert canvas.evaluate("[...moleculeCanvas.batch].length") == 2
    press_and_move(canvas, alpha, 500, 20)
    assert abs_pos(canvas, beta)[0] > 550  # the selection moves as one
    canvas.mouse.up()
    dialog = canvas.get_by_role("dialog", name="Nest Workspace")
    expect(dialog).to_contain_text('Move 2 workspaces inside "Hub"?')
    assert dialog.locator("[data-confirm-list] li").all_inner_texts() == ["Alpha", "Beta"]
    dialog.get_by_role("button", name="Nest").click()
    wait_until(lambda: is_inside(canvas, alpha, hub) and is_inside(canvas, beta, hub), what="both nested")
    assert sorted([abs_pos(canvas, alpha), abs_pos(canvas, beta)]) == [[616, 230], [870, 230]]  # the first two slots
    wait_until(lambda: {api_row(admin_api, ws)["parent_id"] for ws in (alpha, beta)} == {hub}, what="both saved")
    load(canvas)
    assert is_inside(canvas, alpha, hub) and is_inside(canvas, beta, hub)


# --- §2.4 extract, cycles ----------------------------------------------------------------------------------

def test_a_child_dragged_out_is_extracted_and_a_parent_cannot_go_into_its_own_team(canvas, admin_api):
    parent = create_workspace(admin_api, "Parent", canvas={"x": 100, "y": 100})["id"]
    child = create_workspace(admin_api, "Child", parent_id=parent, canvas={"x": 116, "y": 230})["id"]
    grandchild = create_workspace(admin_api, "Grandchild", parent_id=child, canvas={"x": 132, "y": 360})["id"]
    set_view(admin_api, 20, 20, 1)
    load(canvas)

    # The parent's centre starts over its child: its own team is never a drop target.
    press_and_move(canvas, parent, 20, 10)
    assert canvas.locator(".ws-node.is-drop-target").count() == 0
    expect(canvas.locator("#drop-badge")).to_be_hidden()
    canvas.mouse.up()
    expect(canvas.get_by_role("dialog")).to_have_count(0)
    wait_until(lambda: api_pos(admin_api, parent) == [120, 110], what="a plain move")
    # …and the platform refuses the cycle the UI cannot make
    for new_parent in (grandchild, child, parent):
        answer = admin_api.patch(f"/workspaces/{parent}", json={"parent_id": new_parent})
        assert (answer.status_code, answer.json()) == (400, CYCLE_ERROR)
    assert api_row(admin_api, parent)["parent_id"] is None

    child_start = abs_pos(canvas, child)
    press_and_move(canvas, child, 600, 0)
    expect(canvas.locator("#drop-badge")).to_have_text("Extract from: Parent")
    canvas.mouse.up()
    dialog = canvas.get_by_role("dialog", name="Extract Workspace")
    expect(dialog).to_contain_text('Extract "Child" from "Parent"? This moves it to the root level.')
    dialog.get_by_role("button", name="Extract").click()
    wait_until(lambda: is_root(canvas, child), what="Child at the root level")
    target = [child_start[0] + 600, child_start[1]]
    assert abs_pos(canvas, child) == target  # where it was dropped
    wait_until(lambda: api_row(admin_api, child)["parent_id"] is None, what="the extract saved")
    assert api_pos(admin_api, child) == target
    wait_until(lambda: api_pos(admin_api, grandchild) == [target[0] + 16, target[1] + 130], what="the grandchild followed")
    assert card(canvas, parent).locator(".ws-sub").count() == 0

    load(canvas)
    assert is_root(canvas, child) and is_inside(canvas, grandchild, child)
    assert abs_pos(canvas, child) == target


# --- §2.8 context menu ---------------------------------------------------------------------------------------

# The visible items as [label, aria-disabled] (a shortcut hint is aria-hidden, not in the label).
MENU_ITEMS = """() => [...document.querySelectorAll('#ctx-menu [role=menuitem]')].filter(i => !i.hidden).map(i => [
    [...i.childNodes].filter(n => n.nodeType === 3 || !n.hasAttribute('aria-hidden')).map(n => n.textContent).join('').trim(),
    i.getAttribute('aria-disabled')])"""


def test_the_context_menu_lists_actions_by_kind_and_status_and_is_keyboard_driven(canvas, admin_api):
    lead = create_workspace(admin_api, "Lead", canvas={"x": 100, "y": 100})["id"]
    worker = create_workspace(admin_api, "Worker", parent_id=lead, canvas={"x": 116, "y": 230})["id"]
    register_online(admin_api, lead)
    register_online(admin_api, worker)
    set_view(admin_api, 20, 20, 1)
    load(canvas)
    record_selects(canvas)

    card(canvas, lead).locator(":scope > .ws-head").click(button="right")
    menu = canvas.get_by_role("menu", name="Actions for Lead")
    expect(menu).to_be_visible()
    assert menu.locator(".ctx-head").inner_text().split() == ["Lead", "ONLINE"]
    assert canvas.evaluate(MENU_ITEMS) == [
        ["Details", "false"], ["Chat", "false"], ["Terminal", "false"], ["Export Bundle", "false"], ["Duplicate", "false"],
        ["Arrange Children", "false"], ["Collapse Team", "false"], ["Zoom to Team", "false"],
        ["Pause", "false"], ["Restart", "true"], ["Delete", "false"],
    ]
    expect(menu.get_by_role("menuitem", name="Details")).to_be_focused()
    canvas.keyboard.press("ArrowDown")
    expect(menu.get_by_role("menuitem", name="Chat")).to_be_focused()
    canvas.keyboard.press("ArrowUp")
    canvas.keyboard.press("ArrowUp")  # wraps to the last item
    expect(menu.get_by_role("menuitem", name="Delete")).to_be_focused()
    screenshot(canvas, "context-menu")
    menu.get_by_role("menuitem", name="Restart").click(force=True)  # disabled: nothing happens
    expect(menu).to_be_visible()
    canvas.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(card(canvas, lead)).to_be_focused()
    assert canvas.evaluate("moleculeCanvas.selectedId") is None  # Esc closed only the menu

    # The keyboard opens it too; a child offers Extract and Expand to Team instead of team items.
    card(canvas, worker).focus()
    canvas.keyboard.press("Shift+F10")
    menu = canvas.get_by_role("menu", name="Actions for Worker")
    expect(menu).to_be_visible()
    assert [name for name, _ in canvas.evaluate(MENU_ITEMS)] == [
        "Details", "Chat", "Terminal", "Export Bundle", "Duplicate", "Extract from Team", "Expand to Team", "Pause", "Restart", "Delete"]
    menu.get_by_role("menuitem", name="Details").click()
    assert canvas.evaluate("[moleculeCanvas.selectedId, window.selects.at(-1).tab]") == [worker, "details"]

    # Pause: the card turns paused at once, the platform agrees; then the menu offers Resume.
    card(canvas, worker).click(button="right")
    canvas.get_by_role("menuitem", name="Pause").click()
    expect(card(canvas, worker)).to_have_attribute("data-status", "paused")
    wait_until(lambda: api_row(admin_api, worker)["status"] == "paused", what="the workspace paused")
    card(canvas, worker).click(button="right")
    items = dict(canvas.evaluate(MENU_ITEMS))
    assert "Pause" not in items and items["Resume"] == "false" and items["Restart"] == "false"
    assert items["Chat"] == "true" and items["Terminal"] == "true"  # both need the workspace online
    canvas.keyboard.press("Escape")

    # Chat selects the card on the chat tab
    card(canvas, lead).locator(":scope > .ws-head").click(button="right")
    canvas.get_by_role("menuitem", name="Chat").click()
    assert canvas.evaluate("[moleculeCanvas.selectedId, window.selects.at(-1).tab]") == [lead, "chat"]

    # Terminal selects it on the terminal tab
    card(canvas, lead).locator(":scope > .ws-head").click(button="right")
    canvas.get_by_role("menuitem", name="Terminal").click()
    assert canvas.evaluate("[moleculeCanvas.selectedId, window.selects.at(-1).tab]") == [lead, "terminal"]
    expect(canvas.locator("#tab-terminal")).to_have_attribute("aria-selected", "true")


def test_export_downloads_the_bundle_and_duplicate_imports_it_again(canvas, admin_api):
    ws = create_workspace(admin_api, "SEO Agent", role="Ranks pages", canvas={"x": 100, "y": 100})["id"]
    set_view(admin_api, 20, 20, 1)
    load(canvas)
    card(canvas, ws).click(button="right")
    with canvas.expect_download() as download:
        canvas.get_by_role("menuitem", name="Export Bundle").click()
    assert download.value.suggested_filename == "seo-agent.bundle.json"
    expect(canvas.locator(".toast").filter(has_text="Bundle exported")).to_be_visible()
    with open(download.value.path()) as handle:
        bundle = json.load(handle)
    assert (bundle["id"], bundle["name"], bundle["description"]) == (ws, "SEO Agent", "Ranks pages")

    # Duplicate = that bundle imported again: a second SEO Agent card, without a reload
    card(canvas, ws).click(button="right")
    canvas.get_by_role("menuitem", name="Duplicate").click()
    expect(canvas.locator(".ws-node", has_text="SEO Agent")).to_have_count(2)
    rows = [row for row in admin_api.get("/workspaces").json() if row["name"] == "SEO Agent"]
    assert len(rows) == 2 and {row["role"] for row in rows} == {"Ranks pages"}


def test_the_menu_arranges_a_team_by_name_and_extracts_a_child_beside_it(canvas, admin_api):
    team = create_workspace(admin_api, "Team", canvas={"x": 100, "y": 100})["id"]
    # stored out of order and off the grid (but touching the team's box)
    zed = create_workspace(admin_api, "Zed", parent_id=team, canvas={"x": 130, "y": 240})["id"]
    amy = create_workspace(admin_api, "Amy", parent_id=team, canvas={"x": 420, "y": 260})["id"]
    max_ = create_workspace(admin_api, "Max", parent_id=team, canvas={"x": 200, "y": 420})["id"]
    set_view(admin_api, 20, 20, 0.9)
    load(canvas)
    card(canvas, team).locator(":scope > .ws-head").click(button="right")
    canvas.get_by_role("menuitem", name="Arrange Children").click()
    slots = {amy: [116, 230], max_: [370, 230], zed: [116, 374]}  # 2 columns, by name
    for ws, at in slots.items():
        wait_until(lambda ws=ws, at=at: api_pos(admin_api, ws) == at, what="arranged position saved")
        assert abs_pos(canvas, ws) == at
    load(canvas)
    assert {ws: abs_pos(canvas, ws) for ws in slots} == slots

    card(canvas, max_).click(button="right")
    canvas.get_by_role("menuitem", name="Extract from Team").click()
    expect(canvas.locator(".toast").filter(has_text="Extracted from team")).to_be_visible()
    assert is_root(canvas, max_)
    team_right = 100 + canvas.evaluate("id => moleculeCanvas.size(moleculeCanvas.card(id)).w", team)
    assert abs_pos(canvas, max_) == [team_right + 40, 230]  # beside the team, not on top of it
    wait_until(lambda: api_row(admin_api, max_)["parent_id"] is None, what="extract saved")
    assert card(canvas, team).locator(":scope > .ws-head .ws-sub").inner_text() == "2 sub"


# --- §2.5 delete (§6 context-menu-delete) ---------------------------------------------------------------------

def tombstoned(page, workspace_id):
    return page.evaluate("""async (id) => {
        const main = document.querySelector('script[type=module][src*="main.js"]').src;
        const gestures = await import(new URL("./gestures.js", main).href);
        return gestures.isTombstoned(id);
    }""", workspace_id)


def test_delete_from_the_context_menu_asks_first_cancel_keeps_confirm_removes(canvas, admin_api):
    ws = create_workspace(admin_api, "Doomed Agent")["id"]
    register_online(admin_api, ws)
    load(canvas)
    expect(card(canvas, ws)).to_be_visible(timeout=10_000)

    card(canvas, ws).click(button="right")
    menu = canvas.get_by_role("menu")
    expect(menu).to_have_attribute("aria-label", "Actions for Doomed Agent")
    menu.get_by_role("menuitem", name="Delete").click()
    dialog = canvas.get_by_role("dialog", name="Delete Workspace")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text('Permanently delete "Doomed Agent"? This will stop the container and remove all configuration. This action cannot be undone.')
    expect(menu).to_be_hidden()  # the menu closed; its dialog did not
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(card(canvas, ws)).to_be_visible()
    assert api_row(admin_api, ws)["status"] == "online"

    card(canvas, ws).click(button="right")
    canvas.get_by_role("menuitem", name="Delete").click()
    canvas.get_by_role("dialog", name="Delete Workspace").get_by_role("button", name="Delete").click()
    expect(canvas.get_by_role("dialog")).to_have_count(0, timeout=3_000)
    expect(card(canvas, ws)).to_have_count(0, timeout=5_000)
    # The spec's GET /workspaces/:id keeps answering for a removed row (status removed); its
    # state route is the one that answers 404.
    assert api_row(admin_api, ws)["status"] == "removed"
    assert admin_api.get(f"/workspaces/{ws}/state").status_code >= 400
    assert tombstoned(canvas, ws) is True


def test_deleting_a_parent_says_so_and_removes_its_whole_team(canvas, admin_api):
    root, backend, frontend, database = build_team(admin_api)
    set_view(admin_api, 20, 20, 0.9)
    load(canvas)
    card(canvas, root).locator(":scope > .ws-head").click(button="right")
    canvas.get_by_role("menuitem", name="Delete").click()
    dialog = canvas.get_by_role("dialog", name="Delete Workspace and Children")
    expect(dialog).to_contain_text('Permanently delete "Platform" and its 3 sub-workspaces?')
    expect(dialog).to_contain_text("All child workspaces and their data are deleted too")
    assert dialog.locator("[data-confirm-list] li").all_inner_texts() == ["Backend", "Database", "Frontend"]
    screenshot(canvas, "delete-team-dialog")
    dialog.get_by_role("button", name="Delete All").click()
    for ws in (root, backend, frontend, database):
        expect(card(canvas, ws)).to_have_count(0, timeout=5_000)
        assert api_row(admin_api, ws)["status"] == "removed"
    assert canvas.evaluate("document.querySelectorAll('.ws-node').length") == 0


# --- §1.6 collapse -----------------------------------------------------------------------------------------------

def test_a_collapsed_team_hides_its_children_stays_collapsed_and_double_click_expands_it(canvas, admin_api):
    root, backend, frontend, database = build_team(admin_api)
    set_view(admin_api, 20, 20, 0.9)
    load(canvas)
    card(canvas, root).locator(":scope > .ws-head").click(button="right")
    canvas.get_by_role("menuitem", name="Collapse Team").click()
    for ws in (backend, frontend, database):
        expect(card(canvas, ws)).to_be_hidden()
    sub = card(canvas, root).locator(":scope > .ws-head .ws-sub")
    expect(sub).to_be_visible()
    expect(sub).to_have_text("3 sub")
    assert canvas.evaluate("id => moleculeCanvas.size(moleculeCanvas.card(id))", root) == {"w": 240, "h": 130}
    wait_until(lambda: api_row(admin_api, root)["collapsed"] is True, what="collapsed saved")
    screenshot(canvas, "team-collapsed")

    load(canvas)
    assert "is-collapsed" in card(canvas, root).get_attribute("class")
    expect(card(canvas, backend)).to_be_hidden()
    expect(sub).to_have_text("3 sub")
    card(canvas, root).locator(":scope > .ws-head").click(button="right")
    expect(canvas.get_by_role("menuitem", name="Expand Team")).to_be_visible()
    canvas.keyboard.press("Escape")

    card(canvas, root).locator(":scope > .ws-head .ws-name").dblclick()
    for ws in (backend, frontend, database):
        expect(card(canvas, ws)).to_be_visible()
    wait_until(lambda: api_row(admin_api, root)["collapsed"] is False, what="expanded saved")
    assert canvas.evaluate("id => moleculeCanvas.size(moleculeCanvas.card(id)).w", root) > 240


# --- §2.9 keyboard, §2.11 search ------------------------------------------------------------------------------------

def test_keyboard_moves_cards_walks_the_team_and_reorders_siblings(canvas, admin_api):
    root, backend, frontend, database = build_team(admin_api)
    set_view(admin_api, 20, 20, 0.9)
    load(canvas)
    record_selects(canvas)

    card(canvas, root).locator(":scope > .ws-head").click()
    assert canvas.evaluate("moleculeCanvas.selectedId") == root
    canvas.keyboard.press("Enter")  # a selected parent: its first child
    assert canvas.evaluate("moleculeCanvas.selectedId") == backend
    expect(card(canvas, backend)).to_be_focused()
    canvas.keyboard.press("Enter")
    assert canvas.evaluate("moleculeCanvas.selectedId") == database
    canvas.keyboard.press("Shift+Enter")  # back up to the parent
    assert canvas.evaluate("moleculeCanvas.selectedId") == backend

    canvas.keyboard.press("Control+]")  # Backend above its sibling
    order = "id => [...moleculeCanvas.card(id).querySelector(':scope > .ws-children').children].map(c => c.dataset.name)"
    assert canvas.evaluate(order, root) == ["Frontend", "Backend"]
    expect(card(canvas, backend)).to_be_focused()
    canvas.keyboard.press("Control+[")
    assert canvas.evaluate(order, root) == ["Backend", "Frontend"]

    start = api_pos(admin_api, backend)
    for key in ("ArrowRight", "ArrowRight", "ArrowDown"):
        canvas.keyboard.press(key)
    assert abs_pos(canvas, backend) == [start[0] + 20, start[1] + 10]
    wait_until(lambda: api_pos(admin_api, backend) == [start[0] + 20, start[1] + 10], what="arrow moves saved")
    wait_until(lambda: api_pos(admin_api, database) == [152 + 20, 400 + 10], what="its child followed")

    canvas.keyboard.press("Escape")
    assert canvas.evaluate("moleculeCanvas.selectedId") is None

    # typing never triggers shortcuts
    canvas.evaluate("""() => { const i = document.createElement('input'); i.id = 'scratch'; document.body.append(i); }""")
    canvas.locator("#scratch").focus()
    before = canvas.evaluate("JSON.stringify(moleculeCanvas.view)")
    canvas.keyboard.type("zZ")
    canvas.keyboard.press("Control+k")
    assert canvas.evaluate("JSON.stringify(moleculeCanvas.view)") == before
    expect(canvas.get_by_role("dialog", name="Search workspaces")).to_be_hidden()


def test_search_finds_workspaces_by_name_role_or_status_and_opens_details(canvas, admin_api):
    research = create_workspace(admin_api, "Research Lead", role="Finds and summarises papers", canvas={"x": 100, "y": 100})["id"]
    writer = create_workspace(admin_api, "Writer", role="Drafts the posts", canvas={"x": 400, "y": 100})["id"]
    reviewer = create_workspace(admin_api, "Reviewer", role="Checks facts", canvas={"x": 700, "y": 100})["id"]
    for ws in (research, writer, reviewer):
        register_online(admin_api, ws)
    admin_api.post(f"/workspaces/{reviewer}/pause")
    set_view(admin_api, 20, 20, 1)
    load(canvas)
    record_selects(canvas)

    canvas.keyboard.press("Control+k")
    dialog = canvas.get_by_role("dialog", name="Search workspaces")
    expect(dialog).to_be_visible()
    search = dialog.get_by_role("combobox", name="Search workspaces")
    expect(search).to_be_focused()
    options = dialog.get_by_role("option")
    expect(options).to_have_count(3)
    search.fill("papers")  # by role
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Research Lead")
    search.fill("writ")  # by name
    expect(options).to_have_count(1)
    screenshot(canvas, "search")
    canvas.keyboard.press("Enter")
    expect(dialog).to_be_hidden()
    assert canvas.evaluate("[moleculeCanvas.selectedId, window.selects.at(-1).tab]") == [writer, "details"]

    canvas.get_by_role("button", name="Search", exact=True).click()  # the toolbar's way in
    expect(dialog).to_be_visible()
    search.fill("paused")  # by status
    expect(options).to_have_count(1)
    expect(options.first).to_contain_text("Reviewer")
    search.fill("e")
    expect(options).to_have_count(3)  # sorted by name
    canvas.keyboard.press("ArrowDown")
    expect(options.nth(1)).to_have_attribute("aria-selected", "true")
    canvas.keyboard.press("Enter")
    assert canvas.evaluate("[moleculeCanvas.selectedId, window.selects.at(-1).tab]") == [reviewer, "details"]
    canvas.keyboard.press("Control+k")
    canvas.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert canvas.evaluate("moleculeCanvas.selectedId") == reviewer  # Esc closed only the search


def test_shift_selected_cards_get_a_batch_bar_that_pauses_and_deletes_them_together(canvas, admin_api):
    team = [create_workspace(admin_api, name, canvas={"x": 100 + 300 * n, "y": 200})
            for n, name in enumerate(("North", "South", "West"))]
    for ws in team:
        register_online(admin_api, ws["id"])
    load(canvas)
    bar = canvas.get_by_role("toolbar", name="Batch actions")
    card(canvas, team[0]["id"]).click(modifiers=["Shift"])
    expect(bar).to_be_hidden()  # one card is a selection, not a batch
    card(canvas, team[1]["id"]).click(modifiers=["Shift"])
    expect(bar).to_be_visible()
    expect(bar).to_contain_text("2 selected")

    bar.get_by_role("button", name="Pause").click()
    dialog = canvas.get_by_role("dialog", name="Pause 2 workspaces")
    expect(dialog).to_contain_text("North")
    dialog.get_by_role("button", name="Cancel").click()
    assert [api_row(admin_api, ws["id"])["status"] for ws in team] == ["online"] * 3
    bar.get_by_role("button", name="Pause").click()
    dialog.get_by_role("button", name="Pause").click()
    wait_until(lambda: [api_row(admin_api, ws["id"])["status"] for ws in team] == ["paused", "paused", "online"],
               what="the two selected workspaces paused")
    expect(card(canvas, team[0]["id"])).to_have_attribute("data-status", "paused")
    expect(bar).to_be_hidden()  # done: the batch is empty again

    for ws in team[:2]:
        card(canvas, ws["id"]).click(modifiers=["Shift"])
    bar.get_by_role("button", name="Delete").click()
    canvas.get_by_role("dialog", name="Delete 2 workspaces").get_by_role("button", name="Delete").click()
    expect(card(canvas, team[0]["id"])).to_have_count(0)
    expect(card(canvas, team[1]["id"])).to_have_count(0)
    expect(card(canvas, team[2]["id"])).to_have_count(1)
    assert [api_row(admin_api, ws["id"])["status"] for ws in team] == ["removed", "removed", "online"]
