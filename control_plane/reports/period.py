"""A report's period: local dates in each store's own time zone, turned into UTC bounds.

A store owner asks for "the 3rd to the 9th" in their store's wall-clock time; a fleet spans time
zones, so the same dates are a different UTC window per store. :meth:`Period.bounds` gives the
window of one store (start inclusive, end exclusive, milliseconds since the epoch), and
:meth:`Period.previous` the period of the same length just before, which trends compare against.
Daylight-saving days are 23 or 25 hours long: the bounds come from local midnights, not from
adding 24 hours.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from http import HTTPStatus
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from control_plane.problems import DomainError

#: The longest period one report covers: a year and a day (a leap year's comparisons).
MAX_DAYS = 366
#: The dates a report covers: loss prevention looks 8 weeks back and trends one period back, and
#: the calendar's ends (year 1, year 9999) are no till's.
EARLIEST, LATEST = date(2000, 1, 1), date(2199, 12, 31)


class PeriodRefused(DomainError):  # noqa: N818 - named for what was refused
    """A period a report cannot cover; the message says what to send instead."""

    status = HTTPStatus.UNPROCESSABLE_ENTITY
    reason = "period_refused"
    advice = (
        "Send first and last as YYYY-MM-DD between 2000-01-01 and 2199-12-31, last not before"
        " first, at most 366 days apart."
    )


def zone(name: str) -> ZoneInfo:
    """The store's time zone; an unknown name (a bad row) reads as UTC rather than failing."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Period:
    """``first`` to ``last`` inclusive, local dates."""

    first: date
    last: date

    @classmethod
    def of(cls, first: date, last: date | None = None) -> Period:
        """A checked period: ``last`` defaults to ``first`` (one day)."""
        last = first if last is None else last
        for day in (first, last):
            if not EARLIEST <= day <= LATEST:
                raise PeriodRefused(
                    f"{day} is outside the dates reports cover ({EARLIEST}–{LATEST})"
                )
        if last < first:
            raise PeriodRefused(f"the period ends ({last}) before it starts ({first})")
        if (last - first).days + 1 > MAX_DAYS:
            raise PeriodRefused(f"a report covers at most {MAX_DAYS} days; ask for a shorter range")
        return cls(first, last)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def previous(self) -> Period:
        """The period of the same length that ends the day before this one starts."""
        return Period(self.first - timedelta(days=self.days), self.first - timedelta(days=1))

    def dates(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range(self.days)]

    def bounds(self, timezone: str) -> tuple[int, int]:
        """[start, end) in epoch milliseconds for a store in ``timezone``."""
        tz = zone(timezone)
        start = datetime.combine(self.first, time(0), tzinfo=tz)
        end = datetime.combine(self.last + timedelta(days=1), time(0), tzinfo=tz)
        return _ms(start), _ms(end)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp()) * 1000


def local(ts_ms: int, timezone: str) -> datetime:
    """A journal timestamp as the store's wall-clock time."""
    return datetime.fromtimestamp(ts_ms // 1000, tz=zone(timezone))
