"""The engine's fast paths (one-key grouping, hashed distinct values, bit-pattern lists, hash ordering)
give exactly what the plain definitions give."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medins.engine import codes, context
from medins.engine.codes import FEW_VALUES, flags_to_lists, pattern, texts_by_pattern
from medins.engine.prepare import COMPARED_NAMES, _position_of
from medins.engine.settle import _by_person_day, _by_person_day_row, _in_frame_order, _stable_argsort, claim_order
from medins.engine.state import NUMPY_ROWS, UNLIMITED, clamped_cumsum, group_order, running_max_before

rows = st.lists(st.tuples(st.sampled_from([1, 2, None]), st.sampled_from(["in", "out", None]),
                          st.integers(0, 400), st.sampled_from([0, 50, 300, 1000, None]), st.integers(0, 500)),
                min_size=1, max_size=30)


def recurrence(xs, limits, h0):
    state, out = h0, []
    for x, limit in zip(xs, limits, strict=True):
        state = max(state, min(UNLIMITED if limit is None else limit, state + x))
        out.append(state)
    return out


@settings(max_examples=200)
@given(rows)
def test_clamped_cumsum_on_interleaved_groups_equals_the_loop(data) -> None:
    """Groups of an int and a string column (nulls too), interleaved, limits up and down, x = 0 rows: the loop."""
    frame = pl.DataFrame(data, schema={"p": pl.Int64, "b": pl.String, "x": pl.Int64, "l": pl.Int64, "h": pl.Int64},
                         orient="row")
    out = clamped_cumsum(frame, x="x", limit="l", h0="h", group=["p", "b"], out_before="c0", out_after="c1")
    grouping = group_order(frame, ["p", "b"])
    again = clamped_cumsum(frame, x="x", limit="l", h0="h", group=["p", "b"], out_before="c0", out_after="c1",
                           grouping=grouping)
    assert out.equals(again)
    for key in {(p, b) for p, b, *_ in data}:
        idx = [i for i, r in enumerate(data) if (r[0], r[1]) == key]
        h0 = data[idx[0]][4]
        want = recurrence([data[i][2] for i in idx], [data[i][3] for i in idx], h0)
        assert [out["c1"][i] for i in idx] == want
        assert [out["c0"][i] for i in idx] == [h0, *want[:-1]]


@given(rows)
def test_running_max_before_on_interleaved_groups(data) -> None:
    """The largest earlier x of the row's group (or the history), in frame order."""
    frame = pl.DataFrame(data, schema={"p": pl.Int64, "b": pl.String, "x": pl.Int64, "l": pl.Int64, "h": pl.Int64},
                         orient="row")
    out = running_max_before(frame, x="x", h0="h", group=["p", "b"], out="m")
    for i, (p, b, *_rest) in enumerate(data):
        earlier = [r[2] for r in data[:i] if (r[0], r[1]) == (p, b)]
        first = next(r for r in data if (r[0], r[1]) == (p, b))
        assert out["m"][i] == max([first[4], *earlier])


values = st.lists(st.tuples(st.sampled_from(["a", "b", None]), st.sampled_from([1, 2, None]),
                            st.sampled_from([["x"], ["x", "y"], [], None])), min_size=1, max_size=25)


@given(values)
def test_hashed_distinct_values_equal_the_exact_path(data) -> None:
    """Numbering rows by their combination of values through hashes gives the same partition as unique + join."""
    frame = pl.DataFrame(data, schema={"s": pl.String, "i": pl.Int64, "l": pl.List(pl.String)}, orient="row")
    keys = ["s", "i", "l"]
    fast_index, fast = context._distinct(frame, keys)
    exact_index, exact = context._distinct(frame, keys, exact=True)
    assert fast.height == exact.height
    rows_of = lambda index, table: [table.row(int(u)) for u in index]  # noqa: E731
    assert rows_of(fast_index, fast) == rows_of(exact_index, exact) == frame.rows()


@given(st.lists(st.one_of(st.integers(0, 2**62), st.integers(0, 40), st.sampled_from([0, 2**64 - 1, 2**63, 97])),
                min_size=1, max_size=FEW_VALUES + 20, unique=True), st.data(), st.sampled_from([pl.Int64, pl.UInt64]))
def test_positions_by_remainders_equal_the_hashed_lookup(distinct, data, dtype) -> None:
    """Each value's position among the distinct values by a table of remainders (a few values) is the hashed
    look-up's (``replace_strict``), whatever the values, their number or type."""
    if dtype == pl.Int64:
        distinct = [v for v in distinct if v < 2**63] or [0]
    values = data.draw(st.lists(st.sampled_from(distinct), min_size=0, max_size=60))
    table = pl.Series("d", distinct, dtype=dtype)
    rows = pl.Series("v", values, dtype=dtype)
    expected = rows.replace_strict(table, pl.int_range(0, table.len(), dtype=pl.UInt32, eager=True),
                                   return_dtype=pl.UInt32)
    got = codes.positions(rows, table)
    assert got.dtype == pl.UInt32 and got.to_list() == expected.to_list() == [distinct.index(v) for v in values]


@given(st.lists(st.lists(st.booleans(), min_size=70, max_size=70), min_size=1, max_size=8))
def test_flags_become_lists_in_check_order(matrix) -> None:
    """Per row, the codes whose flag holds, in order — also past 62 flags (two bit patterns)."""
    codes = [f"c{k}" for k in range(70)]
    flags = [(code, pl.Series([row[k] for row in matrix])) for k, code in enumerate(codes)]
    assert flags_to_lists(flags).to_list() == [[c for c, on in zip(codes, row, strict=True) if on] for row in matrix]


@given(st.lists(st.lists(st.booleans(), min_size=70, max_size=70), min_size=0, max_size=8), st.integers(1, 70))
def test_flags_become_joined_text_in_check_order(matrix, n) -> None:
    """The text form (``_unchecked``): the same codes joined by ";", null when none — one or two bit patterns."""
    codes = [f"c{k}" for k in range(n)]
    patterns = pl.select(p.alias(f"_p{c}") for c, p in enumerate(pattern([pl.lit(pl.Series([row[k] for row in matrix]))
                                                                          for k in range(n)]))).get_columns()
    want = [";".join(c for c, on in zip(codes, row, strict=False) if on) or None for row in matrix]
    texts = texts_by_pattern(codes, patterns)
    assert texts.dtype == pl.String and texts.to_list() == want


@settings(max_examples=100)
@given(st.lists(st.tuples(st.sampled_from(["P1", "P2", "P10", "Q"]),
                          st.dates(dt.date(2008, 1, 1), dt.date(2008, 1, 5))), min_size=1, max_size=25))
def test_claim_order_is_person_then_date_then_row(data) -> None:
    """The hash ordering keeps each person's claims together, by date then input row, and numbers the persons."""
    claims = pl.DataFrame({"person_id": [p for p, _ in data], "admit_date": [d for _, d in data],
                           "row": range(1, len(data) + 1)})
    order, person = claim_order(claims)
    seen = claims[order]
    runs = seen.with_columns(_pk=person)
    assert runs.group_by("_pk").agg(pl.col("person_id").n_unique())["person_id"].max() == 1
    assert runs["_pk"].to_list() == sorted(runs["_pk"].to_list())
    assert runs["_pk"].n_unique() == claims["person_id"].n_unique()
    for pid in set(claims["person_id"]):
        mine = seen.filter(pl.col("person_id") == pid)
        assert mine.rows() == sorted(mine.rows(), key=lambda r: (r[1], r[2]))



@given(st.lists(st.tuples(st.sampled_from(["P1", "P2", None]), st.integers(0, 3)), min_size=2, max_size=12))
def test_person_day_sort_gives_up_when_persons_share_the_hash_bits(data) -> None:
    """Persons whose hash bits collide (here: every person hashes to 0) are seen, and the exact sort used instead."""
    claims = pl.DataFrame({"person_id": [p for p, _ in data], "day": [d for _, d in data]},
                          schema={"person_id": pl.String, "day": pl.Int64})
    shared = _by_person_day(claims, pl.lit(0, pl.UInt64), pl.col("day"), 4)
    persons = claims["person_id"].n_unique()
    assert (shared is None) == (persons > 1)
    found = _by_person_day(claims, pl.col("person_id").hash(seed=20071), pl.col("day"), 4)
    assert found is not None and found[1][-1] + 1 == persons  # distinct hashes: kept, one number a person


@settings(max_examples=150)
@given(st.lists(st.tuples(st.sampled_from(["P1", "P2", "P10", "Q", None]),
                          st.one_of(st.none(), st.dates(dt.date(2008, 1, 1), dt.date(2008, 1, 5))),
                          st.integers(1, 6)), min_size=1, max_size=25), st.booleans())
def test_claim_order_matches_the_plain_sort_whatever_the_rows(data, in_row_order) -> None:
    """Every path of ``claim_order`` (one sort of person-hash bits and day for rows in input order; two sorts
    or the string sort otherwise) gives each person's claims by date (missing last), then row, then position."""
    if in_row_order:
        data = sorted(data, key=lambda r: r[2])
    claims = pl.DataFrame({"person_id": [p for p, _, _ in data], "admit_date": [d for _, d, _ in data],
                           "row": [r for _, _, r in data]}, schema={"person_id": pl.String, "admit_date": pl.Date,
                                                                    "row": pl.Int64})
    order, person = claim_order(claims)
    assert sorted(order.to_list()) == list(range(len(data)))
    numbers = person.to_list()
    assert numbers == sorted(numbers) and numbers[0] == 0 and len(set(numbers)) == numbers[-1] + 1
    by_number: dict[int, list[int]] = {}
    for position, number in zip(order.to_list(), numbers, strict=True):
        by_number.setdefault(number, []).append(position)
    assert all(len({data[i][0] for i in ps}) == 1 for ps in by_number.values())  # one person a number
    assert len(by_number) == len({p for p, _, _ in data})
    for positions in by_number.values():
        assert positions == sorted(positions, key=lambda i: (data[i][1] is None, data[i][1] or dt.date.min,
                                                            data[i][2], i))


@settings(max_examples=25)
@given(st.sampled_from([3, 40, 5000, 1 << 40]), st.integers(0, 2**32 - 1))
def test_stable_argsort_equals_polars_stable_sort(distinct, seed) -> None:
    """NumPy's unstable sort with its runs of equal keys put back in input order is the stable sort."""
    rnd = random.Random(seed)
    key = pl.Series("key", [rnd.randrange(distinct) for _ in range(rnd.choice([1, 2, 4000, 9000]))], dtype=pl.UInt64)
    want = key.to_frame().select(pl.arg_sort_by("key", maintain_order=True)).to_series()
    got = _stable_argsort(key)
    assert got.dtype == want.dtype and got.to_list() == want.to_list()


def test_claim_order_of_a_large_frame_matches_the_plain_sort() -> None:
    """From ``NUMPY_ROWS`` rows the person-day sort is NumPy's: each person's claims by date, then input row."""
    rnd = random.Random(3)
    n = NUMPY_ROWS * 2
    claims = pl.DataFrame({"person_id": [f"P{rnd.randrange(900)}" for _ in range(n)],
                           "admit_date": [dt.date(2008, 1, 1) + dt.timedelta(days=rnd.randrange(20)) for _ in range(n)],
                           "row": range(1, n + 1)})
    order, person = claim_order(claims)
    plain = claims.with_row_index("_p").sort("person_id", "admit_date", "row")
    numbers = person.to_list()
    assert numbers == sorted(numbers) and len(set(numbers)) == claims["person_id"].n_unique()
    mine = claims.with_columns(_pk=pl.Series(numbers).gather(order.arg_sort()))  # each row's person number
    assert mine.group_by("_pk").agg(pl.col("person_id").n_unique())["person_id"].max() == 1
    by_person = {p: [i for i in order.to_list() if claims["person_id"][i] == p] for p in ("P1", "P17", "P899")}
    for p, positions in by_person.items():
        assert positions == plain.filter(pl.col("person_id") == p)["_p"].to_list()


CONDITIONS = [
    "service_date < add_months(enrolled_date, 3 if coalesce(newborn, False) else 6)",
    "claim_date > workday_add(discharge_date, 10) or not coalesce(emergency, False)",
    "not (total >= 1000 and hospital_zone == 'in_city') or admit_date == discharge_date",
    "deductible[hospital_zone] > total",  # an unknown zone fails: the condition is evaluated whole
    "total > 0.5 and 30% < 1 and hospital_zone != 'out_of_city'",
    "hospital_zone < total",  # text against a number: an error for every known pair, said whole
    "coalesce(emergency, newborn) == (total > 200)",
]

facts = st.lists(st.tuples(
    st.one_of(st.none(), st.dates(dt.date(2008, 1, 1), dt.date(2008, 3, 1))),
    st.one_of(st.none(), st.dates(dt.date(2007, 9, 1), dt.date(2008, 2, 1))),
    st.sampled_from([True, False, None]), st.sampled_from([True, False, None]),
    st.one_of(st.none(), st.integers(0, 300_000)), st.sampled_from(["in_district", "in_city", "moon", None]),
), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(facts, st.sampled_from(CONDITIONS), st.booleans())
def test_conditions_split_into_parts_equal_the_whole(claims_facts, text, required) -> None:
    """A condition evaluated part by part gives the values and the reasons of the condition evaluated whole."""
    from medins.policy.loader import load_policy

    policy = load_policy("suqian-2007")
    frame = pl.DataFrame(
        [(i, 0, a, a, c, a if d is None else d, e, n, t, z) for i, (a, d, e, n, t, z) in enumerate(claims_facts)
         for c in [None if a is None else a.replace(day=min(a.day + 5, 28))]],
        schema={"_i": pl.Int64, "_v": pl.Int64, "service_date": pl.Date, "admit_date": pl.Date, "claim_date": pl.Date,
                "discharge_date": pl.Date, "emergency": pl.Boolean, "newborn": pl.Boolean, "total": pl.Int64,
                "hospital_zone": pl.String}, orient="row").with_columns(enrolled_date=pl.col("discharge_date"))
    results = []
    for split_from in (10**9, -1):
        original = context.SPLIT_FROM
        context.SPLIT_FROM = split_from
        try:
            run = context.Run(policy, frame)
            values = run.ev(text, "bool", required=required)
        finally:
            context.SPLIT_FROM = original
        results.append((values.to_list(), {k: sorted(v) for k, v in run.problems.items()}))
    assert results[0] == results[1]


bills = st.lists(st.tuples(st.sampled_from(["A", "B"]), st.dates(dt.date(2007, 9, 1), dt.date(2009, 6, 30)),
                           st.sampled_from(["宿迁市中医院", "市人民医院", "省人民医院", "other"]),
                           st.integers(0, 8_000_000), st.integers(0, 100), st.sampled_from([True, False, None]),
                           st.sampled_from(["inpatient", "outpatient"])),
                 min_size=1, max_size=8)


def _bills(rows) -> list[dict]:
    out = []
    for i, (person, day, hospital, total, b_pct, emergency, kind) in enumerate(rows):
        visit = {"type": kind, "admit_date": day.isoformat(), "hospital": {"name": hospital},
                 "claim_date": (day + dt.timedelta(days=5)).isoformat(), "registered_date": day.isoformat()}
        if emergency is not None:
            visit["emergency"] = emergency
        out.append({"id": f"C{i}", "person": {"id": person, "enrolled_date": "2007-07-15"}, "visit": visit,
                    "amounts": {"total": f"{total / 100:.2f}", "class_b": f"{total * b_pct // 10000:.2f}"}})
    return out


@settings(max_examples=40, deadline=None)
@given(bills, bills, st.sampled_from([200_000, 3]))
def test_memoised_expression_values_never_change_a_result(earlier, later, limit) -> None:
    """A policy that has already settled other claims (its memo warm, or cleared again and again at a
    tiny limit) settles new claims exactly as a freshly loaded one."""
    from medins.api import load_policy, settle_bills

    warm = load_policy("suqian-2007")
    settle_bills(warm, _bills(earlier))
    assert warm.memo or limit == 3
    original = context.MEMO_LIMIT
    context.MEMO_LIMIT = limit
    try:
        assert settle_bills(warm, _bills(later)) == settle_bills(load_policy("suqian-2007"), _bills(later))
    finally:
        context.MEMO_LIMIT = original



def _class_b_frames(scale: int):
    band = st.tuples(st.integers(0, scale), st.one_of(st.none(), st.integers(0, 1_000_000)))
    return st.lists(st.tuples(st.lists(band, min_size=3, max_size=3), st.integers(0, scale),
                              st.sampled_from([0, 100_000, 1, 999_999, 1_000_000]), st.integers(-10, scale)),
                    min_size=1, max_size=20)


def _maxima(frame: pl.DataFrame, rates: list[str], amounts: list[str]) -> tuple[int, ...]:
    """The largest |rate| of ``rates`` (one figure) and the largest |value| of each of ``amounts``."""
    row = frame.select(pl.max_horizontal(pl.col(r).abs().max() for r in rates).alias("_r"),
                       *(pl.col(a).abs().max() for a in amounts)).row(0)
    return tuple(int(v or 0) for v in row)


@settings(max_examples=300)
@given(st.one_of(_class_b_frames(10**3), _class_b_frames(10**8), _class_b_frames(10**12)))
def test_class_b_pro_rata_narrow_form_equals_the_exact_sum(data) -> None:
    """A-SQ-4 in Int64 (quotient and remainder of off × B by E) = the Int128 sum = the exact fraction, half up."""
    from medins.engine.benefits import _narrow_fits, class_b_raw

    names = [f"_b{k}_{p}" for k in range(3) for p in "ar"]
    frame = pl.DataFrame([[*(v for a, r in bands for v in (a, r)), e0, off, b] for bands, e0, off, b in data],
                         schema={c: pl.Int64 for c in [*names, "_e0", "_boff", "class_b_inscope"]}, orient="row")
    expected = []
    for bands, e0, off, b in data:
        num = sum(a * max(0, (r or 0) * e0 - off * max(b, 0)) for a, r in bands)
        expected.append((2 * num + 1_000_000 * e0) // (2_000_000 * e0) if e0 else None)
    positive = pl.col("_e0") > 0
    assert frame.select(pl.when(positive).then(class_b_raw(3, narrow=False))).to_series().to_list() == expected
    frame = frame.with_columns(_bsum=pl.sum_horizontal(f"_b{k}_a" for k in range(3)))
    if _narrow_fits(*_maxima(frame, [f"_b{k}_r" for k in range(3)] + ["_boff"], ["_e0", "_bsum", "class_b_inscope"])):
        assert frame.select(pl.when(positive).then(class_b_raw(3, narrow=True))).to_series().to_list() == expected
    # no offset on any row (every policy without a class-B reduction): the short narrow form, the same values
    frame = frame.with_columns(_boff=pl.lit(0, pl.Int64))
    plain = [(2 * sum(a * max(0, (r or 0) * e0) for a, r in bands) + 1_000_000 * e0) // (2_000_000 * e0) if e0 else None
             for bands, e0, _off, _b in data]
    if _narrow_fits(*_maxima(frame, [f"_b{k}_r" for k in range(3)] + ["_boff"], ["_e0", "_bsum", "class_b_inscope"])):
        short = class_b_raw(3, narrow=True, offset=False)
        assert frame.select(pl.when(positive).then(short)).to_series().to_list() == plain


def test_class_b_narrow_form_is_taken_for_real_bills() -> None:
    """The narrow form's bound holds for bills up to ten million yuan (so the test above exercises it), not beyond."""
    from medins.engine.benefits import _narrow_fits

    assert _narrow_fits(1_000_000, 10**9, 10**9, 10**9)
    assert not _narrow_fits(1_000_000, 10**13, 10**13, 10**13)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["in_district", "in_city", "out_of_city", "nowhere", None]),
                          st.sampled_from([True, False, None])), min_size=1, max_size=12))
def test_evaluations_sharing_a_mask_equal_each_evaluated_alone(rows) -> None:
    """``Run.ev(..., shared=...)`` (the band rates of one rule: the mask's rows and their distinct values worked out
    once, the values put on the frame's rows by one gather and the mask) gives each expression the values (null
    outside the mask, and where the mask is unknown) and the reasons it gets evaluated alone — an unknown zone's
    ``missing_parameter`` or ``missing_fact`` included, a constant too — in any order of the expressions."""
    from medins.policy.loader import load_policy

    policy = load_policy("suqian-2007")
    frame = pl.DataFrame([(i, 0, zone) for i, (zone, _m) in enumerate(rows)],
                         schema={"_i": pl.Int64, "_v": pl.Int64, "hospital_zone": pl.String}, orient="row")
    mask = pl.Series([m for _z, m in rows], dtype=pl.Boolean)
    texts = [("max(0, rate - zone_offset[hospital_zone])", {"rate": Decimal(r)}) for r in ("0.5", "0.55", "0.7")]
    texts.append(("deductible[hospital_zone]", {}))
    texts.append(("class_b_offset", {}))
    alone, together = context.Run(policy, frame), context.Run(policy, frame)
    shared: dict = {}
    for text, extra in texts:
        returns = "money" if text.startswith("deductible") else "rate"
        a = alone.ev(text, returns, mask=mask, extra=extra, required=True)
        b = together.ev(text, returns, mask=mask, extra=extra, required=True, shared=shared)
        table = context.table_of(b, shared)  # what the band query bounds the rates and offsets by
        assert (table.min(), table.max()) == (b.min(), b.max()), text
        assert a.dtype == b.dtype and a.len() == b.len() == frame.height, text
        assert a.to_list() == b.to_list(), text
    assert alone.problems == together.problems


@pytest.mark.parametrize("listed", [1, 5, COMPARED_NAMES, COMPARED_NAMES + 1, 40])
def test_hospital_place_by_comparison_equals_the_lookup(listed) -> None:
    """Few listed hospitals are found by comparing names, many by ``replace_strict``: the same places, null for a
    missing or unlisted name."""
    names = pl.Series([f"医院{i}" for i in range(listed)])
    claims = pl.DataFrame({"hospital_name": [*names, None, "其他医院", names[0], names[-1]]},
                          schema={"hospital_name": pl.String})
    got = claims.select(_position_of(pl.col("hospital_name"), names)).to_series()
    want = claims["hospital_name"].replace_strict(names, pl.int_range(0, listed, dtype=pl.UInt32, eager=True),
                                                  default=None, return_dtype=pl.UInt32)
    assert got.dtype == pl.UInt32 and got.to_list() == want.to_list() == [*range(listed), None, None, 0, listed - 1]


@given(st.lists(st.tuples(st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2030, 12, 31))),
                          st.one_of(st.none(), st.dates(dt.date(2000, 1, 1), dt.date(2030, 12, 31)))), max_size=20),
       st.booleans())
def test_age_without_any_birth_date_is_the_age_formula(rows, no_birth_dates) -> None:
    """A frame whose claims give no birth date takes a null age at once: the formula's own value on such rows;
    with a birth date anywhere the formula is used."""
    from medins.engine.prepare import _age, _age_from_birth

    if no_birth_dates:
        rows = [(None, service) for _birth, service in rows]
    frame = pl.DataFrame(rows, schema={"birth_date": pl.Date, "service_date": pl.Date}, orient="row")
    got = frame.with_columns(a=_age_from_birth(frame))["a"]  # as the stage adds it (a literal fills every row)
    want = frame.with_columns(a=_age(pl.col("birth_date"), pl.col("service_date")))["a"]
    assert got.dtype == want.dtype == pl.Int64 and got.to_list() == want.to_list()


def _plain_person_day(claims: pl.DataFrame) -> tuple[list[int], list[int]]:
    """Positions sorted by (person hash, day, position) and each one's person number, by the plain stable sort."""
    plain = claims.with_row_index("_p").with_columns(_h=pl.col("person_id").hash(seed=20071)).sort("_h", "day", "_p")
    return plain["_p"].to_list(), (plain["_h"].rank("dense") - 1).cast(pl.Int64).to_list()


@settings(max_examples=12, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([2, 30, 3000]), st.sampled_from([1, 3, 400]),
       st.integers(NUMPY_ROWS, NUMPY_ROWS * 3))
def test_person_day_row_key_sort_is_the_stable_sort(seed, persons, days, n) -> None:
    """A large frame's (person bits, day, position) keys sorted give the persons in hash order, each one's claims by
    day then position (ties of one person and day in input order), and number the persons 0, 1, …"""
    rnd = random.Random(seed)
    people = [f"P{rnd.randrange(persons)}" for _ in range(n)]
    claims = pl.DataFrame({"person_id": [None if persons == 2 and rnd.random() < 0.3 else p for p in people],
                           "day": [rnd.randrange(days) for _ in range(n)]}, schema={"person_id": pl.String,
                                                                                       "day": pl.Int64})
    found = _by_person_day_row(claims, pl.col("person_id").hash(seed=20071), pl.col("day"), days.bit_length())
    assert found is not None
    order, numbered = found
    assert order.dtype == pl.get_index_type() and numbered.dtype == pl.Int64
    assert (order.to_list(), numbered.to_list()) == _plain_person_day(claims)


def test_person_day_row_key_sort_gives_up_when_persons_share_the_hash_bits() -> None:
    """Persons whose hash bits collide are seen (None), and ``_by_person_day`` then sorts as before."""
    n = NUMPY_ROWS + 5
    claims = pl.DataFrame({"person_id": [f"P{i % 3}" for i in range(n)], "day": [i % 7 for i in range(n)]})
    assert _by_person_day_row(claims, pl.lit(0, pl.UInt64), pl.col("day"), 3) is None
    assert _by_person_day(claims, pl.lit(0, pl.UInt64), pl.col("day"), 8) is None
    one = claims.with_columns(person_id=pl.lit("P1"))
    found = _by_person_day_row(one, pl.lit(0, pl.UInt64), pl.col("day"), 3)
    assert found is not None and found[1].max() == 0
    assert found[0].to_list() == sorted(range(n), key=lambda i: (i % 7, i))


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from([1, 50, NUMPY_ROWS * 2]))
def test_frame_order_of_the_grouping_is_the_same_whatever_the_size(seed, persons) -> None:
    """``_in_frame_order``: the persons and each claim's place in claim order, in frame order, by NumPy (a large frame)
    as by the grouping's own scatter and gather (a small one)."""
    rnd = random.Random(seed)
    n = NUMPY_ROWS * 2
    order = list(range(n))
    rnd.shuffle(order)
    numbers = sorted(rnd.randrange(persons) for _ in range(n))
    order_s = pl.Series(order, dtype=pl.get_index_type())
    grouping, sequence = _in_frame_order(order_s, pl.Series(numbers, dtype=pl.Int64))
    want_person = [0] * n
    want_place = [0] * n
    for place, (position, number) in enumerate(zip(order, numbers, strict=True)):
        want_person[position], want_place[position] = number, place
    assert grouping[0].to_list() == order and grouping[1].to_list() == want_person
    assert sequence.dtype == pl.Int64 and sequence.to_list() == want_place
    small = _in_frame_order(order_s.head(0), pl.Series([], dtype=pl.Int64))
    assert small[1].len() == 0


@settings(max_examples=50)
@given(st.lists(st.integers(0, 2**30), min_size=1, max_size=FEW_VALUES, unique=True), st.integers(0, 2**32 - 1),
       st.sampled_from([12, 20, 30]))
def test_positions_of_values_alike_in_their_low_bits(high, seed, shift) -> None:
    """Values whose low bits are all the same (multiples of a power of two: no mask of the low bits tells them
    apart, the remainders do) and the same values plus small ones: positions as the hashed look-up gives them."""
    rnd = random.Random(seed)
    for distinct in ([v << shift for v in high], [v << shift for v in high] + [1, 2, 3]):
        distinct = list(dict.fromkeys(distinct))
        table = pl.Series("d", distinct, dtype=pl.Int64)
        rows = pl.Series("v", [rnd.choice(distinct) for _ in range(50)], dtype=pl.Int64)
        assert codes.positions(rows, table).to_list() == [distinct.index(v) for v in rows.to_list()]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62)), min_size=0, max_size=20),
       st.integers(-(2**40), 2**40), st.sampled_from([pl.Int64, pl.Int32, pl.Int128]))
def test_at_least_zero_is_clip_at_zero(values, shift, dtype) -> None:
    """``fused.at_least_zero`` (the engine's clip at 0) gives ``clip(lower_bound=0)``'s values, nulls, type and name, on a
    column and on an expression of columns."""
    from medins.engine.fused import at_least_zero

    if dtype == pl.Int32:
        values = [None if v is None else v % (2**31) - 2**30 for v in values]
        shift %= 2**20
    frame = pl.DataFrame({"a": values, "b": [shift] * len(values)}, schema={"a": dtype, "b": dtype})
    for value in (pl.col("a"), pl.col("a") - pl.col("b"), pl.col("a").fill_null(0)):
        expected = frame.select(value.clip(lower_bound=0))
        got = frame.select(at_least_zero(value))
        assert got.schema == expected.schema
        assert got.to_series().to_list() == expected.to_series().to_list()
        assert frame.lazy().select(at_least_zero(value)).collect().equals(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**61), 2**61), st.sampled_from([-(2**61), 2**61, -1, 0, 1])),
                min_size=0, max_size=20),
       st.sampled_from([0, 2**70, -(2**70)]))
def test_direct_pay_in_int64_equals_the_int128_form(values, beyond) -> None:
    """``scope._direct_pay`` (Int64 where every fen × ppm sum is within ±2^61, else Int128; 0 where no line set it) gives
    the Int128 form's half-up quotient, nulls and type on every row."""
    from medins.engine.scope import _direct_pay

    if beyond:
        values = [*values, beyond]  # out of the Int64 form's range: the Int128 form itself
    frame = pl.DataFrame({"_dnum": values}, schema={"_dnum": pl.Int128})
    expected = frame.select(((pl.col("_dnum") * 2 + 1_000_000) // 2_000_000).cast(pl.Int64).alias("direct_pay"))
    got = frame.select(_direct_pay(frame["_dnum"]).alias("direct_pay"))
    assert got.schema == expected.schema and got.to_series().to_list() == expected.to_series().to_list()
    zero = pl.DataFrame({"_dnum": [0] * len(values)}, schema={"_dnum": pl.Int128})  # as every claim starts
    expected = zero.select(((pl.col("_dnum") * 2 + 1_000_000) // 2_000_000).cast(pl.Int64).alias("d"))
    assert zero.with_columns(d=_direct_pay(None)).select("d").equals(expected)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**62), 2**62), st.integers(0, 2**20)), min_size=1, max_size=12),
       st.one_of(st.none(), st.integers(-(2**61), 2**61)))
def test_running_total_fits_as_summed_in_int128(values, history) -> None:
    """``state._running_total_fits`` (an Int64 sum where it is exact) says what the sum of |x| in Int128 says."""
    from medins.engine.state import UNLIMITED, _running_total_fits

    frame = pl.DataFrame({"x": values, "h": [history] * len(values)}, schema={"x": pl.Int64, "h": pl.Int64})
    top = max(history or 0, 0)
    expected = top + sum(abs(v) for v in values if v is not None) < UNLIMITED
    assert _running_total_fits(frame, "x", "h") == expected
