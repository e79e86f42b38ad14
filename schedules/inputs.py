"""Checking schedule input: API bodies and the ``schedules:`` lists of templates (no database).

One clear 400 per problem: ``name``, ``cron_expr`` (five fields, ``schedules.cron``), ``timezone``
(an IANA zone), ``prompt``, ``enabled``. Template lists raise :class:`TemplateSchedulesError`
naming the entry, so config.yaml and org.yaml errors point at the line at fault.
"""

from __future__ import annotations

from dataclasses import dataclass

from molecule_site.errors import ApiError
from schedules import cron

MAX_NAME_CHARS = 200
MAX_PROMPT_CHARS = 64 * 1024
FIELDS = ("name", "cron_expr", "timezone", "prompt", "enabled")


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
