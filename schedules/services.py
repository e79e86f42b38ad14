"""Writes of the schedules: create, update, delete, and the schedules a template declares.

Input is checked here, with one clear 400 per problem: ``name``, ``cron_expr`` (five fields,
``schedules.cron``), ``timezone`` (an IANA zone), ``prompt``, ``enabled``. Every write
recomputes ``next_fire_at`` (the sweep's deadline) from the expression in its zone and emits a
broadcast-only ``SCHEDULE_UPDATED {schedule_id, name, action}`` after commit, so an open canvas
reloads its Schedule tab. Firing is ``schedules.firing``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from activity.events import emit
from molecule_site.errors import ApiError
from schedules import cron
from schedules.models import ScheduleSource, ScheduleStatus, WorkspaceSchedule

MAX_NAME_CHARS = 200
MAX_PROMPT_CHARS = 64 * 1024
MAX_SCHEDULES_PER_WORKSPACE = 100
EVENT = "SCHEDULE_UPDATED"
FIELDS = ("name", "cron_expr", "timezone", "prompt", "enabled")
NAME_TAKEN = "a schedule with this name already exists"


@dataclass(frozen=True)
class ScheduleInput:
    """Checked fields of a create or a patch (None: not given)."""

    name: str | None = None
    cron_expr: str | None = None
    timezone: str | None = None
    prompt: str | None = None
    enabled: bool | None = None


def _text(data: dict, key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(f"{key} must be a string")
    value = value.strip()
    if not value:
        raise ApiError(f"{key} must not be empty")
    if len(value) > limit:
        raise ApiError(f"{key} is longer than {limit} characters")
    return value


def schedule_input(data, *, partial: bool) -> ScheduleInput:
    """Check a request body; a create needs ``name``, ``cron_expr`` and ``prompt``.

    ``cron_expression`` is accepted as another name for ``cron_expr``.
    """
    if not isinstance(data, dict):
        raise ApiError("invalid request body")
    data = dict(data)
    if "cron_expr" not in data and "cron_expression" in data:
        data["cron_expr"] = data["cron_expression"]
    name = _text(data, "name", MAX_NAME_CHARS)
    prompt = _text(data, "prompt", MAX_PROMPT_CHARS)
    expr = data.get("cron_expr")
    if expr is not None:
        if not isinstance(expr, str):
            raise ApiError("cron_expr must be a string")
        try:
            expr = cron.parse(expr).text
        except cron.CronError as exc:
            raise ApiError(f"invalid cron_expr: {exc}") from None
    zone_name = data.get("timezone")
    if zone_name is not None:
        if not isinstance(zone_name, str):
            raise ApiError("timezone must be a string")
        try:
            zone_name = cron.zone(zone_name).key
        except cron.CronError as exc:
            raise ApiError(f"invalid timezone: {exc}") from None
    enabled = data.get("enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise ApiError("enabled must be a boolean")
    if not partial:
        for key, value in (("name", name), ("cron_expr", expr), ("prompt", prompt)):
            if value is None:
                raise ApiError(f"{key} is required")
    elif all(value is None for value in (name, expr, zone_name, prompt, enabled)):
        raise ApiError(f"nothing to update: send one of {', '.join(FIELDS)}")
    return ScheduleInput(name=name, cron_expr=expr, timezone=zone_name, prompt=prompt, enabled=enabled)


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

class TemplateSchedulesError(ValueError):
    """A template's ``schedules:`` list is malformed; the message says where."""


def template_schedules(value, *, where: str = "schedules") -> list[ScheduleInput]:
    """The checked entries of a config.yaml / org.yaml ``schedules:`` list.

    Each entry: ``name``, ``cron_expr`` (or ``cron`` / ``cron_expression``), ``prompt``, optional
    ``timezone`` (default UTC) and ``enabled`` (default true). Names must be unique.
    """
    if value is None:
        return []
    if not isinstance(value, list):
        raise TemplateSchedulesError(f"{where} must be a list")
    entries, names = [], set()
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise TemplateSchedulesError(f"{where}[{index}] must be a mapping")
        data = dict(entry)
        if "cron_expr" not in data and "cron" in data:
            data["cron_expr"] = data.pop("cron")
        try:
            checked = schedule_input(data, partial=False)
        except ApiError as exc:
            raise TemplateSchedulesError(f"{where}[{index}]: {exc}") from None
        if checked.name in names:
            raise TemplateSchedulesError(f"{where}[{index}]: duplicate schedule name {checked.name!r}")
        names.add(checked.name)
        entries.append(checked)
    return entries


def schedules_from_template(*, workspace_id, entries: list[ScheduleInput]) -> list[WorkspaceSchedule]:
    """Create a template's schedules (source ``template``); a name the workspace already has is
    left as it is, so applying a template twice creates nothing new."""
    existing = set(WorkspaceSchedule.objects.filter(workspace_id=workspace_id).values_list("name", flat=True))
    return [
        schedule_create(workspace_id=workspace_id, fields=entry, source=ScheduleSource.TEMPLATE)
        for entry in entries if entry.name not in existing
    ]
