"""Working-day calendar of a dealer: its country's public holidays and make-up working
days (调休), from the maintained ``holidays`` library, and its service hours (policy.md
§5): hour deadlines count only the hours the dealer's service is open, in its time zone,
so a mail at 21:22 has one service hour gone at 09:30 the next morning. Days are working
days; plain ``hours`` stay wall-clock (an automatic acknowledgement, a report window)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays as holidays_lib

from .errors import ConfigurationError
from .policy import Duration, ServiceHours

_SEARCH_DAYS = 400  # a service calendar with no open hour for a year is misconfigured


class WorkingCalendar:
    def __init__(self, country: str, timezone: str, subdivision: str | None = None,
                 service_hours: ServiceHours | None = None) -> None:
        self.country = country
        self.timezone = timezone
        self.subdivision = subdivision
        self.service_hours = service_hours  # None: open around the clock
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
        if duration.service_hours is not None:
            return self.add_service_hours(start, duration.service_hours)
        return start + timedelta(hours=duration.hours or 0)

    # ----- service hours ---------------------------------------------------------------------
    def is_service_day(self, day: date) -> bool:
        hours = self.service_hours
        if hours is None:
            return True
        if day.isoweekday() in hours.closed_weekdays:
            return False
        return hours.public_holidays == "open" or not self.is_public_holiday(day)

    def is_public_holiday(self, day: date) -> bool:
        """A listed holiday, or a rest day inside a holiday block (the Sunday of Golden Week:
        the library lists the holidays around it, not the weekend day itself)."""
        if day in self._holidays(day.year):
            return True
        if self.is_working_day(day):
            return False
        listed = lambda d: d in self._holidays(d.year)  # noqa: E731
        return any(listed(day - timedelta(days=n)) for n in (1, 2)) and any(listed(day + timedelta(days=n)) for n in (1, 2))

    def service_window(self, day: date) -> tuple[datetime, datetime] | None:
        """The UTC span the service is open on a local day; None when it is shut all day."""
        if not self.is_service_day(day):
            return None
        if self.service_hours is None:
            opens = datetime.combine(day, time(0), self._tz)
            return opens.astimezone(UTC), datetime.combine(day + timedelta(days=1), time(0), self._tz).astimezone(UTC)
        return (datetime.combine(day, self.service_hours.opens, self._tz).astimezone(UTC),
                datetime.combine(day, self.service_hours.closes, self._tz).astimezone(UTC))

    def _windows_from(self, start: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The open spans from ``start`` on, the one ``start`` falls in cut to begin there."""
        start = start.astimezone(UTC)
        day = start.astimezone(self._tz).date()
        for _ in range(_SEARCH_DAYS):
            window = self.service_window(day)
            day += timedelta(days=1)
            if window is not None and window[1] > start:
                yield max(window[0], start), window[1]
        raise ConfigurationError(f"no service hours within {_SEARCH_DAYS} days of {start.isoformat()}")

    def add_service_hours(self, start: datetime, hours: float) -> datetime:
        """The moment ``hours`` of service have passed since ``start``: hours outside the
        opening hours (nights, a closed day) do not count; zero hours is the next opening."""
        remaining = timedelta(hours=hours)
        for opens, closes in self._windows_from(start):
            if remaining <= closes - opens:
                return opens + remaining
            remaining -= closes - opens
        raise AssertionError("unreachable: _windows_from raises when it runs out")

    def service_time_between(self, start: datetime, end: datetime) -> timedelta:
        """How much service time lies between two moments."""
        total = timedelta(0)
        if end <= start:
            return total
        for opens, closes in self._windows_from(start):
            if opens >= end:
                break
            total += min(closes, end) - opens
        return total

    def fraction_of(self, start: datetime, due: datetime, fraction: float) -> datetime:
        """The moment a fraction of the service time from ``start`` to ``due`` is used: a
        warning at 75 % of a deadline comes in opening hours, not at 06:30 in the night."""
        span = self.service_time_between(start, due)
        if span <= timedelta(0):
            return start + (due - start) * fraction
        return self.add_service_hours(start, span * fraction / timedelta(hours=1))

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
