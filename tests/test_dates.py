"""Calendar rules of seed-policies.md §0.3–0.4: month periods, working days, ages, stays."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from medins.dates import CalendarError, add_months, age_on, next_month_start, stay_days, workday_add


@pytest.mark.parametrize(("start", "months", "end"), [
    (date(2007, 8, 31), 1, date(2007, 9, 30)), (date(2008, 2, 15), 6, date(2008, 8, 15)),
    (date(2010, 1, 10), 6, date(2010, 7, 10)), (date(2008, 1, 31), 1, date(2008, 2, 29))])
def test_add_months_corresponding_day(start, months, end) -> None:
    """Same day n months later, or the month's last day when that day does not exist."""
    assert add_months(start, months) == end


@pytest.mark.parametrize(("discharge", "last"), [
    (date(2008, 3, 12), date(2008, 3, 26)), (date(2008, 4, 30), date(2008, 5, 15)),
    (date(2008, 9, 26), date(2008, 10, 15))])
def test_tenth_working_day_counts_holidays_and_make_up_days(discharge, last) -> None:
    """SQ-T9: the official calendar, with 调休 make-up working days (27–28 Sept 2008) counted."""
    assert workday_add(discharge, 10) == last


def test_calendar_outside_its_years_is_a_clear_error() -> None:
    """A year the working-day calendar does not cover is refused with a message naming the year."""
    with pytest.raises(CalendarError, match="1990"):
        workday_add(date(1990, 1, 1), 3)


def test_ages_and_stays() -> None:
    """Completed years (29 Feb birthdays on 1 Mar in common years); stays count the admission day, min 1."""
    assert age_on(date(1948, 3, 1), date(2008, 3, 1)) == 60
    assert age_on(date(1948, 3, 2), date(2008, 3, 1)) == 59
    assert age_on(date(2000, 2, 29), date(2001, 2, 28)) == 0
    assert age_on(date(2000, 2, 29), date(2001, 3, 1)) == 1
    assert stay_days(date(2009, 3, 2), date(2009, 3, 10)) == 8
    assert stay_days(date(2009, 3, 2), date(2009, 3, 2)) == 1
    assert next_month_start(date(2011, 3, 20)) == date(2011, 4, 1)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2040, 12, 31)), st.integers(0, 36))
def test_add_months_lands_in_the_right_month(start, months) -> None:
    """The result is n months on, never past that month's end, and on the same day when it exists."""
    end = add_months(start, months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day <= start.day
    assert (end + timedelta(days=1)).month != end.month or end.day == start.day
