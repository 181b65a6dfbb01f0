"""Expressions compiled to Polars (``engine/native.py``) give, row by row, what the evaluator gives —
unknowns included — or hand the row back to it; everything outside the whitelist is left to the evaluator."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medins.engine import context
from medins.engine.context import _convert, _is_money, _to_env
from medins.engine.native import compile_condition, compile_expression
from medins.policy.expr import Expression, ExprEvalError, MissingEntry

SCHEMA = {"visit_type": pl.String, "zone": pl.String, "emergency": pl.Boolean, "preapproved": pl.Boolean,
          "registered_date": pl.Date, "admit_date": pl.Date, "total": pl.Int64}
CONSTANTS = {"window": Decimal(3), "home": "in_district", "start": dt.date(2008, 3, 1), "flag": True}

CONDITIONS = [
    "visit_type == 'inpatient'",
    "visit_type != 'inpatient'",
    "visit_type in ('inpatient', 'outpatient_special')",
    "visit_type not in ['outpatient']",
    # more texts than COMPARED_TEXTS (a hashed look-up), a repeated text, none at all
    "visit_type in ('a', 'b', 'c', 'outpatient', 'e', 'inpatient') or zone not in ('in_city', 'x', 'y', 'z', 'w')",
    "visit_type in ('inpatient', 'inpatient') and zone not in ()",
    "zone == home or not emergency",
    "not coalesce(emergency, False) and not coalesce(preapproved, registered_date <= admit_date)",
    "coalesce(emergency, False) and not coalesce(preapproved, False)"
    " and registered_date > add_days(admit_date, window)",
    "registered_date >= start and (flag or zone == 'x')",
    "is_known(registered_date) and admit_date < add_days(start, 10)",
    "coalesce(zone, visit_type, 'none') == 'in_city'",
]

dates = st.one_of(st.none(), st.dates(dt.date(2008, 1, 1), dt.date(2008, 6, 30)))
rows = st.lists(st.fixed_dictionaries({
    "visit_type": st.sampled_from(["inpatient", "outpatient", "outpatient_special", None]),
    "zone": st.sampled_from(["in_district", "in_city", None]),
    "emergency": st.sampled_from([True, False, None]),
    "preapproved": st.sampled_from([True, False, None]),
    "registered_date": dates, "admit_date": dates, "total": st.integers(0, 10),
}), min_size=1, max_size=25)


@settings(max_examples=60, deadline=None)
@given(rows, st.sampled_from(CONDITIONS))
def test_compiled_condition_equals_the_evaluator_row_by_row(data, text) -> None:
    """Kleene logic, unknown comparisons and ``in``, coalesce, add_days, parameters: the same answer."""
    expr = Expression.parse(text)
    native = compile_expression(expr, "bool", SCHEMA, [CONSTANTS], lambda _c: False)
    assert native is not None, text
    frame = pl.DataFrame(data, schema=SCHEMA)
    out = frame.with_columns(v=native.value, bad=native.trouble if native.trouble is not None else pl.lit(False))
    expected = [expr.evaluate({**CONSTANTS, **row}) for row in data]
    assert not any(out["bad"])  # dates of 2008: no row needs the evaluator
    assert out["v"].to_list() == expected


@pytest.mark.parametrize("text", [
    "diagnosis == 'dialysis'",  # a list column is only read by ``in``
    "visit_type == 1",  # a text compared with a number: the evaluator says what it is
    "visit_type < 'z'",  # ordering of texts is not compiled
    "emergency and visit_type",  # 'and' of a text: an error the evaluator reports
    "registered_date < add_months(admit_date, 6)",  # calendar functions stay in Python
    "unknown_name == 'x'",  # neither a column nor a parameter: the evaluator reports it
    "zone == varies",  # a parameter that differs between versions
    "visit_type == None",
    "add_days(admit_date, window) == admit_date and True",
])
def test_conditions_outside_the_whitelist_are_left_to_the_evaluator(text) -> None:
    versions = [{**CONSTANTS, "varies": v, "window": Decimal("2.5")} for v in ("a", "b")]
    assert compile_condition(Expression.parse(text), {**SCHEMA, "diagnosis": pl.List(pl.String)}, versions) is None


def test_a_condition_that_is_not_true_false_is_not_compiled() -> None:
    assert compile_condition(Expression.parse("coalesce(zone, 'x')"), SCHEMA, [CONSTANTS]) is None


# --- every compiled form against the exact evaluator (#14 item 1) ---------------------------------------------

VALUE_SCHEMA = {"total": pl.Int64, "eligible": pl.Int64, "age": pl.Int64, "zone": pl.String,
                "visit_type": pl.String, "emergency": pl.Boolean, "admit_date": pl.Date, "discharge_date": pl.Date,
                "diagnosis": pl.List(pl.String)}
PARAMS = {
    "rate_p": Decimal("0.55"), "cap": Decimal("1000.5"), "window": Decimal(3), "label": "in_city",
    "deductible": {"in_district": Decimal("300"), "in_city": 500, "out_of_city": MissingEntry("deductible.out")},
    "zone_off": {"in_district": Decimal("0"), "in_city": Decimal("0.05"), "out_of_city": Decimal("0.6")},
    "by_count": {1: Decimal("0.9"), "2": Decimal("0.85"), "3+": Decimal("0.8"), "5+": Decimal("1.25")},
    "names": {"in_district": "A", "in_city": "B"},
}
#: (expression, kind returned, exact: no row where the evaluator succeeds on ordinary values is handed back)
FORMS = [
    ("total * 55% - 100", "money", True),
    ("min(total, cap) * rate_p", "money", True),
    ("max(0, total - deductible[zone])", "money", True),
    ("total / 3", "money", False),
    ("total / eligible * 100", "money", False),
    ("total / 8 + eligible / 0.25", "money", True),
    ("(total - eligible) if emergency else eligible * 0.5", "money", True),
    ("coalesce(eligible, total) + 0.005", "money", True),
    ("abs(total - eligible) * 1.5", "money", True),
    ("-total + 2 * eligible", "money", True),
    ("total * by_count[age]", "money", True),
    ("rate_p - zone_off[zone]", "rate", True),
    ("1.2 - total / 10000", "rate", True),
    ("by_count[age]", "rate", True),
    ("age_on(admit_date, discharge_date)", "int", True),
    ("age * 2.5", "int", True),
    ("year(admit_date) - 2000 + age", "int", True),
    ("total > 1000.5", "bool", True),
    ("total * 2 >= eligible - 0.01", "bool", True),
    ("1 < age <= 3", "bool", True),
    ("total == eligible or total != 0", "bool", True),
    ("not (eligible < cap) and emergency", "bool", True),
    ("discharge_date < add_months(admit_date, age)", "bool", False),
    ("discharge_date >= add_months(admit_date, 1 if coalesce(emergency, False) else 6)", "bool", False),
    ("discharge_date > workday_add(admit_date, window)", "bool", False),
    ("month_start(admit_date) <= next_month_start(discharge_date)", "bool", True),
    ("add_days(admit_date, 5)", "date", True),
    ("min(admit_date, discharge_date)", "date", True),
    ("max(admit_date, add_days(discharge_date, window))", "date", True),
    ("zone if emergency else visit_type", "str", True),
    ("names[zone]", "str", True),
    ("coalesce(zone, label)", "str", True),
    ("'dialysis' in diagnosis or visit_type in diagnosis", "bool", False),
    ("'x' not in diagnosis and is_known(diagnosis)", "bool", True),
]
diagnoses = st.sampled_from([None, [], ["dialysis"], ["x", None], ["None", "inpatient"], [None]])

amounts = st.one_of(st.none(), st.integers(-2_000, 2_000), st.integers(-10**9, 10**12),
                    st.sampled_from([0, 1, -1, 50, 10**16, -(10**16), 2**62, -(2**62), 2**63 - 1, -(2**63)]))
value_rows = st.lists(st.fixed_dictionaries({
    "total": amounts, "eligible": amounts,
    "age": st.one_of(st.none(), st.integers(-30, 30), st.sampled_from([0, 1, 2, 3, 4, 5, 10**5, -(10**5), 10**9])),
    "zone": st.sampled_from(["in_district", "in_city", "out_of_city", "nowhere", None]),
    "visit_type": st.sampled_from(["inpatient", "None", None]), "diagnosis": diagnoses,
    "emergency": st.sampled_from([True, False, None]),
    "admit_date": st.one_of(st.none(), st.dates(dt.date(2003, 12, 1), dt.date(2027, 1, 31)),
                            st.sampled_from([dt.date(2003, 12, 31), dt.date(2026, 12, 31), dt.date(2008, 1, 31),
                                             dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(2008, 2, 29)])),
    "discharge_date": st.one_of(st.none(), st.dates(dt.date(2004, 1, 1), dt.date(2027, 1, 31))),
}), min_size=1, max_size=30)


def _evaluated(expr: Expression, returns: str, row: dict) -> tuple[bool, object]:
    """What ``Run.ev``'s evaluator gives one row: (succeeded, value in ev's units)."""
    env: dict[str, object] = dict(PARAMS)
    env.update({c: _to_env(c, v) for c, v in row.items()})
    try:
        return True, _convert(expr.evaluate(env), returns)
    except (ExprEvalError, ArithmeticError, TypeError, ValueError):
        return False, None


def _ordinary(row: dict) -> bool:
    small = all(row[c] is None or abs(row[c]) <= 10**9 for c in ("total", "eligible", "age"))
    return small and all(row[c] is None or 2004 <= row[c].year <= 2026 for c in ("admit_date", "discharge_date"))


@settings(max_examples=200, deadline=None)
@given(value_rows, st.sampled_from(FORMS))
def test_every_compiled_form_equals_the_evaluator_or_hands_the_row_back(data, form) -> None:
    """Money in fen (half-up), rates in millionths, whole numbers truncated, texts, dates, conditions:
    on every row the native value equals the evaluator's, or the row is troubled and goes to it — always
    so where the evaluator fails (negative amount, rate outside 0–100 %, no entry, missing entry, division
    by zero, overflow, calendar out of range), never for ordinary values of an exact form."""
    text, returns, exact = form
    expr = Expression.parse(text)
    native = compile_expression(expr, returns, VALUE_SCHEMA, [PARAMS], _is_money)
    assert native is not None, text
    frame = pl.DataFrame(data, schema=VALUE_SCHEMA)
    trouble = native.trouble if native.trouble is not None else pl.lit(False)
    out = frame.with_columns(_bad=trouble).with_columns(  # a troubled row's value is never read (nor made a date)
        _val=pl.when(pl.col("_bad")).then(None).otherwise(native.value))
    for row, value, bad in zip(data, out["_val"].to_list(), out["_bad"].to_list(), strict=True):
        ok, expected = _evaluated(expr, returns, row)
        if not bad:
            assert ok and value == expected, (text, row, value, expected)
        elif exact and ok and _ordinary(row):
            raise AssertionError(f"{text}: an ordinary row was handed back to the evaluator: {row}")


@pytest.mark.parametrize("text", [
    "total > 100",
    "coalesce(emergency, False) and not coalesce(preapproved, False) and registered_date > add_days(admit_date, 3)",
])
def test_amount_comparisons_and_add_days_compile(text) -> None:
    assert compile_expression(Expression.parse(text), "bool", SCHEMA, [CONSTANTS], _is_money) is not None


@pytest.mark.parametrize("text, returns", [
    ("total / 0.7 * 0.00000000001", "money"),  # a quotient's scale times another: beyond 64 bits, the evaluator's
    ("deductible", "money"),  # a whole table is not an amount
    ("zone * 2", "money"),  # a text in arithmetic: the evaluator says what it is
    ("min(zone, visit_type)", "str"),  # min of texts
    ("'x' in deductible", "bool"),  # membership of a table
    ("total if emergency else zone", "money"),  # branches of two kinds
])
def test_forms_outside_the_whitelist_are_left_to_the_evaluator(text, returns) -> None:
    assert compile_expression(Expression.parse(text), returns, VALUE_SCHEMA, [PARAMS], _is_money) is None


#: Rows for ``Run.ev``: amounts an Int64 result can hold (the evaluator's path cannot place a larger one either).
run_rows = st.lists(st.fixed_dictionaries({
    "total": st.one_of(st.none(), st.integers(-2_000, 2_000), st.integers(-10**9, 10**13)),
    "eligible": st.one_of(st.none(), st.integers(-2_000, 2_000), st.integers(-10**9, 10**13)),
    "age": st.one_of(st.none(), st.integers(-30, 30), st.sampled_from([10**5, -(10**5)])),
    "zone": st.sampled_from(["in_district", "in_city", "out_of_city", "nowhere", None]),
    "visit_type": st.sampled_from(["inpatient", "None", None]), "diagnosis": diagnoses,
    "emergency": st.sampled_from([True, False, None]),
    "admit_date": st.one_of(st.none(), st.dates(dt.date(2003, 12, 1), dt.date(2027, 1, 31))),
    "discharge_date": st.one_of(st.none(), st.dates(dt.date(2004, 1, 1), dt.date(2027, 1, 31))),
}), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(run_rows, st.sampled_from(FORMS), st.booleans(), st.booleans())
def test_run_ev_gives_the_same_values_and_reasons_with_or_without_native_forms(data, form, masked, required) -> None:
    """Through ``Run.ev`` (masks, ``required`` → ``missing_fact``, reasons on the same rows): the native path
    and the evaluator alone agree exactly."""
    from medins.api import load_policy

    text, returns, _exact = form
    frame = pl.DataFrame(data, schema=VALUE_SCHEMA).with_row_index("_i").with_columns(
        pl.col("_i").cast(pl.Int64), _v=pl.lit(0, pl.Int64))
    mask = pl.Series([i % 3 != 1 for i in range(frame.height)]) if masked else None
    policy = load_policy("suqian-2007")
    results = []
    class _Run(context.Run):  # the policy's parameters replaced by PARAMS (tables, amounts, rates)
        def constants(self, version: int) -> dict[str, object]:
            return PARAMS

    for use_native in (True, False):
        run = _Run(policy, frame)
        original = context.compile_expression
        if not use_native:
            context.compile_expression = lambda *_a, **_k: None
        try:
            policy.memo.clear()
            values = run.ev(text, returns, mask=mask, required=required)
        finally:
            context.compile_expression = original
        results.append((values.to_list(), run.problems))
    assert results[0] == results[1]


@pytest.mark.parametrize("kind, k", [("months", 1), ("months", -13), ("months", 6), ("workdays", 1), ("workdays", 10)])
def test_calendar_tables_equal_the_calendar_functions_day_by_day(kind, k) -> None:
    """Every entry of the day-by-day tables is ``dates.add_months`` / ``dates.workday_add`` of its day
    (or none where those raise), so reading them never gives a date the evaluator would not."""
    from medins import dates
    from medins.engine.native import _shift_table

    first, table = _shift_table(kind, k)
    step = 1 if kind == "workdays" else 7  # every day of the official calendar, every week of the years
    for offset in range(0, table.len(), step):
        day = first + dt.timedelta(days=offset)
        try:
            expected = dates.add_months(day, k) if kind == "months" else dates.workday_add(day, k)
        except (ValueError, ArithmeticError):
            expected = None
        assert table[offset] == expected, (day, kind, k)


@pytest.mark.parametrize("first, last", [(dt.date(1950, 1, 1), dt.date(2100, 12, 31)), (dt.date(1969, 12, 31),
                                          dt.date(1970, 1, 2)), (dt.date(1, 1, 1), dt.date(1, 1, 3)),
                                          (dt.date(2024, 2, 28), dt.date(2024, 2, 28))])
def test_days_are_the_date_range(first, last) -> None:
    """The tables' days, counted as day numbers, are ``pl.date_range``'s dates (days before 1970 too)."""
    from medins.engine.native import _days

    days = _days(first, last)
    expected = pl.date_range(first, last, "1d", eager=True)
    assert days.dtype == pl.Date and days.equals(expected) and days.len() == (last - first).days + 1


#: Offsets around the edges of the month tables: none, small, a year and more, and the first ones that take
#: a day of 1950-2100 before year 1 or past year 9999 (where the table has no entry, as add_months raises).
EDGE_MONTHS = (0, 1, -1, 2, 11, 12, 13, -12, -13, 48, 1200, -23388, -23389, 94788, 94789, 10**6, -10**6)


@pytest.mark.parametrize("k", EDGE_MONTHS)
def test_month_tables_equal_the_calendar_offset_on_every_day(k) -> None:
    """The month table (built without the year check when no day can leave years 1-9999, from one shared
    range of days) equals Polars' ``offset_by`` of every day with the days beyond those years blanked."""
    from medins.engine.native import TABLE_FROM, TABLE_TO, _shift_table

    first, table = _shift_table("months", k)
    days = pl.date_range(TABLE_FROM, TABLE_TO, "1d", eager=True)
    shifted = days.dt.offset_by(f"{k}mo")
    year = shifted.dt.year()
    expected = shifted.set((year > 9999) | (year < 1), None)
    assert first == TABLE_FROM
    assert table.dtype == pl.Date and table.equals(expected)


@pytest.mark.parametrize("k", EDGE_MONTHS)
def test_month_tables_at_month_ends_and_leap_days(k) -> None:
    """Month ends, leap days (2000 is a leap year, 2100 is not), the tables' first and last days:
    each entry is ``dates.add_months`` of its day, or none where that raises."""
    from medins import dates
    from medins.engine.native import TABLE_FROM, TABLE_TO, _shift_table

    first, table = _shift_table("months", k)
    edges = [TABLE_FROM, TABLE_TO, dt.date(2000, 2, 29), dt.date(2004, 2, 29), dt.date(2100, 2, 28),
             dt.date(1999, 12, 31), dt.date(2007, 8, 31), dt.date(2024, 1, 31), dt.date(2024, 3, 31)]
    edges += [dt.date(y, m, 1) - dt.timedelta(days=1) for y in (1951, 1996, 2000, 2100) for m in range(1, 13)]
    for day in edges:
        try:
            expected = dates.add_months(day, k)
        except (ValueError, ArithmeticError):
            expected = None
        assert table[(day - first).days] == expected, (day, k)


def _assert_reads_the_whole_table(kind: str, k: int, days: list) -> None:
    """Each known day reads the entry the whole table has for it; a day outside it (or whose entry the whole
    table lacks) is handed back, and only those."""
    from medins.engine.native import _read_table, _shift_table

    first, whole = _shift_table(kind, k)
    value, outside = _read_table(pl.col("day"), kind, k)
    out = pl.DataFrame({"day": days}, schema={"day": pl.Date}).lazy().with_columns(
        value=value, outside=outside).collect()
    for day, got, handed_back in out.select("day", "value", "outside").iter_rows():
        offset = (day - first).days if day is not None else -1
        expected = whole[offset] if 0 <= offset < whole.len() else None
        assert got == expected, (kind, k, day)
        assert handed_back == (day is not None and expected is None), (kind, k, day)


@pytest.mark.parametrize("kind, k", [("months", 6), ("months", -13), ("months", 94789), ("workdays", 10)])
@pytest.mark.parametrize("days", [
    [None, dt.date(1949, 12, 31), dt.date(1950, 1, 1), dt.date(2008, 2, 29), dt.date(2024, 1, 31),
     dt.date(2100, 12, 31), dt.date(2101, 1, 1), dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(2008, 2, 29)],
    [dt.date(2024, 1, 31)],  # one bill: a table of one day
    [None, dt.date(1, 1, 1)],  # no covered day at all: the table of one day is never read
    [None],
])
def test_tables_read_for_the_frames_days_equal_the_whole_table(kind, k, days) -> None:
    """The table is built in the query for the frame's span of covered days only: each covered day reads the
    entry the whole table has for it; a day outside (or an entry the whole table lacks) is handed back."""
    _assert_reads_the_whole_table(kind, k, days)


@pytest.mark.parametrize("kind, k", [("workdays", 1), ("workdays", 10), ("workdays", 100_000), ("months", 1),
                                     ("months", 94789), ("months", -23989)])
def test_days_handed_back_near_the_tables_ends(kind, k) -> None:
    """The rows handed back (``_read_table``'s second column, said by a comparison of the day where the empty
    entries are known in advance) are exactly the known days whose entry the whole table lacks, around the
    calendar's last working days and the covered span's edges."""
    from medins.engine.native import _table_span

    start, end = _table_span(kind)
    days = [start + dt.timedelta(days=d) for d in range(-3, 40)] + [end - dt.timedelta(days=d) for d in range(-3, 60)]
    _assert_reads_the_whole_table(kind, k, [None, *days])


@pytest.mark.parametrize("day", [dt.date(1, 1, 1), dt.date(1, 1, 2), dt.date(9999, 12, 31), dt.date(2024, 2, 29), None])
@pytest.mark.parametrize("n", [-1, 0, 1, 3, -400])
def test_outside_calendar_years_by_day_numbers_is_the_years_test(day, n) -> None:
    """The day-number test of years 1-9999 flags exactly the dates whose year is outside them (Polars' dates go
    beyond Python's both ways)."""
    from medins.engine.native import _outside_calendar_years

    shifted = pl.col("day") + pl.duration(days=n)
    out = pl.DataFrame({"day": [day]}, schema={"day": pl.Date}).select(
        got=_outside_calendar_years(shifted), year=shifted.dt.year())
    year = out["year"][0]
    assert out["got"][0] == (None if year is None else not 1 <= year <= 9999)


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "f", "None", ""]), max_size=8),
       st.lists(st.sampled_from(["a", "b", "e", "None", "", None]), min_size=1, max_size=12))
def test_text_one_of_a_list_by_comparisons_is_is_in(texts, column) -> None:
    """``is_one_of`` (comparisons for a few texts, ``is_in`` beyond) gives ``is_in``'s answer, null for an unknown."""
    from medins.engine.native import is_one_of

    frame = pl.DataFrame({"t": column}, schema={"t": pl.String})
    out = frame.select(got=is_one_of(pl.col("t"), texts), want=pl.col("t").is_in(texts))
    assert out["got"].to_list() == out["want"].to_list()


# --- the working-day table kept in the cache folder -------------------------------------------------------------

def _workday_table(monkeypatch, folder, *, calendar_read: bool) -> pl.Series:
    """``native._workdays()`` made afresh with the cache in ``folder``; fails if the calendar is (or is not) read."""
    from medins.engine import native

    made = native._calendar_workdays
    read = []
    monkeypatch.setattr(native, "_calendar_workdays", lambda: read.append(1) or made())
    monkeypatch.setenv("MEDINS_CACHE_DIR", str(folder))
    native._workdays.cache_clear()
    try:
        table = native._workdays()
    finally:
        native._workdays.cache_clear()
    assert bool(read) == calendar_read
    return table


def test_the_working_days_read_back_from_the_cache_are_the_calendars(tmp_path, monkeypatch) -> None:
    """The first ``_workdays()`` reads the calendar and keeps the table; the next reads it back, the same days
    (every one of which ``dates.workday_add`` agrees with: ``test_calendar_tables_match_the_exact_functions``)."""
    from medins.engine import native

    expected = pl.Series(native._calendar_workdays(), dtype=pl.Int32).cast(pl.Date)
    assert expected.len() > 5000
    made = _workday_table(monkeypatch, tmp_path, calendar_read=True)
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["workdays"]
    again = _workday_table(monkeypatch, tmp_path, calendar_read=False)
    assert made.dtype == again.dtype == pl.Date
    assert made.equals(expected) and again.equals(expected)


@pytest.mark.parametrize("damage", ["flip", "truncate", "other key", "writable by others"])
def test_a_bad_working_day_entry_is_not_used(tmp_path, monkeypatch, damage) -> None:
    """A changed, cut, foreign or others-writable entry is ignored: the calendar is read again, the same table."""
    from medins.engine import native

    expected = _workday_table(monkeypatch, tmp_path, calendar_read=True)
    (entry,) = tmp_path.iterdir()
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[-3] ^= 1
        entry.write_bytes(bytes(data))
    elif damage == "truncate":
        entry.write_bytes(bytes(data[:-2]))
    elif damage == "other key":  # another calendar file (or another medins) names another entry
        key = native._calendar_key()
        monkeypatch.setattr(native, "_calendar_key", lambda: bytes(b ^ 0xFF for b in key))
    else:
        entry.chmod(0o666)
    assert _workday_table(monkeypatch, tmp_path, calendar_read=True).equals(expected)
