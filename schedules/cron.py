"""Five-field cron expressions evaluated in an IANA time zone, on top of ``cronsim``.

``cronsim`` (Healthchecks' cron library) parses and validates the fields, computes the firings
and writes the English description. This module adds what the schedules need around it: the
nicknames ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
``@yearly``/``@annually`` (cronsim has none), exactly five fields (cronsim also takes a leading
seconds field, which a 30-second sweep cannot honour), messages that name the field at fault,
and firings strictly after a moment.

The syntax is cronsim's: ``*``, lists (``1,15``), ranges (``1-5``), steps (``*/10``,
``8-18/2``, ``5/15`` = ``5-59/15``), month and weekday names (7 is Sunday too), ``L``/``LW``
(last day / last weekday of the month) and ``fri#2``/``5L`` (second Friday / last Friday). As in
Debian cron, when both day fields are restricted a day matches if EITHER does.

Times are wall-clock times in the schedule's zone: ``0 9 * * *`` in ``Europe/Paris`` fires at
09:00 Paris time, summer and winter. For a fixed time of day (minute and hour fields not
starting with ``*``) daylight saving is handled as Debian cron does: a time skipped by the spring
jump fires at the first minute after the jump, one that happens twice fires once, at its first
occurrence. Other expressions step through real time: ``*/15 * * * *`` fires every 15 minutes
through both changes, the repeated hour included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

NICKNAMES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
MAX_EXPRESSION_CHARS = 200
# What each field accepts, keyed by cronsim's field names ("Bad day-of-month"…).
_FIELDS = {
    "minute": (0, "0-59"), "hour": (1, "0-23"), "day-of-month": (2, "1-31, L, LW"),
    "month": (3, "1-12, jan-dec"), "day-of-week": (4, "0-7, sun-sat, 5L, fri#2"),
}
# Any fixed datetime will do for cronsim calls that only parse or explain.
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


class CronError(ValueError):
    """An expression or time zone that cannot be used; the message says why."""


@dataclass(frozen=True)
class CronExpression:
    """A valid expression: ``text`` as given (stripped), ``fields`` the five fields cronsim reads."""

    text: str
    fields: str

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first firing strictly after ``moment`` (aware), as an aware UTC datetime."""
        # cronsim evaluates fixed times of day on the naive wall clock, so from inside an hour
        # that happens twice it can answer the first occurrence, already past: skip those.
        for fire in CronSim(self.fields, moment.astimezone(zone)):  # stops after 50 years of nothing
            if fire > moment:
                return fire.astimezone(UTC)
        raise CronError(f"{self.text!r} never fires")

    def next_runs(self, moment: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
        runs = []
        for _ in range(count):
            moment = self.next_after(moment, zone)
            runs.append(moment)
        return runs


def parse(text) -> CronExpression:
    """Parse a five-field expression or nickname; ``CronError`` names what is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise CronError("cron expression is required")
    if len(text) > MAX_EXPRESSION_CHARS:
        raise CronError(f"cron expression is longer than {MAX_EXPRESSION_CHARS} characters")
    source = text.strip()
    expanded = NICKNAMES.get(source.lower(), source)
    if expanded.startswith("@"):
        raise CronError(f"unknown cron nickname {source!r}")
    fields = expanded.split()
    if len(fields) != 5:
        raise CronError(f"cron expression must have 5 fields (minute hour day-of-month month day-of-week), got {len(fields)}")
    try:
        CronSim(expanded, _EPOCH)
    except CronSimError as exc:
        raise CronError(_problem(str(exc), fields, source)) from None
    return CronExpression(text=source, fields=" ".join(fields))


def _problem(message: str, fields: list[str], source: str) -> str:
    """cronsim's ``Bad <field>`` as a message that shows the field and what it accepts."""
    name = message.removeprefix("Bad ")
    if name not in _FIELDS:
        return message
    if name == "day-of-month" and _valid(fields[:3] + ["*"] + fields[4:]):
        # the day is fine on its own, but no listed month has it ("0 0 30 2 *")
        return f"{source!r} never fires"
    index, accepted = _FIELDS[name]
    return f"{name} field {fields[index]!r} is invalid (allowed: {accepted})"


def _valid(fields: list[str]) -> bool:
    try:
        CronSim(" ".join(fields), _EPOCH)
    except CronSimError:
        return False
    return True


def zone(name) -> ZoneInfo:
    """The IANA zone ``name`` (``UTC``, ``Europe/Paris``…); ``CronError`` when unknown."""
    if not isinstance(name, str) or not name.strip():
        raise CronError("timezone is required")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown timezone {name!r}") from None


def describe(expression: CronExpression) -> str:
    """cronsim's English description (``Every 15th minute of every hour``, ``At 09:00 on Monday
    through Friday``…)."""
    return CronSim(expression.fields, _EPOCH).explain()
