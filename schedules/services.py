"""Writes of the schedules: create, update, delete, and the schedules a template declares.

Input arrives checked (``schedules.inputs``). Every write
recomputes ``next_fire_at`` (the sweep's deadline) from the expression in its zone and emits a
broadcast-only ``SCHEDULE_UPDATED {schedule_id, name, action}`` after commit, so an open canvas
reloads its Schedule tab. Firing is ``schedules.firing``.
"""

from __future__ import annotations

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from activity.events import emit
from molecule_site.errors import ApiError
from schedules import cron
from schedules.inputs import FIELDS, ScheduleInput
from schedules.models import ScheduleSource, ScheduleStatus, WorkspaceSchedule

MAX_SCHEDULES_PER_WORKSPACE = 100
EVENT = "SCHEDULE_UPDATED"
NAME_TAKEN = "a schedule with this name already exists"


def next_fire(cron_expr: str, timezone_name: str, *, after: datetime | None = None) -> datetime:
    """The next firing of a (valid) expression after ``after`` (default: now)."""
    return cron.parse(cron_expr).next_after(after or timezone.now(), cron.zone(timezone_name))


def _announce(schedule: WorkspaceSchedule, action: str) -> None:
    emit(EVENT, schedule.workspace_id, {"schedule_id": str(schedule.id), "name": schedule.name, "action": action},
         persist=False)


def schedule_create(*, workspace_id, fields: ScheduleInput, source: str) -> WorkspaceSchedule:
    zone_name = fields.timezone or "UTC"
    enabled = True if fields.enabled is None else fields.enabled
    with transaction.atomic():
        if WorkspaceSchedule.objects.filter(workspace_id=workspace_id).count() >= MAX_SCHEDULES_PER_WORKSPACE:
            raise ApiError(f"a workspace has at most {MAX_SCHEDULES_PER_WORKSPACE} schedules", status=409)
        try:
            with transaction.atomic():
                schedule = WorkspaceSchedule.objects.create(
                    workspace_id=workspace_id, name=fields.name, cron_expr=fields.cron_expr, timezone=zone_name,
                    prompt=fields.prompt, enabled=enabled, source=source,
                    next_fire_at=next_fire(fields.cron_expr, zone_name) if enabled else None,
                )
        except IntegrityError:
            raise ApiError(NAME_TAKEN, status=409) from None
        _announce(schedule, "created")
    return schedule


def schedule_update(*, schedule: WorkspaceSchedule, fields: ScheduleInput) -> WorkspaceSchedule:
    """Apply a patch. A new expression, zone or re-enabling moves the deadline (a pending
    deferral is dropped); a new prompt or re-enabling clears ``stale``."""
    with transaction.atomic():
        row = WorkspaceSchedule.objects.select_for_update().get(pk=schedule.pk)
        was_enabled = row.enabled
        for key in FIELDS:
            value = getattr(fields, key)
            if value is not None:
                setattr(row, key, value)
        timing = fields.cron_expr is not None or fields.timezone is not None or (row.enabled and not was_enabled)
        if not row.enabled:
            row.next_fire_at, row.defer_until = None, None
        elif timing or row.next_fire_at is None:
            row.next_fire_at, row.defer_until = next_fire(row.cron_expr, row.timezone), None
        if fields.prompt is not None or (row.enabled and not was_enabled):
            row.status, row.consecutive_empty = ScheduleStatus.OK, 0
        try:
            with transaction.atomic():
                row.save()
        except IntegrityError:
            raise ApiError(NAME_TAKEN, status=409) from None
        _announce(row, "updated")
    return row


@transaction.atomic
def schedule_delete(*, schedule: WorkspaceSchedule) -> None:
    deleted, _ = WorkspaceSchedule.objects.filter(pk=schedule.pk).delete()
    if deleted:
        _announce(schedule, "deleted")


def schedules_disable_for(workspace_ids) -> int:
    """Removed workspaces' schedules stop (spec §5.5 "disable their schedules")."""
    return WorkspaceSchedule.objects.filter(workspace_id__in=workspace_ids, enabled=True).update(
        enabled=False, next_fire_at=None, defer_until=None, updated_at=timezone.now())


# --- Schedules a template declares ----------------------------------------------------------------

def schedules_from_template(*, workspace_id, entries: list[ScheduleInput]) -> list[WorkspaceSchedule]:
    """Create a template's schedules (source ``template``); a name the workspace already has is
    left as it is, so applying a template twice creates nothing new."""
    existing = set(WorkspaceSchedule.objects.filter(workspace_id=workspace_id).values_list("name", flat=True))
    return [
        schedule_create(workspace_id=workspace_id, fields=entry, source=ScheduleSource.TEMPLATE)
        for entry in entries if entry.name not in existing
    ]


def schedules_over_template(*, workspace_id, entries: list[ScheduleInput]) -> list[WorkspaceSchedule]:
    """An org.yaml workspace's schedules (source ``template``), applied after its template's: an
    entry named like one of the template's replaces its expression, zone, prompt and switch (the
    org's per-workspace keys win over the template's, as its role and tier do); others are created."""
    existing = {row.name: row for row in WorkspaceSchedule.objects.filter(workspace_id=workspace_id,
                                                                           source=ScheduleSource.TEMPLATE)}
    written = []
    for entry in entries:
        row = existing.get(entry.name)
        if row is None:
            written.append(schedule_create(workspace_id=workspace_id, fields=entry, source=ScheduleSource.TEMPLATE))
            continue
        written.append(schedule_update(schedule=row, fields=ScheduleInput(
            name=entry.name, cron_expr=entry.cron_expr, timezone=entry.timezone or "UTC", prompt=entry.prompt,
            enabled=True if entry.enabled is None else entry.enabled)))
    return written
