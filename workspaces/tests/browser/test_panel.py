"""The side panel (canvas spec §3): opening and closing, tabs and their keyboard, width, and the
Activity, Details (with spend), Config, Files, Memory, Traces and Events tabs against the live platform."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from workspaces.tests.browser.conftest import (
    create_workspace,
    register_online,
    screenshot,
    wait_until,
)

TABS = ["chat", "activity", "details", "skills", "terminal", "config", "schedule", "files", "memory", "traces", "events"]


def card(page, workspace_id: str):
    return page.locator(f'[data-workspace-id="{workspace_id}"]')


def open_panel(page, workspace_id: str, tab: str | None = None):
    card(page, workspace_id).click(position={"x": 24, "y": 16})
    expect(page.locator("#side-panel")).to_be_visible()
    # the panel slides in; a pointer aimed at its edge mid-slide would miss the 10 px resize handle
    page.locator("#side-panel").evaluate("el => Promise.all(el.getAnimations().map(a => a.finished))")
    if tab:
        page.click(f"#tab-{tab}")
        expect(page.locator(f"#panel-{tab} > :not(.panel-loading)").first).to_be_visible()


def templated_workspace(admin_api, name: str) -> dict:
    """A workspace made from the demo-specialist template (its files include config.yaml)."""
    created = admin_api.post("/workspaces", json={"name": name, "template": "demo-specialist", "canvas": {"x": 120, "y": 120}})
    assert created.status_code == 201, created.text
    return {"id": created.json()["id"], "name": name}


def test_every_tab_opens_its_panel_with_no_console_errors(canvas, admin_api):
    ws = create_workspace(admin_api, "Tab Tour", role="Visits every tab")
    register_online(admin_api, ws["id"], skills=[{"id": "tour", "name": "Touring", "description": "Goes everywhere"}])
    canvas.reload()
    open_panel(canvas, ws["id"])
    expect(canvas.get_by_role("tablist", name="Workspace panel tabs")).to_be_visible()
    expect(canvas.locator("#panel-head .ph-name")).to_have_text("Tab Tour")
    expect(canvas.locator("#panel-ws-id")).to_have_text(ws["id"])
    for tab in TABS:
        button = canvas.locator(f"#tab-{tab}")
        button.scroll_into_view_if_needed()
        button.click()
        panel = canvas.locator(f"#panel-{tab}")
        expect(panel).to_be_visible()
        expect(button).to_have_attribute("aria-selected", "true")
        expect(panel.locator(".panel-loading")).to_have_count(0)
        assert panel.locator(":scope > *").count() >= 1
        for other in TABS:
            if other != tab:
                expect(canvas.locator(f"#panel-{other}")).to_be_hidden()
    assert canvas.locator('[role="alert"]', has_text="Failed to load").count() == 0
    expect(canvas.locator("#panel-details")).to_contain_text("Goes everywhere")

    # Arrow keys, Home and End move along the tab bar.
    canvas.locator("#tab-events").focus()
    canvas.keyboard.press("ArrowRight")
    expect(canvas.locator("#tab-chat")).to_be_focused()
    expect(canvas.locator("#panel-chat")).to_be_visible()
    canvas.keyboard.press("ArrowLeft")
    expect(canvas.locator("#tab-events")).to_have_attribute("aria-selected", "true")
    canvas.keyboard.press("Home")
    expect(canvas.locator("#tab-chat")).to_have_attribute("aria-selected", "true")
    canvas.keyboard.press("End")
    expect(canvas.locator("#tab-events")).to_be_focused()


def test_every_tab_is_in_sight_and_clickable_at_the_narrowest_panel(canvas, admin_api):
    """The tab bar wraps: at the 320 px minimum (and the 480 px default) each of the eleven tabs lies
    wholly inside the panel, its label unclipped, no two overlap, and a click or the arrow keys reach it."""
    ws = create_workspace(admin_api, "Narrow Panel", role="Keeps every tab in sight")
    register_online(admin_api, ws["id"])
    for width in (320, 480):
        canvas.evaluate(f"localStorage.setItem('molecule-panel-width', '{width}')")
        canvas.reload()
        canvas.wait_for_selector("body[data-canvas-ready]")
        open_panel(canvas, ws["id"])
        panel = canvas.locator("#side-panel").bounding_box()
        assert round(panel["width"]) == width
        strip = canvas.locator(".panel-tabs-wrap").bounding_box()
        boxes = {}
        for tab in TABS:
            button = canvas.locator(f"#tab-{tab}")
            box = button.bounding_box()
            assert panel["x"] <= box["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"], (width, tab, box)
            assert strip["y"] <= box["y"] and box["y"] + box["height"] <= strip["y"] + strip["height"] + 1, (width, tab, box)
            # the label is legible: not cut off by its box, not shrunk
            assert button.evaluate("el => el.scrollWidth <= el.clientWidth"), (width, tab)
            assert float(button.evaluate("el => parseFloat(getComputedStyle(el).fontSize)")) >= 12
            boxes[tab] = box
        for a, b in zip(TABS, TABS[1:]):  # reading order, and no overlap
            first, second = boxes[a], boxes[b]
            same_row = abs(first["y"] - second["y"]) < 2
            assert (same_row and second["x"] >= first["x"] + first["width"] - 0.5) or second["y"] >= first["y"] + first["height"] - 2, (a, b)
        rows = len({round(box["y"]) for box in boxes.values()})
        assert rows == (3 if width == 320 else 2), rows
        # the point a click lands on is the tab itself (nothing covers it), and it selects the tab
        for tab in TABS:
            box = boxes[tab]
            hit = canvas.evaluate("([x, y]) => document.elementFromPoint(x, y)?.id", [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2])
            assert hit == f"tab-{tab}", (width, tab, hit)
            canvas.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
            expect(canvas.locator(f"#tab-{tab}")).to_have_attribute("aria-selected", "true")
            expect(canvas.locator(f"#panel-{tab}")).to_be_visible()
        if width == 320:
            canvas.locator("#tab-schedule").click()
            screenshot(canvas, "panel-tabs-320")
            # the keyboard walks every tab, across the rows, and wraps around
            canvas.locator("#tab-chat").click()
            canvas.locator("#tab-chat").focus()
            for tab in TABS[1:] + TABS[:1]:
                canvas.keyboard.press("ArrowRight")
                expect(canvas.locator(f"#tab-{tab}")).to_be_focused()
                expect(canvas.locator(f"#tab-{tab}")).to_have_attribute("aria-selected", "true")
        else:
            canvas.locator("#tab-schedule").click()
            screenshot(canvas, "panel-tabs-480")
    canvas.evaluate("localStorage.removeItem('molecule-panel-width')")


def test_tabs_degrade_to_an_empty_state_when_their_backend_answers_4xx(canvas, admin_api):
    ws = create_workspace(admin_api, "Going Away")
    register_online(admin_api, ws["id"])
    canvas.reload()
    canvas.route(re.compile(rf"/canvas/panel/{ws['id']}/(?!chat/)"), lambda route: route.fulfill(status=404, body="gone"))
    open_panel(canvas, ws["id"], "chat")
    for tab in TABS[1:]:
        canvas.click(f"#tab-{tab}")
        expect(canvas.locator(f"#panel-{tab} .empty-state")).to_contain_text("this workspace may have been removed")
    expect(canvas.locator("#panel-head")).to_contain_text("This workspace is gone.")
    canvas.click("#tab-chat")
    expect(canvas.locator("#panel-chat .chat")).to_be_visible()  # a tab that did load keeps working


def test_the_panel_opens_closes_with_x_and_escape_and_keeps_its_width(canvas, admin_api):
    ws = create_workspace(admin_api, "Resizable")
    register_online(admin_api, ws["id"])
    canvas.reload()
    panel = canvas.locator("#side-panel")
    open_panel(canvas, ws["id"])
    expect(canvas.locator("body")).to_have_class(re.compile(r"\bpanel-open\b"))
    assert round(panel.bounding_box()["width"]) == 480
    canvas.click('[data-panel-action="close"]')
    expect(panel).to_be_hidden()
    expect(canvas.locator("body")).not_to_have_class(re.compile(r"\bpanel-open\b"))
    expect(card(canvas, ws["id"])).to_be_focused()
    expect(card(canvas, ws["id"])).to_have_attribute("aria-pressed", "false")

    open_panel(canvas, ws["id"], "details")
    canvas.locator("#tab-details").focus()
    canvas.keyboard.press("Escape")
    expect(panel).to_be_hidden()
    expect(card(canvas, ws["id"])).to_be_focused()

    open_panel(canvas, ws["id"])
    handle = canvas.locator(".panel-resize")
    handle.focus()
    for _ in range(3):
        canvas.keyboard.press("ArrowLeft")
    expect(handle).to_have_attribute("aria-valuenow", "528")
    box = handle.bounding_box()
    canvas.mouse.move(box["x"] + box["width"] / 2, 400)
    canvas.mouse.down()
    canvas.mouse.move(1280 - 640, 400, steps=8)
    canvas.mouse.up()
    expect(handle).to_have_attribute("aria-valuenow", "640")

    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    assert canvas.evaluate("getComputedStyle(document.documentElement).getPropertyValue('--panel-width').trim()") == "640px"
    open_panel(canvas, ws["id"])
    assert round(panel.bounding_box()["width"]) == 640

    def toolbar_centre():
        box = canvas.locator("#toolbar").bounding_box()
        return box["x"] + box["width"] / 2
    # the toolbar stays centred over what the panel leaves of the canvas
    wait_until(lambda: abs(toolbar_centre() - (1280 - 640) / 2) < 2, what="the toolbar to shift")


def test_activity_filters_and_refreshes_itself_while_live(canvas, admin_api):
    ws = create_workspace(admin_api, "Busy Bee")
    register_online(admin_api, ws["id"])

    def log(kind, summary):
        admin_api.post(f"/workspaces/{ws['id']}/activity", json={
            "activity_type": kind, "summary": summary, "status": "error" if kind == "error" else "ok"})

    log("agent_log", "Indexed 12 documents")
    log("error", "Tool call failed: timeout")
    canvas.reload()
    open_panel(canvas, ws["id"], "activity")
    tab = canvas.locator("#panel-activity")
    expect(tab.locator(".tab-count")).to_have_text("2 activities")
    tab.get_by_role("button", name="Errors").click()
    expect(tab.locator(".tab-count")).to_have_text("1 activity")
    expect(tab.locator(".row-summary")).to_have_text(["Tool call failed: timeout"])
    tab.locator(".row-sum").first.click()
    expect(tab.locator("details.row[open]")).to_have_count(1)

    log("error", "Second failure")
    expect(tab.locator(".tab-count")).to_have_text("2 activities", timeout=8000)  # the 5 s refresh
    expect(tab.locator("details.row[open] .row-summary")).to_have_text("Tool call failed: timeout")  # stays open
    screenshot(canvas, "panel-activity")

    tab.locator("[data-live-toggle]").click()
    expect(tab.locator("[data-live-toggle]")).to_have_text("‖ Paused")
    tab.get_by_role("button", name="All").click()
    expect(tab.locator(".tab-count")).to_have_text("3 activities")


def test_details_edit_and_delete_through_the_api(canvas, admin_api):
    ws = create_workspace(admin_api, "Draft Name", role="Old role", tier=2)
    register_online(admin_api, ws["id"])
    canvas.reload()
    open_panel(canvas, ws["id"], "details")
    tab = canvas.locator("#panel-details")
    expect(tab.get_by_text("Peers (0)")).to_be_visible()
    tab.get_by_role("button", name="Edit").click()
    canvas.keyboard.press("Escape")  # backs out of the edit, the panel stays
    expect(tab.locator("[data-details-form]")).to_be_hidden()
    expect(canvas.locator("#side-panel")).to_be_visible()
    tab.get_by_role("button", name="Edit").click()
    tab.locator('[name="name"]').fill("")
    tab.get_by_role("button", name="Save").click()
    expect(tab.locator("[data-details-error]")).to_have_text("A name is required.")
    tab.locator('[name="name"]').fill("Bad {name}")
    tab.get_by_role("button", name="Save").click()
    expect(tab.locator("[data-details-error]")).to_have_text("name contains invalid characters")
    tab.locator('[name="name"]').fill("Final Name")
    tab.locator('[name="role"]').fill("New role")
    tab.locator('[name="tier"]').select_option("3")
    tab.get_by_role("button", name="Save").click()
    expect(tab.locator("[data-details-view]")).to_contain_text("Final Name")
    expect(tab.locator("[data-details-view]")).to_contain_text("New role")
    saved = admin_api.get(f"/workspaces/{ws['id']}").json()
    assert (saved["name"], saved["role"], saved["tier"]) == ("Final Name", "New role", 3)
    expect(card(canvas, ws["id"]).locator(".ws-name")).to_have_text("Final Name")
    expect(canvas.locator("#panel-head .ph-name")).to_have_text("Final Name")

    tab.get_by_role("button", name="Delete Workspace").click()
    tab.get_by_role("button", name="Cancel").click()
    expect(tab.get_by_role("button", name="Delete Workspace")).to_be_visible()
    tab.get_by_role("button", name="Delete Workspace").click()
    tab.get_by_role("button", name="Confirm Delete").click()
    expect(card(canvas, ws["id"])).to_have_count(0)
    expect(canvas.locator("#side-panel")).to_be_hidden()
    assert admin_api.get(f"/workspaces/{ws['id']}").json()["status"] == "removed"


def test_files_tab_lists_opens_edits_saves_creates_and_deletes(canvas, admin_api):
    ws = templated_workspace(admin_api, "File Keeper")
    canvas.reload()
    open_panel(canvas, ws["id"], "files")
    tab = canvas.locator("#panel-files")
    expect(tab.get_by_role("button", name="+ New")).to_be_visible()
    expect(tab.get_by_role("button", name="Upload")).to_be_visible()
    expect(tab.locator('[data-file-path="config.yaml"]')).to_be_visible()
    expect(tab.get_by_text("Select a file…", exact=False)).to_be_visible()

    tab.locator('[data-file-path="config.yaml"]').click()
    editor = tab.locator("[data-editor-text]")
    expect(editor).to_have_value(re.compile(r"runtime: echo"))
    editor.fill(editor.input_value() + "# edited in the canvas\n")
    expect(tab.locator("[data-editor-dirty]")).to_be_visible()
    editor.press("Control+s")
    expect(tab.locator("[data-editor-dirty]")).to_be_hidden()
    expect(card(canvas, ws["id"]).locator(".ws-restart-mark")).to_have_text("↻ Restart to apply changes")
    expect(canvas.locator("#panel-restart")).to_be_visible()

    tab.get_by_role("button", name="+ New").click()
    tab.locator('[data-files-new-form] input').fill("notes/todo.md")
    tab.locator('[data-files-new-form] input').press("Enter")
    expect(tab.locator('[data-file-path="notes/todo.md"]')).to_be_visible()
    expect(tab.locator("[data-editor-path]")).to_have_text("notes/todo.md")
    tab.locator("[data-files-input]").set_input_files(files=[{"name": "brief.md", "mimeType": "text/markdown", "buffer": b"# Brief\n"}])
    expect(tab.locator('[data-file-path="brief.md"]')).to_be_visible()

    canvas.reload()
    open_panel(canvas, ws["id"], "files")
    tab.locator('[data-file-path="config.yaml"]').click()
    expect(tab.locator("[data-editor-text]")).to_have_value(re.compile(r"# edited in the canvas\n$"))
    screenshot(canvas, "panel-files")
    tab.locator('[data-file-delete="brief.md"]').click()
    tab.locator(".tree-confirm").get_by_role("button", name="Delete").click()
    expect(tab.locator('[data-file-path="brief.md"]')).to_have_count(0)
    expect(tab.locator("[data-editor-path]")).to_have_text("config.yaml")  # the open file stays open
    assert "brief.md" not in [f["path"] for f in admin_api.get(f"/workspaces/{ws['id']}/files", params={"depth": 5}).json()]


def test_config_save_asks_for_a_restart_and_shows_yaml_problems(canvas, admin_api):
    ws = templated_workspace(admin_api, "Config Keeper")
    canvas.reload()
    open_panel(canvas, ws["id"], "config")
    tab = canvas.locator("#panel-config")
    editor = tab.locator("[data-config-text]")
    expect(editor).to_have_value(re.compile(r"name: Demo Specialist"))
    save = tab.get_by_role("button", name="Save")
    expect(save).to_be_disabled()
    editor.fill("name: Config Keeper\n\truntime: echo\n")
    save.click()
    expect(tab.locator("[data-config-error]")).to_have_text("YAML does not allow tabs for indentation (line 2): indent with spaces.")
    editor.fill("name: Config Keeper\nruntime: echo\nskills: [unclosed\n")
    save.click()
    expect(tab.locator("[data-config-error]")).to_contain_text("config.yaml is not valid YAML")  # the server's check, on reload
    expect(tab.locator("[data-config-error]")).to_contain_text("(line 4, column 1)")
    expect(card(canvas, ws["id"]).locator(".ws-restart-mark")).to_have_text("↻ Restart to apply changes")
    expect(canvas.locator("#panel-restart")).to_contain_text("Config changed — restart to apply")
    assert card(canvas, ws["id"]).get_attribute("data-needs-restart") == "true"
    screenshot(canvas, "panel-config-restart")
    tab.locator("[data-config-text]").fill("name: Config Keeper\nruntime: echo\n")
    tab.get_by_role("button", name="Save").click()
    expect(tab.locator("[data-config-error]")).to_be_hidden()
    # the error clears as the save starts; the PUT lands a moment later
    wait_until(lambda: admin_api.get(f"/workspaces/{ws['id']}/files/config.yaml").json()["content"]
               == "name: Config Keeper\nruntime: echo\n", what="the valid config saved")

    canvas.locator("#panel-restart").get_by_role("button", name="Restart Now").click()
    expect(canvas.locator("#panel-restart")).to_be_hidden()
    expect(card(canvas, ws["id"]).locator(".ws-restart-mark")).to_have_count(0)


def test_memory_lists_searches_and_deletes_a_memory_written_through_the_api(canvas, admin_api):
    ws = create_workspace(admin_api, "Rememberer")
    register_online(admin_api, ws["id"])
    for content in ("The staging database is rebuilt every night", "Lunch orders close at 11"):
        assert admin_api.post(f"/workspaces/{ws['id']}/memories", json={"content": content, "scope": "LOCAL"}).status_code == 201
    admin_api.post(f"/workspaces/{ws['id']}/memory", json={"key": "cursor", "value": {"page": 4}})
    canvas.reload()
    open_panel(canvas, ws["id"], "memory")
    tab = canvas.locator("#panel-memory")
    expect(tab.locator(".tab-count")).to_contain_text("2 memories")
    expect(tab.get_by_text("Key/value entries")).to_be_visible()
    tab.locator("details.mem-row summary").first.click()
    screenshot(canvas, "panel-memory")
    tab.locator("[data-memory-q]").fill("database")
    expect(tab.locator(".tab-count")).to_contain_text("1 memory")
    row = tab.locator("details.mem-row", has_text="staging database")
    row.locator("summary").click()
    row.get_by_role("button", name="Delete").click()
    row.get_by_role("button", name="Confirm delete").click()
    expect(tab.locator("details.mem-row")).to_have_count(0)
    expect(tab.get_by_text("No LOCAL memories match", exact=False)).to_be_visible()
    assert [m["content"] for m in admin_api.get(f"/workspaces/{ws['id']}/memories").json()] == ["Lunch orders close at 11"]
    tab.get_by_role("button", name="GLOBAL").click()
    expect(tab.locator(".tab-count")).to_contain_text("GLOBAL")


def test_events_show_the_workspaces_structure_events(canvas, admin_api):
    ws = create_workspace(admin_api, "Eventful")
    register_online(admin_api, ws["id"])
    canvas.reload()
    open_panel(canvas, ws["id"], "events")
    tab = canvas.locator("#panel-events")
    expect(tab.locator(".event-type", has_text="WORKSPACE_ONLINE")).to_have_count(1)
    count = tab.locator(".tab-count").inner_text()
    assert re.fullmatch(r"\d+ events?", count)
    tab.locator(".row-sum", has_text="WORKSPACE_ONLINE").click()
    expect(tab.locator("details.row[open] pre.json")).to_contain_text('"url"')
    screenshot(canvas, "panel-events")


def test_side_panel_open_on_a_three_level_team(canvas, admin_api):
    """The screenshot artifact: a team with a grandchild, the panel open on the lead's chat."""
    lead = admin_api.post("/workspaces", json={"name": "Product Lead", "role": "Plans the quarter and delegates",
                                               "runtime": "echo", "tier": 3, "canvas": {"x": 80, "y": 120}}).json()
    research = create_workspace(admin_api, "Research", role="Market and user research", parent_id=lead["id"], canvas={"x": 96, "y": 250})
    build = create_workspace(admin_api, "Engineering", role="Builds and ships", parent_id=lead["id"], canvas={"x": 350, "y": 250})
    qa = create_workspace(admin_api, "QA", role="Tests every release", parent_id=build["id"], canvas={"x": 366, "y": 380})
    for ws in (research, build, qa):
        register_online(admin_api, ws["id"], skills=[{"id": "s1", "name": "analysis"}, {"id": "s2", "name": "reports"}])
    wait_until(lambda: admin_api.get(f"/workspaces/{lead['id']}").json()["status"] == "online", timeout=90, what="the lead online")
    for text in ("What should we focus on this quarter?", "Give me **three** bullet points:\n- speed\n- quality\n- cost"):
        admin_api.post(f"/workspaces/{lead['id']}/a2a", json={"method": "message/send", "params": {
            "message": {"role": "user", "parts": [{"kind": "text", "text": text}]}}})
    canvas.reload()
    open_panel(canvas, lead["id"], "chat")
    expect(canvas.locator(".chat-log .bubble.is-agent")).to_have_count(2)
    canvas.locator('[data-chat-pane="mine"] textarea').fill("Draft the launch plan")
    screenshot(canvas, "side-panel-open")
    canvas.click("#tab-details")
    expect(canvas.locator("#panel-details").get_by_text("Peers (2)")).to_be_visible()
    screenshot(canvas, "side-panel-details")


@pytest.fixture
def model_server(admin_api):
    """The local fake of OpenAI's API, set as the global OPENAI_* secrets for the test's workspaces."""
    from molecule_site.tests.test_mixed_team_end_to_end import fake_openai

    server = fake_openai.FakeOpenAIServer().start()
    for key, value in (("OPENAI_BASE_URL", server.state.base_url), ("OPENAI_API_KEY", "sk-fake-canvas")):
        assert admin_api.put("/settings/secrets", json={"key": key, "value": value}).status_code == 200
    yield server
    for key in ("OPENAI_BASE_URL", "OPENAI_API_KEY"):
        admin_api.delete(f"/settings/secrets/{key}")
    server.stop()


def test_details_show_metered_spend_against_the_budget(canvas, admin_api, model_server):
    """An openai-runtime agent whose model call reports 400k + 100k tokens of gpt-4.1-mini (32 cents): 80 % of 40."""
    model_server.state.default = {"content": "Counted.", "usage": (400_000, 100_000)}
    ws = admin_api.post("/workspaces", json={"name": "Metered", "template": "openai-default", "canvas": {"x": 120, "y": 120}}).json()
    wait_until(lambda: admin_api.get(f"/workspaces/{ws['id']}").json()["status"] in ("online", "failed"), timeout=90, what="Metered online")
    got = admin_api.get(f"/workspaces/{ws['id']}").json()
    assert got["status"] == "online", got
    assert admin_api.patch(f"/workspaces/{ws['id']}/budget", json={"budget_limit": 40}).status_code == 200
    sent = admin_api.post(f"/workspaces/{ws['id']}/a2a", timeout=60, json={"method": "message/send", "params": {
        "message": {"role": "user", "parts": [{"kind": "text", "text": "count my tokens"}]}}})
    assert sent.status_code == 200, sent.text
    canvas.reload()
    open_panel(canvas, ws["id"], "details")
    spend = canvas.locator('[data-testid="details-spend"]')
    expect(spend).to_contain_text("$0.32 of $0.40 budget · 80 %")
    expect(spend.locator(".spend-bar.is-amber")).to_have_attribute("aria-valuenow", "80")
    width = spend.locator(".spend-bar i").evaluate("el => el.getBoundingClientRect().width / el.parentElement.getBoundingClientRect().width")
    assert abs(width - 0.8) < 0.02
    expect(spend.locator('[data-testid="usage-chart"] rect')).to_have_count(30)
    expect(spend).to_contain_text("500k in all")
    spend.scroll_into_view_if_needed()
    screenshot(canvas, "panel-details-spend")


def test_traces_tab_shows_the_last_delegation_as_a_waterfall_beside_the_transcript(canvas, admin_api):
    """Two echo runtimes on the local backend: the canvas asks the PM to delegate to the Dev; the
    Traces tab draws the chain's spans (the platform's and both runtimes') as one waterfall."""
    pm = admin_api.post("/workspaces", json={"name": "Traced PM", "runtime": "echo", "canvas": {"x": 80, "y": 120}}).json()
    dev = admin_api.post("/workspaces", json={"name": "Traced Dev", "runtime": "echo", "parent_id": pm["id"],
                                              "canvas": {"x": 96, "y": 260}}).json()
    for ws in (pm, dev):
        wait_until(lambda ws=ws: admin_api.get(f"/workspaces/{ws['id']}").json()["status"] == "online", timeout=90,
                   what="the echo runtimes online")
    sent = admin_api.post(f"/workspaces/{pm['id']}/a2a", timeout=60, json={"method": "message/send", "params": {
        "message": {"role": "user", "parts": [{"kind": "text", "text": f"/delegate {dev['id']} Ship the release"}]}}})
    assert sent.status_code == 200, sent.text

    def chain_stored():
        for item in admin_api.get(f"/workspaces/{pm['id']}/traces").json()["data"]:
            spans = admin_api.get(f"/workspaces/{pm['id']}/traces/{item['id']}").json()["spans"]
            names = sorted(s["name"] for s in spans)  # all five, the PM runtime's exported last
            if names == ["a2a.proxy", "a2a.proxy", "a2a.task", "a2a.task", "execute_tool delegate_task"]:
                return spans
        return None

    spans = wait_until(chain_stored, timeout=30, what="the delegation's trace")
    canvas.set_viewport_size({"width": 1500, "height": 900})
    canvas.reload()
    open_panel(canvas, pm["id"], "traces")
    tab = canvas.locator("#panel-traces")
    waterfall = tab.locator("details.trace[open] .waterfall")
    expect(waterfall.locator(".span-row")).to_have_count(len(spans))
    names = waterfall.locator(".span-row").evaluate_all("rows => rows.map(r => [r.dataset.spanName, +r.dataset.depth])")
    assert names[0] == ["a2a.proxy", 0]
    assert ["execute_tool delegate_task", 2] in names and names[-1][0] == "a2a.task"
    # the bars sit on one time axis: each child starts no earlier than its parent
    lefts = waterfall.locator(".span-track i").evaluate_all("bars => bars.map(b => b.getBoundingClientRect().left)")
    by_id = {s["span_id"]: i for i, s in enumerate(spans)}
    assert all(lefts[i] >= lefts[by_id[s["parent_span_id"]]] - 1 for i, s in enumerate(spans) if s["parent_span_id"] in by_id)
    expect(tab.locator(".transcript-lines li")).not_to_have_count(0)
    expect(tab.locator(".transcript")).to_contain_text("Ship the release")
    # a span opens to its attributes
    tool = waterfall.locator(".span-row", has_text="execute_tool delegate_task")
    tool.locator("summary").click()
    expect(tool.locator(".span-attrs")).to_be_visible()
    expect(tool.locator(".span-attrs")).to_contain_text("gen_ai.tool.name")
    screenshot(canvas, "panel-traces")
    canvas.locator(".panel-resize").focus()
    canvas.keyboard.press("Home")  # the widest panel: the transcript moves beside the waterfall
    side = tab.locator(".transcript").bounding_box()
    assert side["x"] > tab.locator(".traces-list").bounding_box()["x"] + 200
    screenshot(canvas, "panel-traces-wide")


def test_a_restart_made_elsewhere_clears_the_restart_mark(canvas, admin_api):
    """The flag is the page's own; a restart from the API (another browser, a script) starts the
    workspace again with the saved config, so the page must stop asking for one."""
    ws = templated_workspace(admin_api, "Restarted Elsewhere")
    canvas.reload()
    open_panel(canvas, ws["id"], "config")
    tab = canvas.locator("#panel-config")
    tab.locator("[data-config-text]").fill("name: Restarted Elsewhere\nruntime: echo\n")
    tab.get_by_role("button", name="Save").click()
    expect(card(canvas, ws["id"]).locator(".ws-restart-mark")).to_have_count(1)
    assert admin_api.post(f"/workspaces/{ws['id']}/restart").status_code == 200
    expect(card(canvas, ws["id"]).locator(".ws-restart-mark")).to_have_count(0)
    expect(canvas.locator("#panel-restart")).to_be_hidden()
    assert card(canvas, ws["id"]).get_attribute("data-needs-restart") is None
