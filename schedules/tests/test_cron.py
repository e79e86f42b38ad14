"""``schedules.cron``: five-field expressions (parsed by cronsim) and their firings in a time zone."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from schedules import cron

UTC_ZONE = ZoneInfo("UTC")


def at(*args, tz=UTC) -> datetime:
    return datetime(*args, tzinfo=tz)


def nxt(expr: str, moment: datetime, zone: str = "UTC") -> datetime:
    return cron.parse(expr).next_after(moment, ZoneInfo(zone))


def test_every_minute_fires_on_the_next_whole_minute_strictly_after():
    assert nxt("* * * * *", at(2026, 1, 1, 10, 0, 30)) == at(2026, 1, 1, 10, 1)
    assert nxt("* * * * *", at(2026, 1, 1, 10, 1)) == at(2026, 1, 1, 10, 2)  # strictly after


def test_steps_ranges_lists_and_names():
    assert nxt("*/15 * * * *", at(2026, 1, 1, 10, 1)) == at(2026, 1, 1, 10, 15)
    assert nxt("0 9-17/4 * * *", at(2026, 1, 1, 10, 0)) == at(2026, 1, 1, 13, 0)
    assert nxt("5,35 * * * *", at(2026, 1, 1, 10, 6)) == at(2026, 1, 1, 10, 35)
    assert nxt("0 0 1 jan,jul *", at(2026, 2, 1)) == at(2026, 7, 1)
    # 2026-01-01 is a Thursday
    assert nxt("0 9 * * mon-fri", at(2026, 1, 2, 10)) == at(2026, 1, 5, 9)
    assert nxt("0 9 * * 7", at(2026, 1, 1)) == at(2026, 1, 4, 9)  # 7 is Sunday too
    assert nxt("30/10 * * * *", at(2026, 1, 1, 10, 51)) == at(2026, 1, 1, 11, 30)  # 30-59/10


def test_nicknames():
    assert nxt("@hourly", at(2026, 1, 1, 10, 5)) == at(2026, 1, 1, 11)
    assert nxt("@daily", at(2026, 1, 1, 10)) == at(2026, 1, 2)
    assert nxt("@weekly", at(2026, 1, 1)) == at(2026, 1, 4)
    assert nxt("@monthly", at(2026, 1, 15)) == at(2026, 2, 1)
    assert nxt("@yearly", at(2026, 1, 15)) == at(2027, 1, 1)


def test_day_of_month_or_day_of_week_when_both_are_restricted():
    # the 13th, or any Friday (Vixie cron): 2026-01-02 is a Friday, before the 13th
    assert nxt("0 0 13 * fri", at(2026, 1, 1)) == at(2026, 1, 2)
    assert nxt("0 0 13 * fri", at(2026, 1, 9, 1)) == at(2026, 1, 13)


def test_february_29_is_found_years_ahead():
    assert nxt("0 0 29 2 *", at(2026, 3, 1)) == at(2028, 2, 29)


def test_times_are_wall_clock_in_the_zone_across_daylight_saving():
    # 09:00 in Paris is 08:00 UTC in winter and 07:00 UTC in summer
    assert nxt("0 9 * * *", at(2026, 1, 10), "Europe/Paris") == at(2026, 1, 10, 8)
    assert nxt("0 9 * * *", at(2026, 7, 10), "Europe/Paris") == at(2026, 7, 10, 7)


def test_a_time_skipped_by_the_spring_jump_fires_after_it_and_a_repeated_one_fires_once():
    # 2026-03-29 02:30 does not exist in Paris (02:00 → 03:00): it fires at 03:00 CEST, as Debian cron does
    skipped = nxt("30 2 * * *", at(2026, 3, 28, 12), "Europe/Paris")
    assert skipped == at(2026, 3, 29, 1, 0)
    assert nxt("30 2 * * *", skipped, "Europe/Paris") == at(2026, 3, 30, 0, 30)
    # 2026-10-25 02:30 happens twice in Paris: once, at the first (CEST, 00:30 UTC)
    first = nxt("30 2 * * *", at(2026, 10, 24, 12), "Europe/Paris")
    assert first == at(2026, 10, 25, 0, 30)
    assert nxt("30 2 * * *", first, "Europe/Paris") == at(2026, 10, 26, 1, 30)


def test_from_inside_the_repeated_hour_the_next_firing_is_still_strictly_after():
    # 01:30 UTC is the second 02:30 in Paris; 02:45 of that night (00:45 UTC) is already past
    assert nxt("45 2 * * *", at(2026, 10, 25, 1, 30), "Europe/Paris") == at(2026, 10, 26, 1, 45)


def test_intervals_step_through_real_time_across_both_changes():
    # every 15 minutes through the repeated hour, both times round (02:30 CEST … 02:45 CET)
    runs = cron.parse("*/15 * * * *").next_runs(at(2026, 10, 25, 0, 20), ZoneInfo("Europe/Paris"), 6)
    assert runs == [at(2026, 10, 25, 0, 30), at(2026, 10, 25, 0, 45), at(2026, 10, 25, 1), at(2026, 10, 25, 1, 15),
                    at(2026, 10, 25, 1, 30), at(2026, 10, 25, 1, 45)]
    # and every 30 minutes straight over the spring gap
    runs = cron.parse("*/30 * * * *").next_runs(at(2026, 3, 29, 0, 20), ZoneInfo("Europe/Paris"), 3)
    assert runs == [at(2026, 3, 29, 0, 30), at(2026, 3, 29, 1), at(2026, 3, 29, 1, 30)]


def test_last_days_and_nth_weekdays():
    assert nxt("0 0 L * *", at(2026, 2, 1)) == at(2026, 2, 28)
    assert nxt("0 0 LW * *", at(2026, 5, 1)) == at(2026, 5, 29)  # 2026-05-31 is a Sunday
    assert nxt("0 9 * * fri#2", at(2026, 1, 1)) == at(2026, 1, 9, 9)
    assert nxt("0 0 * * 5L", at(2026, 1, 1)) == at(2026, 1, 30)


def test_next_runs_lists_consecutive_firings():
    runs = cron.parse("0 */6 * * *").next_runs(at(2026, 1, 1, 1), UTC_ZONE, 5)
    assert runs == [at(2026, 1, 1, 6), at(2026, 1, 1, 12), at(2026, 1, 1, 18), at(2026, 1, 2, 0), at(2026, 1, 2, 6)]


@pytest.mark.parametrize("expr, problem", [
    ("", "cron expression is required"),
    ("   ", "cron expression is required"),
    (None, "cron expression is required"),
    (5, "cron expression is required"),
    ("* * * *", "must have 5 fields"),
    ("* * * * * *", "must have 5 fields"),  # cronsim would read a leading seconds field
    ("60 * * * *", "minute field '60' is invalid \\(allowed: 0-59\\)"),
    ("* 24 * * *", "hour field '24' is invalid \\(allowed: 0-23\\)"),
    ("* * 0 * *", "day-of-month field '0' is invalid \\(allowed: 1-31, L, LW\\)"),
    ("* * * 13 *", "month field '13' is invalid \\(allowed: 1-12, jan-dec\\)"),
    ("* * * * 8", "day-of-week field '8' is invalid"),
    ("*/0 * * * *", "minute field '\\*/0' is invalid"),
    ("*/x * * * *", "minute field '\\*/x' is invalid"),
    ("5-1 * * * *", "minute field '5-1' is invalid"),
    ("a * * * *", "minute field 'a' is invalid"),
    ("1,,2 * * * *", "minute field '1,,2' is invalid"),
    ("L * * * *", "minute field 'L' is invalid"),
    ("0 0 * * mon#6", "day-of-week field 'mon#6' is invalid"),
    ("0 0 32 2 *", "day-of-month field '32' is invalid"),
    ("0 0 31 2 *", "'0 0 31 2 \\*' never fires"),
    ("0 0 31 4,6 *", "never fires"),
    ("@often", "unknown cron nickname"),
    ("* " * 150, "longer than"),
])
def test_bad_expressions_say_what_is_wrong(expr, problem):
    with pytest.raises(cron.CronError, match=problem):
        cron.parse(expr)


def test_zones_are_iana_names():
    assert cron.zone("Europe/Paris").key == "Europe/Paris"
    assert cron.zone(" UTC ").key == "UTC"
    for bad in ("Mars/Olympus", "", None, "../../etc/passwd", 3):
        with pytest.raises(cron.CronError):
            cron.zone(bad)


@pytest.mark.parametrize("expr, text", [
    ("* * * * *", "Every minute"),
    ("*/15 * * * *", "Every 15th minute of every hour"),
    ("0 9 * * 1-5", "At 09:00 on Monday through Friday"),
    ("0 9,17 * * *", "At 09:00 and 17:00 every day"),
    ("*/15 9-17 * * 1-5", "Every 15th minute from 09:00 through 17:59 on Monday through Friday"),
    ("0 9 * * fri#2", "At 09:00 on the second Friday of the month"),
    ("@weekly", "At 00:00 on Sunday"),
])
def test_descriptions_are_cronsims_english(expr, text):
    assert cron.describe(cron.parse(expr)) == text
