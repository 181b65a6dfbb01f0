"""Derived facts every stage reads: service date, benefit year, age, stay, version, category, hospital.

Why: rules are written about "the age on the service date" or "the version in force", not about
raw columns; computing these once, as columns, keeps every later expression short and makes a
missing fact visible as a null rather than a guess.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from medins.engine.codes import replace_columns
from medins.engine.context import ASSUMED, Lazy, Run

#: Facts the engine fills in when a claim leaves them out (DESIGN.md §3), each listed as ``assumed``.
ASSUMED_DEFAULTS = (("visit_type", "inpatient"), ("cause", "illness"))


def add_derived(run: Run) -> None:
    """Add ``service_date``, ``year``, ``age``, ``stay_days``, ``_v`` (version) and hospital facts.

    Every default taken for an absent fact is recorded in ``_assumed`` (``visit_type=inpatient``,
    ``discharge_date=admit_date`` …) so the settlement says what it supposed, never silently.
    One query (``Run.lazy``), the assumptions as bits (``engine/codes.py``).
    """
    policy = run.policy
    q = run.lazy()
    for name, value in ASSUMED_DEFAULTS:
        q.code(ASSUMED, f"{name}={value}", pl.col(name).is_null())
        q.with_columns(pl.col(name).fill_null(pl.lit(value)))
    # A visit without a discharge date is a one-day visit; for a stay that is a supposition worth saying.
    q.code(ASSUMED, "discharge_date=admit_date", pl.col("discharge_date").is_null() & (pl.col("visit_type") == "inpatient"))
    q.with_columns(
        discharge_date=pl.coalesce("discharge_date", "admit_date"),
        service_date=pl.col("admit_date"),
    )
    q.with_columns(
        stay_days=pl.max_horizontal((pl.col("discharge_date") - pl.col("admit_date")).dt.total_days(), pl.lit(1)),
        _age_born=_age_from_birth(run.frame),
        year=_benefit_year(pl.col("service_date"), policy.benefit_year_start),
    )
    if "age" not in q.schema:
        q.with_columns(age=pl.lit(None, pl.Int64))
    # ``age`` = whole years on the service date, from the birth date, else the claim's stated ``age``. Why both:
    # a published example states "a 40-year-old", an export states a birth date. A claim giving both that
    # disagree on the service date is rejected ``age_mismatch`` (one of them is wrong).
    q.with_columns(_mismatch=(pl.col("_age_born") != pl.col("age")).fill_null(False),
                   age=pl.coalesce("_age_born", "age"))
    if run.trace:  # trace: the age from the birth date
        q.with_columns(_tr_age_born=pl.col("_age_born"))
    q.drop("_age_born")
    _fill_hospitals(q)
    _assign_versions(q)
    q.with_columns(_nov=pl.col("_v").is_null(), _v=pl.col("_v").fill_null(0))
    run = q.collect()
    flagged = run.frame.lazy().filter(pl.col("_mismatch") | pl.col("_h_conflict") | pl.col("_nov")).select(
        "_i", "_mismatch", "_h_conflict", "_nov").collect(engine="in-memory")
    for i, *holds in flagged.iter_rows():
        found = run.problems.setdefault(i, [])
        found += [code for code, h in zip(("age_mismatch", "hospital_mismatch", "policy_not_in_force"), holds,
                                           strict=True) if h]
    run.frame = replace_columns(run.frame, ["_mismatch", "_h_conflict", "_nov"])


def _age_from_birth(frame: pl.DataFrame) -> pl.Expr:
    """The age from the birth date on the service date: null throughout when no claim gives a birth date.

    Why that case apart: the age reads the year, month and day of two dates (a calendar conversion a row each,
    ~12 ms per 250k claims), and its value is null on every row without a birth date anyway; files of claims
    often give an age (or nothing) instead. A column's null count is known without a pass.
    """
    if "birth_date" in frame.columns and frame["birth_date"].null_count() == frame.height:
        return pl.lit(None, pl.Int64)
    return _age(pl.col("birth_date"), pl.col("service_date"))


def _age(birth: pl.Expr, on: pl.Expr) -> pl.Expr:
    """Completed years (周岁); a 29 Feb birthday is reached on 1 Mar in common years (§0.3)."""
    before_birthday = (on.dt.month() < birth.dt.month()) | (
        (on.dt.month() == birth.dt.month()) & (on.dt.day() < birth.dt.day())
    )
    return (on.dt.year() - birth.dt.year() - before_birthday.cast(pl.Int32)).cast(pl.Int64)


def _benefit_year(d: pl.Expr, start: str | None) -> pl.Expr:
    """Benefit-year key: the calendar year when the year starts 1 Jan; else the year it started in."""
    if start is None:
        return pl.lit(None, pl.Int64)
    month, day = (int(x) for x in start.split("-"))
    if (month, day) == (1, 1):
        return d.dt.year().cast(pl.Int64)
    before = (d.dt.month() < month) | ((d.dt.month() == month) & (d.dt.day() < day))
    return (d.dt.year() - before.cast(pl.Int32)).cast(pl.Int64)


def _fill_hospitals(q: Lazy) -> None:
    """Fill zone/level/kind of hospitals the policy names; a contradicting bill is rejected (``_h_conflict``)."""
    listed = q.run.policy.model.admission.hospitals
    if not listed:
        q.with_columns(_listed=pl.lit(None, pl.Boolean), _h_conflict=pl.lit(False))
        return
    table = pl.DataFrame(
        {
            "hospital_name": [h.name for h in listed],
            "_h_zone": [h.zone for h in listed],
            "_h_level": [h.level for h in listed],
            "_h_kind": [h.kind for h in listed],
        },
        schema={"hospital_name": pl.String, "_h_zone": pl.String, "_h_level": pl.Int64, "_h_kind": pl.String},
    )
    names = table["hospital_name"]
    if names.n_unique() == names.len():
        # A lookup by name instead of a join: the claims frame is neither hashed nor rebuilt.
        place = _position_of(pl.col("hospital_name"), names)
        q.with_columns(_h_at=place).with_columns(
            pl.lit(table[c]).gather(pl.col("_h_at")).alias(c) for c in ("_h_zone", "_h_level", "_h_kind")).drop("_h_at")
    else:
        q.query = q.query.join(table.lazy(), on="hospital_name", how="left", maintain_order="left")
        q.with_columns()
    conflict = (
        (pl.col("_h_zone").is_not_null() & pl.col("hospital_zone").is_not_null()
         & (pl.col("_h_zone") != pl.col("hospital_zone")))
        | (pl.col("_h_level").is_not_null() & pl.col("hospital_level").is_not_null()
           & (pl.col("_h_level") != pl.col("hospital_level")))
    )
    for fact in ("zone", "level", "kind"):  # filled from the hospital's name: said, not silent
        given, found = pl.col(f"hospital_{fact}"), pl.col(f"_h_{fact}")
        q.code(ASSUMED, found, given.is_null() & found.is_not_null(), prefix=f"hospital_{fact}=")
    q.with_columns(
        _listed=pl.when(pl.col("hospital_name").is_null()).then(None).otherwise(pl.col("_h_zone").is_not_null()
                                                                               | pl.col("_h_level").is_not_null()
                                                                               | pl.col("_h_kind").is_not_null()),
        _h_conflict=conflict.fill_null(False),
        hospital_zone=pl.coalesce("_h_zone", "hospital_zone"),
        hospital_level=pl.coalesce("_h_level", "hospital_level"),
        hospital_kind=pl.coalesce("_h_kind", "hospital_kind"),
    ).drop("_h_zone", "_h_level", "_h_kind")


#: Up to this many listed hospitals a claim's is found by comparing its name with each (a pass a name); beyond, by
#: ``replace_strict``'s hashed look-up. Why: that look-up cost 9 ms on 250k claims whatever the list's length,
#: the comparisons 3 ms for five names and as much as the look-up at about fifteen.
COMPARED_NAMES = 12


def _position_of(name: pl.Expr, names: pl.Series) -> pl.Expr:
    """The place of ``name`` in the distinct ``names`` (UInt32), null when it is missing or not listed."""
    if names.len() > COMPARED_NAMES:
        return name.replace_strict(names, pl.int_range(0, names.len(), dtype=pl.UInt32, eager=True), default=None,
                                   return_dtype=pl.UInt32)
    found = pl.lit(None, pl.UInt32)
    for place in reversed(range(names.len())):
        found = pl.when(name == names[place]).then(pl.lit(place, pl.UInt32)).otherwise(found)
    return found


def _assign_versions(q: Lazy) -> None:
    """``_v`` = index of the version in force on the service date; null when none (or a date is missing)."""
    run = q.run
    versions = run.policy.versions
    missing_dates = sorted({d for v in versions for d in (v.valid_from, v.valid_to) if isinstance(d, str)})
    if missing_dates:
        q.with_columns(_v=pl.lit(0, pl.Int64))
        for i in run.frame["_i"].to_list():
            run.problems.setdefault(i, []).extend(f"missing_parameter:{d}" for d in missing_dates)
        return
    expr: pl.Expr = pl.lit(None, pl.Int64)
    d = pl.col("service_date")
    for idx in range(len(versions) - 1, -1, -1):
        v = versions[idx]
        cond = pl.lit(True)
        if isinstance(v.valid_from, date):
            cond = cond & (d >= v.valid_from)
        if isinstance(v.valid_to, date):
            cond = cond & (d <= v.valid_to)
        expr = pl.when(cond).then(pl.lit(idx, pl.Int64)).otherwise(expr)
    q.with_columns(_v=expr)
