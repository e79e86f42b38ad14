"""The Schedule tab (canvas spec §3.11) against the live platform: create with the live preview of
the next runs, the enabled switch, run now through the worker to a real echo runtime, history, delete."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from workspaces.tests.browser.conftest import screenshot
from workspaces.tests.browser.test_chat import echo_workspace
from workspaces.tests.browser.test_panel import open_panel


def test_schedule_tab_previews_creates_toggles_runs_and_deletes(canvas, admin_api):
    ws = echo_workspace(admin_api, "Scheduled PM")
    created = admin_api.post(f"/workspaces/{ws['id']}/schedules", json={
        "name": "nightly-report", "cron_expr": "0 2 * * *", "timezone": "UTC", "prompt": "Write the nightly report."})
    assert created.status_code == 201, created.text
    canvas.reload()
    open_panel(canvas, ws["id"], "schedule")
    tab = canvas.locator("#panel-schedule")
    expect(tab.locator(".tab-count")).to_have_text("1 schedule")
    expect(tab.locator(".sched-row", has_text="nightly-report")).to_contain_text("At 02:00 every day")

    # the form previews the next five runs, computed by the server in the schedule's zone
    tab.get_by_role("button", name="+ New schedule").click()
    form = tab.locator("[data-schedule-form]")
    expect(form).to_be_visible()
    form.get_by_label("Name").fill("standup")
    form.get_by_label("Timezone").fill("Europe/Paris")
    form.get_by_label("Cron expression").fill("0 25 * * *")
    expect(form.locator(".sched-problem")).to_have_text("hour field '25' is invalid (allowed: 0-23)")
    form.get_by_label("Cron expression").fill("*/15 9-17 * * 1-5")
    expect(form.locator(".sched-desc")).to_contain_text("Every 15th minute from 09:00 through 17:59 on Monday through Friday (Europe/Paris)")
    expect(form.locator(".sched-runs li")).to_have_count(5)
    expect(form.locator(".sched-runs li").first).to_contain_text(re.compile(r"(Mon|Tue|Wed|Thu|Fri) .* CES?T"))
    form.get_by_label("Prompt").fill("Post today's plan to the team.")
    screenshot(canvas, "panel-schedule-form")
    form.get_by_role("button", name="Create").click()
    expect(tab.locator(".tab-count")).to_have_text("2 schedules")
    expect(form).to_be_hidden()
    standup = admin_api.get(f"/workspaces/{ws['id']}/schedules").json()[1]
    assert (standup["name"], standup["timezone"], standup["source"]) == ("standup", "Europe/Paris", "operator")

    # the switch pauses a schedule without opening its row
    nightly = tab.locator(".sched-row", has_text="nightly-report")
    nightly.get_by_label("Enabled: nightly-report").click()
    expect(tab.locator(".sched-row.is-off", has_text="nightly-report")).to_contain_text("paused")
    assert admin_api.get(f"/workspaces/{ws['id']}/schedules/{created.json()['id']}").json()["enabled"] is False
    expect(tab.locator(".sched-row[open]")).to_have_count(0)

    # run now: the worker sends the prompt to the echo runtime; its reply lands in the history
    row = tab.locator(".sched-row", has_text="standup")
    row.locator(".sched-name").click()
    row.get_by_role("button", name="▶ Run now").click()
    history = tab.locator(".sched-row", has_text="standup").locator(".sched-history li")
    expect(history.first).to_contain_text("echo: Post today's plan to the team.", timeout=30_000)
    expect(history.first.locator(".ns-badge")).to_have_text("manual")
    expect(tab.locator(".sched-row", has_text="standup").locator(".sched-times")).to_contain_text("✓")
    expect(tab.locator(".sched-row[open]")).to_have_count(1)  # the reload after the run kept the row open
    expect(history.first).to_be_visible()
    screenshot(canvas, "panel-schedule")

    # edit fills the form with the schedule and saves through PATCH
    tab.locator(".sched-row", has_text="standup").get_by_role("button", name="Edit").click()
    expect(form.get_by_label("Cron expression")).to_have_value("*/15 9-17 * * 1-5")
    expect(form.get_by_label("Timezone")).to_have_value("Europe/Paris")
    expect(form.get_by_label("Prompt")).to_have_value("Post today's plan to the team.")
    form.get_by_label("Cron expression").fill("0 9 * * 1-5")
    expect(form.locator(".sched-desc")).to_contain_text("At 09:00 on Monday through Friday")
    form.get_by_role("button", name="Save").click()
    expect(form).to_be_hidden()
    expect(tab.locator(".sched-row", has_text="standup")).to_contain_text("At 09:00 on Monday through Friday")
    assert admin_api.get(f"/workspaces/{ws['id']}/schedules/{standup['id']}").json()["cron_expr"] == "0 9 * * 1-5"

    # delete asks once more
    nightly = tab.locator(".sched-row", has_text="nightly-report")
    nightly.locator(".sched-name").click()
    nightly.get_by_role("button", name="Delete").click()
    nightly.get_by_role("button", name="Confirm delete").click()
    expect(tab.locator(".tab-count")).to_have_text("1 schedule")
    assert [s["name"] for s in admin_api.get(f"/workspaces/{ws['id']}/schedules").json()] == ["standup"]
