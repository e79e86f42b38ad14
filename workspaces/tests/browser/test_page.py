"""The canvas page itself: login, shell, cards as the server renders them (canvas spec §1)."""

from __future__ import annotations

from workspaces.tests.browser.conftest import CHROMIUM, VIEWPORT, create_workspace, register_online, screenshot


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
