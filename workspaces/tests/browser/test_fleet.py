"""The toolbar's fleet actions (canvas spec §1.1): "Stop all (N tasks active)" and
"Restart pending (N)", each confirmed, each a real restart through the API."""

from __future__ import annotations

from playwright.sync_api import expect

from workspaces.tests.browser.conftest import create_workspace, register_online, wait_until
from workspaces.tests.browser.test_panel import open_panel, templated_workspace


def _beat(admin_api, workspace_id, tasks: int) -> None:
    response = admin_api.post("/registry/heartbeat", json={
        "workspace_id": workspace_id, "active_tasks": tasks, "current_task": "Crunching numbers" if tasks else ""})
    assert response.status_code == 200, response.text


def test_stop_all_restarts_every_busy_workspace_after_a_confirm(canvas, admin_api):
    busy = [create_workspace(admin_api, name, canvas={"x": 100 + 300 * n, "y": 150}) for n, name in enumerate(("Busy A", "Busy B"))]
    idle = create_workspace(admin_api, "Idle", canvas={"x": 700, "y": 150})
    for ws in (*busy, idle):
        register_online(admin_api, ws["id"])
    stop = canvas.locator("#fleet-stop")
    expect(stop).to_be_hidden()
    _beat(admin_api, busy[0]["id"], 2)
    _beat(admin_api, busy[1]["id"], 1)
    expect(stop).to_have_text("Stop all (3 tasks active)")  # live, from the heartbeats' events

    stop.click()
    dialog = canvas.get_by_role("dialog", name="Stop all running tasks")
    expect(dialog.locator("li")).to_have_text(["Busy A", "Busy B"])
    dialog.get_by_role("button", name="Cancel").click()
    assert {admin_api.get(f"/workspaces/{ws['id']}").json()["status"] for ws in busy} == {"online"}

    stop.click()
    dialog.get_by_role("button", name="Stop all").click()
    wait_until(lambda: [admin_api.get(f"/workspaces/{ws['id']}").json()["status"] for ws in (*busy, idle)]
               == ["provisioning", "provisioning", "online"], what="the busy workspaces restarting")
    expect(stop).to_be_hidden()
    expect(canvas.locator(".toast", has_text="Restarted 2 workspaces")).to_be_visible()


def test_restart_pending_restarts_the_workspaces_whose_config_changed(canvas, admin_api):
    ws = templated_workspace(admin_api, "Changed Config")
    wait_until(lambda: admin_api.get(f"/workspaces/{ws['id']}").json()["status"] == "online", timeout=60, what="online")
    canvas.reload()
    pending = canvas.locator("#fleet-pending")
    expect(pending).to_be_hidden()
    open_panel(canvas, ws["id"], "config")
    canvas.locator("#panel-config [data-config-text]").fill("name: Changed Config\nruntime: echo\n")
    canvas.locator("#panel-config").get_by_role("button", name="Save").click()
    expect(pending).to_have_text("Restart pending (1)")
    pending.click()
    canvas.get_by_role("dialog", name="Restart pending workspaces").get_by_role("button", name="Restart").click()
    expect(pending).to_be_hidden()
    wait_until(lambda: sum(e["event_type"] == "WORKSPACE_PROVISIONING" for e in admin_api.get(f"/events/{ws['id']}").json()) >= 2,
               what="a second provisioning (the restart)")
