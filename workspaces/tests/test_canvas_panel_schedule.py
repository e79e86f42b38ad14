"""The side panel's Schedule tab (canvas spec §3.11; ``panels.schedule_context``, ``schedule_preview_context``):
the list with status and next/last run, each schedule's recent history, and the form's next-runs preview."""

from __future__ import annotations

import datetime
import html
import re

import pytest
from django.utils import timezone

from activity.models import ActivityLog
from schedules import services
from schedules.inputs import ScheduleInput
from schedules.models import ScheduleStatus, WorkspaceSchedule
from workspaces.canvas import panels
from workspaces.models import CanvasLayout, Workspace

pytestmark = pytest.mark.django_db

FRAGMENT = {"HTTP_X_MOLECULE_FRAGMENT": "1"}


@pytest.fixture
def pm():
    workspace = Workspace.objects.create(name="PM", status="online")
    CanvasLayout.objects.create(workspace=workspace, x=0, y=0)
    return workspace


def schedule(workspace, name="standup", cron="0 9 * * 1-5", tz="Europe/Paris", **fields):
    row = services.schedule_create(workspace_id=workspace.id, source="operator", fields=ScheduleInput(
        name=name, cron_expr=cron, timezone=tz, prompt=f"{name} prompt"))
    if fields:
        WorkspaceSchedule.objects.filter(pk=row.pk).update(**fields)
    return WorkspaceSchedule.objects.get(pk=row.pk)


def run(workspace, row, *, status="ok", minutes_ago=1, reply="", manual=False, **fields):
    log = ActivityLog.objects.create(
        workspace=workspace, activity_type="cron_run", method="cron", status=status, summary=f"{row.name} {status}",
        request_body={"schedule_id": str(row.id), "manual": manual},
        response_body={"reply_preview": reply} if reply else None, **fields)
    ActivityLog.objects.filter(pk=log.pk).update(created_at=timezone.now() - datetime.timedelta(minutes=minutes_ago))
    return log


def text(response) -> str:
    return html.unescape(" ".join(re.sub(r"<[^>]+>", " ", response.content.decode()).split()))


def test_the_context_lists_each_schedule_with_its_description_next_run_and_history(pm):
    standup = schedule(pm)
    stale = schedule(pm, "digest", "*/30 * * * *", "UTC", status=ScheduleStatus.STALE, consecutive_empty=3,
                     last_status="stale", last_run_at=timezone.now())
    off = schedule(pm, "weekly", "0 17 * * fri", "UTC")
    services.schedule_update(schedule=off, fields=ScheduleInput(enabled=False))
    for minutes in range(1, 8):
        run(pm, standup, minutes_ago=minutes, reply=f"plan {minutes}")
    run(pm, stale, status="stale", minutes_ago=2)
    ActivityLog.objects.create(workspace=pm, activity_type="a2a_receive", summary="not a run")

    context = panels.schedule_context(pm)

    rows = {row["name"]: row for row in context["schedules"]}
    assert list(rows) == ["standup", "digest", "weekly"]  # oldest first
    first = rows["standup"]
    assert first["description"] == "At 09:00 on Monday through Friday"
    assert first["next_in"].startswith("in ") and first["next_local"].endswith(("CET", "CEST"))
    assert [item["reply_preview"] for item in first["history"]] == [f"plan {m}" for m in range(1, 6)]  # newest 5
    assert first["history"][0]["icon"] == "✓"
    assert (rows["digest"]["tone"], rows["digest"]["last_icon"], rows["digest"]["consecutive_empty"]) == ("amber", "◌", 3)
    assert [item["status"] for item in rows["digest"]["history"]] == ["stale"]
    assert (rows["weekly"]["enabled"], rows["weekly"]["next"], rows["weekly"]["next_in"]) == (False, None, "")
    assert context["stale_after"] == 3


def test_the_tab_renders_the_list_status_and_history(operator_client, pm):
    row = schedule(pm, status=ScheduleStatus.ERROR, last_status="error", last_error="boom",
                   last_run_at=timezone.now())
    run(pm, row, status="error", error_detail="boom")
    run(pm, row, status="skipped", minutes_ago=5, manual=True)

    response = operator_client.get(f"/canvas/panel/{pm.id}/schedule/", **FRAGMENT)

    assert response.status_code == 200
    body = response.content.decode()
    shown = text(response)
    assert "1 schedule" in shown and "standup" in shown and "At 09:00 on Monday through Friday" in shown
    assert 'title="At 09:00 on Monday through Friday · Europe/Paris"' in body  # the row may cut it short
    assert 'data-schedule-toggle="%s" checked' % row.id in body
    assert "tone-red" in body and "Last error boom" in shown
    assert "↷" in body and "manual" in shown  # the skipped manual run
    assert "standup prompt" in shown


def test_an_empty_tab_says_what_a_schedule_is(operator_client, pm):
    shown = text(operator_client.get(f"/canvas/panel/{pm.id}/schedule/", **FRAGMENT))
    assert "0 schedules" in shown and "No schedules yet" in shown and "system:cron" in shown


def test_the_preview_lists_the_next_five_runs_in_the_zone(operator_client, pm):
    context = panels.schedule_preview_context("0 9 * * *", "Asia/Tokyo")
    preview = context["preview"]
    assert (preview["ok"], preview["description"], preview["timezone"]) == (True, "At 09:00 every day", "Asia/Tokyo")
    assert len(preview["runs"]) == 5
    assert all(run["local"].endswith("09:00 JST") for run in preview["runs"])
    assert all(run["in"].startswith("in ") for run in preview["runs"])

    response = operator_client.get(f"/canvas/panel/{pm.id}/schedule/?preview=1&cron=0+9+*+*+*&tz=Asia/Tokyo",
                                   **FRAGMENT)
    assert response.status_code == 200
    assert text(response).count("09:00 JST") == 5


@pytest.mark.parametrize("cron, tz, problem", [
    ("0 25 * * *", "UTC", "hour field '25' is invalid (allowed: 0-23)"),
    ("* * *", "UTC", "must have 5 fields"),
    ("0 9 * * *", "Mars/Olympus", "unknown timezone 'Mars/Olympus'"),
])
def test_the_preview_explains_a_bad_expression_or_zone(operator_client, pm, cron, tz, problem):
    response = operator_client.get(f"/canvas/panel/{pm.id}/schedule/", {"preview": "1", "cron": cron, "tz": tz},
                                   **FRAGMENT)
    assert response.status_code == 200
    assert problem in text(response)
    assert 'role="alert"' in response.content.decode()


def test_the_preview_needs_a_staff_session(client, pm):
    response = client.get(f"/canvas/panel/{pm.id}/schedule/?preview=1&cron=*+*+*+*+*", **FRAGMENT)
    assert response.status_code == 401


@pytest.mark.parametrize("seconds, shown", [(-5, "due now"), (30, "in 30s"), (300, "in 5m"), (3600, "in 1h"),
                                            (5400, "in 1h 30m"), (3 * 86400, "in 3d")])
def test_until_reads_as_a_short_countdown(seconds, shown):
    now = timezone.now()
    assert panels.until(now + datetime.timedelta(seconds=seconds), now) == shown


def test_scheduled_prompts_stay_out_of_my_chat(pm):
    """The proxy logs a schedule's run like a canvas call (no source); the Schedule tab shows it."""
    def exchange(text, metadata=None):
        message = {"role": "user", "parts": [{"kind": "text", "text": text}], **({"metadata": metadata} if metadata else {})}
        ActivityLog.objects.create(
            workspace=pm, activity_type="a2a_receive", method="message/send", target_id=pm.id,
            request_body={"jsonrpc": "2.0", "method": "message/send", "params": {"message": message}},
            response_body={"result": {"kind": "message", "parts": [{"kind": "text", "text": f"re: {text}"}]}})

    exchange("hello from the operator")
    exchange("Post the plan.", {"source": "cron", "schedule_id": "x"})
    bubbles = panels.chat_context(pm)["bubbles"]
    assert [bubble.text for bubble in bubbles] == ["hello from the operator", "re: hello from the operator"]
