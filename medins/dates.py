"""Calendar helpers for admissibility rules: months, working days, ages, stays (seed-policies.md §0.3–0.4).

Why here and not inline: the seeds count "N个月后", "次日起N个工作日内" and "周岁" in specific ways
(corresponding-date months, official make-up working days, 29 February birthdays), and every
policy must count them the same way.
"""

from __future__ import annotations

import calendar
from datetime import date, timedelta
from functools import lru_cache


class CalendarError(ValueError):
    """The official working-day calendar does not cover a year."""


def add_days(d: date, n: int) -> date:
    return d + timedelta(days=int(n))


def add_months(d: date, n: int) -> date:
    """Same day n months later, or that month's last day when the day does not exist (2007-08-31 + 1 → 09-30)."""
    months = d.year * 12 + (d.month - 1) + int(n)
    year, month = divmod(months, 12)
    last = calendar.monthrange(year, month + 1)[1]
    return date(year, month + 1, min(d.day, last))


@lru_cache(maxsize=65536)
def _is_workday(d: date) -> bool:
    import chinese_calendar

    try:
        return bool(chinese_calendar.is_workday(d))
    except NotImplementedError:
        raise CalendarError(
            f"the official working-day calendar (chinese_calendar) does not cover {d.year}"
        ) from None


@lru_cache(maxsize=65536)
def workday_add(d: date, n: int) -> date:
    """The n-th working day after d (the first candidate is d + 1): Mon–Fri less holidays plus 调休 make-up days."""
    count, current = 0, d
    while count < int(n):
        current += timedelta(days=1)
        if _is_workday(current):
            count += 1
    return current


def age_on(birth: date, on: date) -> int:
    """Completed years (周岁); a 29 Feb birthday is reached on 1 Mar in common years."""
    return on.year - birth.year - ((on.month, on.day) < (birth.month, birth.day))


def stay_days(admit: date, discharge: date) -> int:
    """Length of stay, counting the admission day and not the discharge day ("算入不算出"), at least 1."""
    return max(1, (discharge - admit).days)


def month_start(d: date) -> date:
    return d.replace(day=1)


def next_month_start(d: date) -> date:
    return add_months(d.replace(day=1), 1)
