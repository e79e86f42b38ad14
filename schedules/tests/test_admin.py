"""The schedules' admin: read-only rows, and a "disable" action that goes through the service."""

from __future__ import annotations

import pytest
from django.urls import reverse

from schedules import services
from schedules.inputs import ScheduleInput
from schedules.models import WorkspaceSchedule
from workspaces.models import Workspace

pytestmark = pytest.mark.django_db


def test_the_disable_action_stops_the_selected_schedules(operator_client):
    workspace = Workspace.objects.create(name="PM", status="online")
    kept, stopped = (services.schedule_create(workspace_id=workspace.id, source="operator", fields=ScheduleInput(
        name=name, cron_expr="0 9 * * *", timezone="UTC", prompt="p")) for name in ("kept", "stopped"))
    url = reverse("admin:schedules_workspaceschedule_changelist")
    response = operator_client.post(url, {"action": "disable", "_selected_action": [str(stopped.id)]}, follow=True)
    assert response.status_code == 200
    assert "1 schedule(s) disabled." in response.content.decode()
    rows = {row.name: row for row in WorkspaceSchedule.objects.all()}
    assert (rows["stopped"].enabled, rows["stopped"].next_fire_at) == (False, None)
    assert rows["kept"].enabled and rows["kept"].next_fire_at is not None


def test_schedules_cannot_be_added_or_edited_in_the_admin(operator_client):
    workspace = Workspace.objects.create(name="PM", status="online")
    row = services.schedule_create(workspace_id=workspace.id, source="operator", fields=ScheduleInput(
        name="standup", cron_expr="0 9 * * *", prompt="p"))
    assert operator_client.get(reverse("admin:schedules_workspaceschedule_add")).status_code == 403
    page = operator_client.get(reverse("admin:schedules_workspaceschedule_change", args=[row.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
