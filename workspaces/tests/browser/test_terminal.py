"""The Terminal tab (canvas spec §3.5) in Chromium against the live platform: a real shell of a
local echo runtime typed into through xterm.js, its size following the panel, hanging up when
the tab is left, and the clear state shown when the platform has no shell for a workspace."""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from workspaces.tests.browser.conftest import ADMIN_TOKEN, create_workspace, screenshot, wait_until

ECHO_TIMEOUT = 90  # a local echo runtime starts as a subprocess (python + the A2A SDK)
SHELL_TIMEOUT = 20_000


def card(page, workspace_id: str):
    return page.locator(f'[data-workspace-id="{workspace_id}"]')


def open_terminal(page, workspace_id: str):
    card(page, workspace_id).click(position={"x": 24, "y": 16})
    expect(page.locator("#side-panel")).to_be_visible()
    page.click("#tab-terminal")
    expect(page.locator("#panel-terminal [data-terminal]")).to_be_visible()
    return page.locator("#panel-terminal")


def screen_text(page) -> str:
    return page.locator("#panel-terminal .xterm-rows").inner_text()


def run(page, command: str, pattern: str) -> re.Match:
    """Type ``command`` as a person would and wait for ``pattern`` on the terminal's screen."""
    page.locator("#panel-terminal .xterm").click()
    page.keyboard.type(command)
    page.keyboard.press("Enter")
    return wait_until(lambda: re.search(pattern, screen_text(page)), timeout=15, what=f"{pattern!r} on the screen")


def stty_size(page, marker: str) -> tuple[int, int]:
    """The shell's own idea of its size (``stty size``: rows cols), tagged to tell runs apart."""
    found = run(page, f"echo {marker}=$(stty size | tr ' ' x)", rf"{marker}=(\d+)x(\d+)")
    return int(found.group(1)), int(found.group(2))


def shown_size(panel) -> tuple[int, int]:
    cols, rows = panel.locator("[data-terminal-size]").inner_text().split("×")
    return int(rows), int(cols)


def refusal(platform, workspace_id: str) -> dict:
    """What the platform answers a non-browser client asking for this workspace's shell (the
    sync client: Playwright's sync API already runs an event loop in this thread)."""
    url = f"ws://127.0.0.1:{platform.port}/workspaces/{workspace_id}/terminal"
    try:
        with connect(url, additional_headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, open_timeout=10):
            return {"opened": True}
    except InvalidStatus as refused:
        return {"status": refused.response.status_code, **json.loads(refused.response.body)}


def test_a_local_workspace_terminal_runs_what_is_typed_and_follows_the_panel_size(canvas, admin_api):
    """Needs LocalProcessProvisioner.exec_terminal (a PtySession in the runtime's directory)."""
    created = admin_api.post("/workspaces", json={"name": "Shell Host", "runtime": "echo", "canvas": {"x": 140, "y": 140}})
    assert created.status_code == 201, created.text
    workspace_id = created.json()["id"]
    wait_until(lambda: admin_api.get(f"/workspaces/{workspace_id}").json()["status"] == "online",
               timeout=ECHO_TIMEOUT, what="the echo runtime to come online")
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    panel = open_terminal(canvas, workspace_id)
    expect(panel.get_by_role("status")).to_have_text("Shell active", timeout=SHELL_TIMEOUT)
    expect(panel.locator(".xterm-rows")).to_contain_text("Connected to workspace shell")

    run(canvas, "echo hello-$((6*7))", r"hello-42")
    # The shell is told the size the fit addon chose for the panel: stty agrees with the status bar.
    before = stty_size(canvas, "first")
    assert before == shown_size(panel)
    assert before[1] >= 40 and before[0] >= 10
    screenshot(canvas, "terminal-shell")

    # Widen the panel (its resize handle's End/Home keys) and grow the window: the shell follows.
    canvas.locator(".panel-resize").focus()
    canvas.keyboard.press("Home")  # the widest panel, 800 px
    canvas.set_viewport_size({"width": 1440, "height": 960})
    wait_until(lambda: shown_size(panel) != before, what="the terminal to refit")
    after = stty_size(canvas, "second")
    assert after == shown_size(panel)
    assert after[1] > before[1] and after[0] > before[0]
    screenshot(canvas, "terminal-resized")

    # Esc belongs to the shell: the panel stays open.
    canvas.locator("#panel-terminal .xterm").click()
    canvas.keyboard.press("Escape")
    expect(canvas.locator("#side-panel")).to_be_visible()

    # Leaving the tab hangs up; coming back opens a new shell.
    canvas.click("#tab-details")
    expect(canvas.locator("#panel-terminal [data-terminal]")).to_have_count(0)
    canvas.click("#tab-terminal")
    expect(panel.get_by_role("status")).to_have_text("Shell active", timeout=SHELL_TIMEOUT)
    run(canvas, "echo again-$((2*21))", r"again-42")
    assert "hello-42" not in screen_text(canvas)  # a fresh terminal, not the old screen

    # The shell exiting ends the session; Reconnect starts another.
    run(canvas, "exit", r"Session ended")
    expect(panel.get_by_role("status")).to_have_text("Disconnected")
    panel.get_by_role("button", name="Reconnect").click()
    expect(panel.get_by_role("status")).to_have_text("Shell active", timeout=SHELL_TIMEOUT)
    run(canvas, "echo third-$((40+2))", r"third-42")


def test_a_workspace_without_a_runtime_shows_why_there_is_no_terminal(canvas, admin_api, platform):
    ws = create_workspace(admin_api, "Outside Agent", canvas={"x": 140, "y": 140})
    answer = refusal(platform, ws["id"])
    assert "error" in answer, answer  # an external workspace has no shell on this platform
    canvas.reload()
    canvas.wait_for_selector("body[data-canvas-ready]")
    panel = open_terminal(canvas, ws["id"])
    box = panel.locator("[data-terminal-unavailable]")
    expect(box).to_be_visible(timeout=SHELL_TIMEOUT)
    expect(box).to_contain_text("Terminal unavailable")
    expect(box.locator("[data-terminal-reason]")).to_have_text(answer["error"])
    expect(panel.get_by_role("status")).to_have_text(f"Terminal unavailable: {answer['error']}")
    expect(panel.locator("[data-terminal-screen]")).to_be_hidden()
    screenshot(canvas, "terminal-unavailable")
    box.get_by_role("button", name="Try again").click()
    expect(panel.get_by_role("status")).to_have_text(f"Terminal unavailable: {answer['error']}")
    expect(box).to_be_visible()
    # Closing the panel takes the tab down with it.
    canvas.keyboard.press("Escape")
    expect(canvas.locator("#side-panel")).to_be_hidden()
