"""Five-field cron expressions evaluated in an IANA time zone.

No cron library is installed in the platform's environment (neither ``croniter`` nor
``cronsim``), so this module is the small parser the schedules need: ``minute hour
day-of-month month day-of-week`` with ``*``, lists (``1,15``), ranges (``1-5``), steps
(``*/10``, ``8-18/2``), month and weekday names (``jan``…``dec``, ``sun``…``sat``; 7 is Sunday
too) and the nicknames ``@hourly``, ``@daily``/``@midnight``, ``@weekly``, ``@monthly``,
``@yearly``/``@annually``. As in Vixie cron (and robfig/cron, which the original uses), when
both day fields are restricted a day matches if EITHER does.

Times are wall-clock times in the schedule's zone: ``0 9 * * *`` in ``Europe/Paris`` fires at
09:00 Paris time, summer and winter. A wall-clock time that does not exist (skipped by a
daylight-saving jump) is skipped; one that happens twice (the hour repeated in autumn) fires
once, at its first occurrence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

NICKNAMES = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
}
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
MAX_EXPRESSION_CHARS = 200
# Feb 29 on a Monday can be 28 years away; nothing valid is further.
_SEARCH_DAYS = 366 * 29


class CronError(ValueError):
    """An expression or time zone that cannot be used; the message says why."""


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_FIELDS = (
    _Field("minute", 0, 59),
    _Field("hour", 0, 23),
    _Field("day of month", 1, 31),
    _Field("month", 1, 12, MONTHS, 1),
    _Field("day of week", 0, 7, WEEKDAYS, 0),
)


def _number(text: str, field: _Field) -> int:
    lowered = text.lower()
    if field.names and lowered in field.names:
        return field.names.index(lowered) + field.name_base
    if not text.isdigit():
        raise CronError(f"invalid {field.name} value {text!r}")
    value = int(text)
    if not field.low <= value <= field.high:
        raise CronError(f"{field.name} value {value} out of range {field.low}-{field.high}")
    return value


def _parse_field(text: str, field: _Field) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"empty item in {field.name} field")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"invalid step {step_text!r} in {field.name} field")
            step = int(step_text)
        if base == "*":
            low, high = field.low, field.high
        elif "-" in base:
            start, _, end = base.partition("-")
            low, high = _number(start, field), _number(end, field)
            if low > high:
                raise CronError(f"{field.name} range {base} runs backwards")
        else:
            low = _number(base, field)
            high = field.high if slash else low  # "5/15" means 5-59/15, as in Vixie cron
        values.update(range(low, high + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronExpression:
    """A parsed expression: the set of values each field allows."""

    text: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday … 6 = Saturday
    days_restricted: bool
    weekdays_restricted: bool

    def matches_day(self, day: date) -> bool:
        if day.month not in self.months:
            return False
        in_days = day.day in self.days
        in_weekdays = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return in_days or in_weekdays
        return in_days and in_weekdays

    def next_after(self, moment: datetime, zone: ZoneInfo) -> datetime:
        """The first firing strictly after ``moment`` (aware), as an aware UTC datetime."""
        local = moment.astimezone(zone)
        day = local.date()
        for _ in range(_SEARCH_DAYS):
            if self.matches_day(day):
                for hour in sorted(self.hours):
                    for minute in sorted(self.minutes):
                        wall = datetime.combine(day, time(hour, minute), tzinfo=zone)
                        if not _exists(wall):
                            continue
                        utc = wall.astimezone(UTC)
                        if utc > moment:
                            return utc
            day += timedelta(days=1)
        raise CronError(f"{self.text!r} never fires")

    def next_runs(self, moment: datetime, zone: ZoneInfo, count: int) -> list[datetime]:
        runs = []
        for _ in range(count):
            moment = self.next_after(moment, zone)
            runs.append(moment)
        return runs


def _exists(wall: datetime) -> bool:
    """False for a wall-clock time inside a daylight-saving gap (it does not round-trip)."""
    return wall.astimezone(UTC).astimezone(wall.tzinfo).replace(tzinfo=None) == wall.replace(tzinfo=None)


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
    minutes, hours, days, months, weekdays = (_parse_field(part, field) for part, field in zip(fields, _FIELDS))
    weekdays = frozenset(day % 7 for day in weekdays)
    expression = CronExpression(
        text=source, minutes=minutes, hours=hours, days=days, months=months, weekdays=weekdays,
        days_restricted=not fields[2].startswith("*"), weekdays_restricted=not fields[4].startswith("*"),
    )
    if not expression.weekdays_restricted or not expression.days_restricted:
        # e.g. "0 0 31 2 *": the day fields alone can rule out every date
        if not any(_day_possible(day, month) for month in months for day in days):
            raise CronError(f"{source!r} never fires")
    return expression


def _day_possible(day: int, month: int) -> bool:
    return day <= (29 if month == 2 else 30 if month in (4, 6, 9, 11) else 31)


def zone(name) -> ZoneInfo:
    """The IANA zone ``name`` (``UTC``, ``Europe/Paris``…); ``CronError`` when unknown."""
    if not isinstance(name, str) or not name.strip():
        raise CronError("timezone is required")
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown timezone {name!r}") from None


def describe(expression: CronExpression) -> str:
    """A short human description (``every 15 minutes``, ``at 09:00 on Mon–Fri``…)."""
    minutes, hours = sorted(expression.minutes), sorted(expression.hours)
    all_hours, hour_range = len(hours) == 24, len(hours) > 1 and hours == list(range(hours[0], hours[-1] + 1))
    if len(minutes) == 60 and all_hours:
        when = "every minute"
    elif len(minutes) > 1 and _even_step(minutes, 60) and (all_hours or hour_range):
        when = f"every {minutes[1] - minutes[0]} minutes"
        if not all_hours:
            when += f", {hours[0]:02d}:00–{hours[-1]:02d}:{minutes[-1]:02d}"
    elif len(hours) * len(minutes) <= 4:
        when = "at " + ", ".join(f"{h:02d}:{m:02d}" for h in hours for m in minutes)
    elif len(minutes) == 1 and (all_hours or hour_range):
        when = "every hour" + (f" at :{minutes[0]:02d}" if minutes[0] else "")
        if not all_hours:
            when += f", {hours[0]:02d}:{minutes[0]:02d}–{hours[-1]:02d}:{minutes[0]:02d}"
    elif len(minutes) == 1 and len(hours) > 1 and _even_step(hours, 24):
        when = f"every {hours[1] - hours[0]} hours" + (f" at :{minutes[0]:02d}" if minutes[0] else "")
    else:
        when = f"at minute {_list(minutes)} past hour {_list(hours)}"
    parts = [when]
    if expression.days_restricted:
        parts.append(f"on day {_list(sorted(expression.days))} of the month")
    if expression.weekdays_restricted:
        names = [WEEKDAYS[d].capitalize() for d in sorted(expression.weekdays)]
        joiner = " or " if expression.days_restricted else ""
        parts.append(f"{joiner}on {_weekday_list(sorted(expression.weekdays), names)}")
    if len(expression.months) < 12:
        parts.append("in " + ", ".join(MONTHS[m - 1].capitalize() for m in sorted(expression.months)))
    return " ".join(parts)


def _even_step(values: list[int], span: int) -> bool:
    step = values[1] - values[0]
    return values[0] == 0 and span % step == 0 and values == list(range(0, span, step))


def _list(values: list[int]) -> str:
    return ", ".join(str(v) for v in values) if len(values) <= 6 else f"{values[0]}–{values[-1]} ({len(values)} values)"


def _weekday_list(days: list[int], names: list[str]) -> str:
    if len(days) > 2 and days == list(range(days[0], days[-1] + 1)):
        return f"{names[0]}–{names[-1]}"
    return ", ".join(names)
