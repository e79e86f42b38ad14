"""The canvas page itself: login, shell, cards as the server renders them (canvas spec §1)."""

from __future__ import annotations

from workspaces.tests.browser.conftest import VIEWPORT, create_workspace, register_online, screenshot, wait_until


def test_the_canvas_needs_a_login_and_the_login_form_lets_the_operator_in(browser, platform):
    context = browser.new_context(base_url=platform.url, viewport=VIEWPORT)
    page = context.new_page()
    page.goto("/")
    assert page.url.startswith(f"{platform.url}/accounts/login/?next=/")
    page.fill("#id_username", "operator")
    page.fill("#id_password", "wrong password")
    page.click("button[type=submit]")
    assert "correct username and password" in page.locator("[role=alert]").inner_text()
    page.fill("#id_password", "canvas-tests-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector("body[data-canvas-ready]")
    assert page.title() == "Molecule AI"
    page.click("text=Log out")
    page.wait_for_url("**/accounts/login/")
    page.goto("/")
    assert "/accounts/login/" in page.url
    context.close()


def test_a_card_shows_name_role_tier_runtime_skills_and_status(canvas, admin_api):
    ws = create_workspace(admin_api, "Research Lead", role="Finds and summarises papers", tier=3)
    register_online(admin_api, ws["id"], skills=[{"id": "search", "name": "Web search"}, {"id": "sum"}])
    canvas.reload()
    card = canvas.locator(f'[data-workspace-id="{ws["id"]}"]')
    card.wait_for()
    assert card.get_attribute("role") == "button"
    assert card.get_attribute("aria-label") == "Research Lead workspace — Online"
    assert "ws-node" in card.get_attribute("class")
    assert card.locator(".ws-name").inner_text() == "Research Lead"
    assert card.locator(".ws-role").inner_text() == "Finds and summarises papers"
    assert card.locator(".ws-tier").inner_text() == "T3"
    assert card.locator(".ws-runtime").inner_text() == "★ REMOTE"
    assert card.locator(".ws-skill").all_inner_texts() == ["Web search", "sum"]
    assert card.locator(".ws-status-label").inner_text() == ""  # no label while online
    assert canvas.title() == "Molecule AI"
    assert canvas.locator('[aria-label="Molecule AI workspace canvas"]').is_visible()
    screenshot(canvas, "card-online")


def _view(page) -> dict:
    return page.evaluate("() => ({...window.moleculeCanvas.view})")


def test_pan_and_zoom_are_saved_and_restored_on_reload(canvas, admin_api):
    create_workspace(admin_api, "Anchor", canvas={"x": 300, "y": 200})
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    start = _view(canvas)
    # drag on empty canvas pans; a trackpad's two-finger scroll (plain wheel) pans too
    canvas.mouse.move(1000, 250)  # empty canvas: clear of the card, the minimap and the panels
    canvas.mouse.down()
    canvas.mouse.move(900, 200, steps=8)
    canvas.mouse.up()
    canvas.mouse.wheel(40, 0)
    panned = _view(canvas)
    assert (round(panned["x"] - start["x"]), round(panned["y"] - start["y"])) == (-140, -50)
    # pinch (ctrl + wheel) zooms around the pointer: the world point under it stays put
    canvas.mouse.move(640, 400)
    before = canvas.evaluate("() => window.moleculeCanvas.toWorld(640, 400)")
    canvas.keyboard.down("Control")
    canvas.mouse.wheel(0, -100)
    canvas.keyboard.up("Control")
    zoomed = _view(canvas)
    assert zoomed["zoom"] > panned["zoom"]
    after = canvas.evaluate("() => window.moleculeCanvas.toWorld(640, 400)")
    assert abs(after["x"] - before["x"]) < 0.5 and abs(after["y"] - before["y"]) < 0.5
    # saved once, a second after the last move (debounced), then restored by a reload
    saved = wait_until(lambda: (lambda v: v if abs(v["zoom"] - zoomed["zoom"]) < 0.001 else None)(
        admin_api.get("/canvas/viewport").json()), what="the viewport save")
    assert abs(saved["x"] - zoomed["x"]) < 0.01 and abs(saved["y"] - zoomed["y"]) < 0.01
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    restored = _view(canvas)
    assert abs(restored["x"] - zoomed["x"]) < 0.01 and abs(restored["zoom"] - zoomed["zoom"]) < 0.001
    transform = canvas.locator("#world").evaluate("el => el.style.transform")
    assert f"scale({restored['zoom']})" in transform


def test_zoom_controls_and_fit_keep_the_zoom_in_range(canvas, admin_api):
    create_workspace(admin_api, "Far away", canvas={"x": 5000, "y": 4000})
    create_workspace(admin_api, "Near", canvas={"x": 100, "y": 100})
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    canvas.click('[aria-label="Fit all workspaces"]')
    for name in ("Far away", "Near"):
        box = canvas.locator(f'.ws-node[data-name="{name}"]').bounding_box()
        assert 0 <= box["x"] and box["x"] + box["width"] <= 1280 and 0 <= box["y"] and box["y"] + box["height"] <= 800, name
    for _ in range(30):
        canvas.click('[aria-label="Zoom out"]')
    assert _view(canvas)["zoom"] == 0.1
    for _ in range(40):
        canvas.click('[aria-label="Zoom in"]')
    assert _view(canvas)["zoom"] == 2


def test_a_busy_card_keeps_everything_inside_its_box_and_a_team_keeps_its_header_above_its_members(canvas, admin_api):
    lead = create_workspace(admin_api, "Platform Lead", role="Owns the platform roadmap, reviews every design and "
                            "answers for the on-call rotation of the whole team", canvas={"x": 100, "y": 100})
    member = create_workspace(admin_api, "Release Captain", parent_id=lead["id"], role="Cuts releases, writes the "
                              "changelog and signs off every deployment to production", canvas={"x": 116, "y": 230})
    skills = [{"id": f"skill-{n}", "name": f"Skill number {n}"} for n in range(6)]
    for ws in (lead, member):
        register_online(admin_api, ws["id"], skills=skills)
        beat = admin_api.post("/registry/heartbeat", json={
            "workspace_id": ws["id"], "active_tasks": 2, "current_task": "Preparing the quarterly release train notes"})
        assert beat.status_code == 200, beat.text
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    for ws in (lead, member):
        card = canvas.locator(f'.ws-node[data-workspace-id="{ws["id"]}"]')
        card.locator(":scope > .ws-task").wait_for()
        assert card.locator(":scope > .ws-foot .ws-busy-text").inner_text() == "2 tasks"
    member_card = canvas.locator(f'.ws-node[data-workspace-id="{member["id"]}"]')
    box = member_card.bounding_box()
    for part in (".ws-head", ".ws-tags", ".ws-role", ".ws-task", ".ws-foot"):
        inner = member_card.locator(f":scope > {part}").bounding_box()
        assert inner["x"] >= box["x"] and inner["x"] + inner["width"] <= box["x"] + box["width"] + 0.5, part
        assert inner["y"] >= box["y"] and inner["y"] + inner["height"] <= box["y"] + box["height"] + 0.5, part
    lead_foot = canvas.locator(f'.ws-node[data-workspace-id="{lead["id"]}"] > .ws-foot').bounding_box()
    assert lead_foot["y"] + lead_foot["height"] <= box["y"], "the team's own status line runs under its member"
    screenshot(canvas, "busy-team")
