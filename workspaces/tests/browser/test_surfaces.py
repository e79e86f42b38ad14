"""The canvas's surfaces in a real browser: empty state, create dialog, template palette and its
preflight, org and bundle import, onboarding, settings drawer, approval banners (canvas spec
§2.2, §4.1–§4.7; §7.3 scenarios 1, 11, 12)."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path

from playwright.sync_api import expect

from workspaces.tests.browser.conftest import create_workspace, screenshot, wait_until

SELECTED = "() => window.moleculeCanvas.selectedId"
CONFIGS_DIR = Path(__file__).resolve().parents[3] / "workspace-configs-templates"  # the live platform's


def _names(admin_api) -> dict[str, dict]:
    return {row["name"]: row for row in admin_api.get("/workspaces").json()}


def test_empty_state_creates_a_blank_workspace_and_selects_it(canvas, admin_api):
    welcome = canvas.locator("#empty-state")
    expect(welcome).to_be_visible()
    expect(welcome.get_by_role("heading", name="Deploy your first agent")).to_be_visible()
    expect(welcome.locator(".tpl-card").first).to_be_visible()  # the template gallery loaded
    expect(welcome.get_by_test_id("welcome-org-templates").get_by_role("button", name="Import org")).to_have_count(2)
    expect(canvas.get_by_role("button", name="New Workspace")).to_be_hidden()  # the empty state has its own
    screenshot(canvas, "empty-state")

    canvas.get_by_role("button", name="+ Create blank workspace").click()
    card = canvas.locator(".ws-node", has_text="My First Agent")
    expect(card).to_be_visible()
    created = wait_until(lambda: _names(admin_api).get("My First Agent"), what="the blank workspace")
    assert created["tier"] == 2 and (created["x"], created["y"]) == (200, 150)
    wait_until(lambda: canvas.evaluate(SELECTED) == created["id"], what="the new card selected")
    expect(welcome).to_be_hidden()


def test_create_dialog_with_a_parent_nests_the_card_and_sends_budget_in_cents(canvas, admin_api):
    team = create_workspace(admin_api, "Growth Team", tier=3)
    canvas.reload()
    canvas.wait_for_selector(f'[data-workspace-id="{team["id"]}"]')
    canvas.get_by_role("button", name="New Workspace").click()
    dialog = canvas.get_by_role("dialog", name="Create Workspace")
    expect(dialog).to_be_visible()
    dialog.get_by_label("Name").fill("SEO Agent")
    dialog.get_by_label("Role").fill("Keeps the site ranking")
    dialog.get_by_label("Budget limit").fill("12.50")
    dialog.get_by_label("Parent Workspace").select_option(label="T3 · Growth Team")
    standard = dialog.get_by_role("radio", name="T2 Standard")
    dialog.get_by_role("radio", name="T3 Privileged").focus()
    canvas.keyboard.press("ArrowLeft")  # arrow keys move through the tiers
    expect(standard).to_be_checked()
    screenshot(canvas, "create-dialog")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog).to_be_hidden()

    row = wait_until(lambda: _names(admin_api).get("SEO Agent"), what="the created workspace")
    assert row["parent_id"] == team["id"] and row["budget_limit"] == 1250 and row["tier"] == 2
    assert row["role"] == "Keeps the site ranking"
    child = canvas.locator(f'[data-workspace-id="{team["id"]}"] .ws-children [data-workspace-id="{row["id"]}"]')
    expect(child).to_be_visible()
    wait_until(lambda: canvas.evaluate(SELECTED) == row["id"], what="the new card selected")
    fab = canvas.get_by_role("button", name="New Workspace")
    expect(fab).to_be_hidden()  # hidden while a workspace is selected
    canvas.evaluate("window.moleculeCanvas.deselect()")
    expect(fab).to_be_visible()


def test_create_dialog_shows_the_servers_error_inline(canvas, admin_api):
    rules = canvas.evaluate("""async () => {
        const s = await import("/static/canvas/js/surfaces.js");
        return [s.budgetCents(""), s.budgetCents(" 12.5 "), s.budgetCents("0"), String(s.budgetCents("1.234")),
                String(s.budgetCents("-3")), s.secretKeyProblem("API_KEY_2") === null, s.secretKeyProblem("api_key") !== null,
                s.valueHint("ANTHROPIC_API_KEY", "sk-ant-x"), s.valueHint("ANTHROPIC_API_KEY", "nope")];
    }""")
    assert rules == [None, 1250, 0, "NaN", "NaN", True, True, "", "Anthropic keys start with sk-ant-"]
    create_workspace(admin_api, "Someone")
    canvas.reload()
    canvas.get_by_role("button", name="New Workspace").click()
    dialog = canvas.get_by_role("dialog", name="Create Workspace")
    dialog.get_by_label("Name").fill("Bad {name}")
    dialog.get_by_role("button", name="Create").click()
    expect(dialog.get_by_role("alert")).to_have_text("invalid workspace fields")
    expect(dialog).to_be_visible()
    canvas.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert "Bad {name}" not in _names(admin_api)


def test_an_external_agent_gets_its_connection_block_once(canvas, admin_api):
    canvas.get_by_role("button", name="+ Create blank workspace").wait_for()
    canvas.locator("#onboarding").get_by_role("button", name="Create Workspace").click()
    dialog = canvas.get_by_role("dialog", name="Create Workspace")
    dialog.get_by_label("Name").fill("Laptop Agent")
    dialog.get_by_label("External agent").check()
    expect(dialog.get_by_label("Template")).to_be_hidden()
    dialog.get_by_role("button", name="Create").click()

    connect = canvas.get_by_role("dialog", name="Connect your agent")
    expect(connect).to_be_visible()
    expect(dialog).to_be_hidden()
    row = wait_until(lambda: _names(admin_api).get("Laptop Agent"), what="the external workspace")
    assert row["runtime"] == "external"
    token = connect.locator('[data-connect="auth_token"]').inner_text()
    assert len(token) > 20
    assert row["id"] in connect.locator('[data-connect="python_snippet"]').inner_text()
    screenshot(canvas, "connect-dialog")
    # The token works: the agent can register with it.
    registered = admin_api.post("/registry/register", headers={"Authorization": f"Bearer {token}"},
                                json={"id": row["id"], "url": "http://localhost:9", "agent_card": {"name": "laptop"}})
    assert registered.status_code == 200, registered.text
    connect.get_by_role("button", name="Done").click()
    expect(connect).to_be_hidden()
    expect(canvas.locator('#connect-dialog [data-connect="auth_token"]')).to_have_text("")
    assert token not in canvas.content()  # shown once: gone from the page after Done
    expect(canvas.locator(f'[data-workspace-id="{row["id"]}"]')).to_be_visible()


def test_palette_lists_org_templates_and_imports_one_without_reload(canvas, admin_api):
    orgs = admin_api.get("/org/templates").json()
    canvas.get_by_title("Template Palette").click()
    section = canvas.get_by_test_id("org-templates-section")
    expect(section).to_be_visible()
    expect(section.get_by_role("heading", name="Org Templates")).to_be_visible()
    for org in orgs:
        row = section.locator(".org-row", has_text=org["name"])
        expect(row).to_contain_text(org["description"])
        expect(row).to_contain_text(f'{org["workspaces"]} workspaces')
    expect(section.get_by_role("button", name="Import org")).to_have_count(len(orgs))
    assert canvas.evaluate("document.body.classList.contains('palette-open')")
    screenshot(canvas, "palette-open")

    # An org that declares env gets the preflight first; its keys are only recommended, so Import stays enabled.
    section.locator(".org-row", has_text="Engineering Team").get_by_role("button", name="Import org").click()
    preflight = canvas.get_by_role("dialog", name="Import Engineering Team")
    expect(preflight.locator(".env-row", has_text="OPENAI_API_KEY")).to_contain_text("recommended")
    expect(preflight.get_by_role("button", name="Import")).to_be_enabled()
    preflight.get_by_role("button", name="Cancel").click()
    expect(preflight).to_be_hidden()
    assert admin_api.get("/workspaces").json() == []

    desk = next(org for org in orgs if org["dir"] == "research-desk")
    section.locator(".org-row", has_text=desk["name"]).get_by_role("button", name="Import org").click()
    expect(canvas.locator(".toast", has_text=f'Imported "{desk["name"]}" ({desk["workspaces"]} workspaces)')).to_be_visible(timeout=20_000)
    expect(canvas.locator(".ws-node")).to_have_count(desk["workspaces"])
    lead = canvas.locator(".ws-node", has_text="Research Lead").first
    assert lead.locator(".ws-children .ws-node").count() == desk["workspaces"] - 1  # the team is nested
    expect(lead).to_be_in_viewport()  # the view fits the new org
    assert len(admin_api.get("/workspaces").json()) == desk["workspaces"]


def test_a_template_with_required_env_asks_for_the_key_then_deploys(canvas, admin_api):
    admin_api.delete("/settings/secrets/ANTHROPIC_API_KEY")
    try:
        canvas.get_by_title("Template Palette").click()
        canvas.locator("#palette").get_by_role("button", name="Deploy Researcher").click()
        keys = canvas.get_by_role("dialog", name="Missing Keys")
        expect(keys).to_be_visible()
        keys.get_by_label("ANTHROPIC_API_KEY").fill("sk-ant-browser-test-value")
        keys.get_by_role("button", name="Save & Deploy").click()
        expect(keys).to_be_hidden()
        row = wait_until(lambda: _names(admin_api).get("Researcher"), what="the deployed template")
        expect(canvas.locator(f'[data-workspace-id="{row["id"]}"]')).to_be_visible()
        assert "ANTHROPIC_API_KEY" in [s["key"] for s in admin_api.get("/settings/secrets").json()]
        assert "sk-ant-browser-test-value" not in canvas.content()
    finally:
        admin_api.delete("/settings/secrets/ANTHROPIC_API_KEY")


def test_bundle_import_accepts_a_bundle_and_refuses_other_files(canvas, admin_api, tmp_path):
    bundle = {"schema": "1.0", "id": "b-1", "name": "Bundled Analyst", "description": "From a bundle", "tier": 2,
              "prompts": {"config.yaml": "name: Bundled Analyst\nruntime: echo\n"}, "skills": [], "sub_workspaces": []}
    good = tmp_path / "analyst.bundle.json"
    good.write_text(json.dumps(bundle))
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    broken = tmp_path / "broken.bundle.json"
    broken.write_text("{not json")
    bundle_input = canvas.locator("#bundle-input")

    bundle_input.set_input_files(str(text))
    expect(canvas.get_by_role("alert").filter(has_text="Only .bundle.json files are accepted")).to_be_visible()
    bundle_input.set_input_files(str(broken))
    expect(canvas.get_by_role("alert").filter(has_text="broken.bundle.json is not valid JSON")).to_be_visible()
    bundle_input.set_input_files(str(good))
    expect(canvas.locator(".toast", has_text='Imported "Bundled Analyst" successfully')).to_be_visible()
    expect(canvas.locator(".ws-node", has_text="Bundled Analyst")).to_be_visible()
    assert "Bundled Analyst" in _names(admin_api)


def test_skip_guide_is_remembered_across_reloads(canvas):
    guide = canvas.locator("#onboarding")
    expect(guide).to_contain_text("Step 1 of 4")
    legend, box = canvas.locator("#legend").bounding_box(), guide.bounding_box()
    assert legend["y"] + legend["height"] <= box["y"]  # the legend sits above the guide
    guide.get_by_role("button", name="Next").click()
    expect(guide).to_contain_text("Step 2 of 4")
    expect(guide.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "2")
    guide.get_by_role("button", name="Next").click()
    expect(guide).to_contain_text("Send your first message")
    canvas.evaluate("window.moleculeCanvas.emit('ws-event', {event: 'TASK_UPDATED', payload: {}})")
    expect(guide).to_contain_text("Step 3 of 4")
    canvas.evaluate("window.moleculeCanvas.emit('ws-event', {event: 'AGENT_MESSAGE', payload: {message: 'hi'}})")
    expect(guide).to_contain_text("You're all set")  # an agent's message moves the guide on
    guide.get_by_role("button", name="Skip guide").click()
    expect(guide).to_be_hidden()
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    expect(canvas.locator("#onboarding")).to_be_hidden()
    assert canvas.evaluate("localStorage.getItem('molecule-onboarding-complete')") == "1"


def test_settings_drawer_adds_and_deletes_a_global_secret_without_showing_its_value(canvas, admin_api):
    key, value = "BROWSER_TEST_KEY", "browser-secret-value-42"
    admin_api.delete(f"/settings/secrets/{key}")
    canvas.keyboard.press("Control+,")
    drawer = canvas.get_by_role("dialog", name="Settings")
    expect(drawer).to_be_visible()
    drawer.get_by_role("button", name="+ Add New Key").click()
    drawer.get_by_label("Key name").fill("browser test key")  # typed loosely, kept UPPER_SNAKE_CASE
    expect(drawer.get_by_label("Key name")).to_have_value(key)
    drawer.get_by_label("Value").fill(value)
    drawer.get_by_role("button", name="Save key").click()
    row = drawer.locator(f'.secret-row[data-key="{key}"]')
    expect(row).to_be_visible()
    screenshot(canvas, "settings-drawer")
    assert key in [s["key"] for s in admin_api.get("/settings/secrets").json()]
    assert value not in canvas.content()

    drawer.get_by_role("button", name="+ Add New Key").click()
    drawer.get_by_label("Key name").fill("UNSAVED")
    canvas.keyboard.press("Escape")  # the unsaved-changes guard asks first
    guard = canvas.get_by_role("dialog", name="Discard unsaved changes?")
    guard.get_by_role("button", name="Cancel").click()
    expect(drawer).to_be_visible()
    drawer.get_by_role("button", name="Cancel").click()

    row.get_by_role("button", name=f"Delete {key}").click()
    canvas.get_by_role("dialog", name="Delete key").get_by_role("button", name="Delete").click()
    expect(row).to_be_hidden()
    assert key not in [s["key"] for s in admin_api.get("/settings/secrets").json()]
    canvas.keyboard.press("Escape")
    expect(drawer).to_be_hidden()


def test_settings_drawer_mints_a_workspace_token_shown_once(canvas, admin_api):
    ws = create_workspace(admin_api, "Token Holder")
    canvas.reload()
    canvas.get_by_title("Settings").click()
    drawer = canvas.get_by_role("dialog", name="Settings")
    drawer.get_by_role("tab", name="Workspace Tokens").click()
    expect(drawer.get_by_label("Workspace", exact=True)).to_have_value(ws["id"])
    before = admin_api.get(f"/workspaces/{ws['id']}/tokens").json()["count"]
    drawer.get_by_role("button", name="+ New token").click()
    expect(drawer.get_by_text("Copy now — it won't be shown again")).to_be_visible()
    token = drawer.locator("[data-token-value]").inner_text()
    assert admin_api.get(f"/workspaces/{ws['id']}/tokens").json()["count"] == before + 1
    assert admin_api.get(f"/workspaces/{ws['id']}/tokens", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    drawer.get_by_role("button", name="Close settings").click()
    assert token not in canvas.content()


def test_a_pending_approval_shows_a_banner_and_approve_decides_it(canvas, admin_api):
    ws = create_workspace(admin_api, "Deployer")
    created = admin_api.post(f"/workspaces/{ws['id']}/approvals", json={"action": "deploy to production", "reason": "release 1.2"})
    assert created.status_code == 201, created.text
    approval_id = created.json()["approval_id"]
    canvas.reload()
    banner = canvas.locator(f'#banners [data-approval-id="{approval_id}"]')
    expect(banner).to_contain_text("Deployer")
    expect(banner).to_contain_text("deploy to production")
    expect(banner).to_contain_text("release 1.2")
    expect(banner).to_have_css("opacity", "1")  # faded in
    screenshot(canvas, "approval-banner")
    banner.get_by_role("button", name="Approve").click()
    expect(banner).to_be_hidden()
    [row] = [a for a in admin_api.get(f"/workspaces/{ws['id']}/approvals").json() if a["id"] == approval_id]
    assert row["status"] == "approved" and row["decided_by"] == "operator"


def test_a_workspace_stuck_provisioning_gets_a_banner_with_retry_and_cancel(canvas, admin_api):
    thresholds = canvas.evaluate("""async () => {
        const { provisionThresholdMs: t } = await import("/static/canvas/js/surfaces.js");
        return [t(0, 1, 0), t(300000, 3, 0), t(0, 5, 0), t(300000, 5, 1000)];
    }""")
    assert thresholds == [120_000, 300_000, 120_000 + 2 * 45_000, 1000]  # default, template, +45 s each beyond 3, override
    ws = create_workspace(admin_api, "Slow Starter")
    assert admin_api.post(f"/workspaces/{ws['id']}/restart").status_code == 200  # no runtime answers: stays provisioning
    canvas.evaluate("localStorage.setItem('molecule-provision-timeout-ms', '1000')")
    canvas.reload()
    banner = canvas.locator(f'#banners .banner-provision[data-workspace-id="{ws["id"]}"]')
    expect(banner).to_contain_text("Slow Starter is taking longer than expected to start")
    screenshot(canvas, "provisioning-banner")
    banner.get_by_role("button", name="Retry").click()
    expect(canvas.locator(".toast", has_text="Restarting Slow Starter")).to_be_visible()
    expect(banner).to_be_visible()  # still provisioning a second later: back again
    banner.get_by_role("button", name="Dismiss").click()
    expect(banner).to_be_hidden()
    canvas.reload()
    banner.get_by_role("button", name="Cancel").click()
    canvas.get_by_role("dialog", name="Cancel deployment").get_by_role("button", name="Delete workspace").click()
    expect(canvas.locator(f'[data-workspace-id="{ws["id"]}"]')).to_have_count(0)
    expect(banner).to_have_count(0)
    assert admin_api.get(f"/workspaces/{ws['id']}").json()["status"] == "removed"


def test_an_agent_folder_becomes_a_template_in_the_palette(canvas, tmp_path):
    name = f"browser-folder-{uuid.uuid4().hex[:8]}"
    folder = tmp_path / name
    (folder / "skills" / "greet").mkdir(parents=True)
    (folder / "config.yaml").write_text("name: Folder Helper\ndescription: Imported from a folder.\nruntime: echo\ntier: 2\n")
    (folder / "skills" / "greet" / "SKILL.md").write_text("Say hello.")
    (folder / ".git").mkdir()
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main")
    try:
        canvas.get_by_title("Template Palette").click()
        canvas.locator("#folder-input").set_input_files(str(folder))
        expect(canvas.locator(".toast", has_text=f'Imported template "{name}"')).to_be_visible()
        expect(canvas.locator("#palette").get_by_role("button", name="Deploy Folder Helper")).to_be_visible()
        imported = CONFIGS_DIR / name
        assert (imported / "skills" / "greet" / "SKILL.md").read_text() == "Say hello."
        assert not (imported / ".git").exists()  # dot-folders stay behind
    finally:
        shutil.rmtree(CONFIGS_DIR / name, ignore_errors=True)
