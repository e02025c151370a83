"""Working-day calendar of a dealer: its country's public holidays and make-up working
days (调休), from the maintained ``holidays`` library. Hours are wall-clock; days are
working days, as the policy says."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from .policy import Duration


class WorkingCalendar:
    def __init__(self, country: str, timezone: str, subdivision: str | None = None) -> None:
        self.country = country
        self.timezone = timezone
        self.subdivision = subdivision
        self._tz = ZoneInfo(timezone)

    def _holidays(self, year: int) -> holidays_lib.HolidayBase:
        return _country_holidays(self.country, self.subdivision, year)

    def is_working_day(self, day: date) -> bool:
        return bool(self._holidays(day.year).is_working_day(day))

    def add_working_days(self, start: datetime, days: int) -> datetime:
        """Same local wall-clock time, ``days`` working days later (a make-up Saturday counts)."""
        local = start.astimezone(self._tz)
        day = local.date()
        remaining = days
        while remaining > 0:
            day += timedelta(days=1)
            if self.is_working_day(day):
                remaining -= 1
        return datetime.combine(day, local.timetz()).astimezone(UTC)

    def add(self, start: datetime, duration: Duration) -> datetime:
        if duration.working_days is not None:
            return self.add_working_days(start, duration.working_days)
        return start + timedelta(hours=duration.hours or 0)

    def is_estimated(self, year: int) -> bool:
        """True when the library has no official schedule for that year and guesses.

        China publishes its holiday and make-up-day schedule each autumn for the next
        year; a year without any make-up working day is the library's estimate.
        """
        if self.country != "CN":
            return False
        return not any(d.year == year for d in self._holidays(year).weekend_workdays)

    def local(self, at: datetime) -> datetime:
        return at.astimezone(self._tz)


@lru_cache(maxsize=256)
def _country_holidays(country: str, subdivision: str | None, year: int) -> holidays_lib.HolidayBase:
    return holidays_lib.country_holidays(country, subdiv=subdivision, years=[year])
