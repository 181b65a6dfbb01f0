"""The admission ordinal: which admission of the benefit year a claim is (第几次住院).

Why a module of its own: the ordinal is a fact a page or an export may state, or one the engine counts
from the person's claims; both must agree with ``admissions`` (the count before the claim), which the
deductible, the bands and the policy's expressions read. Computed once, right after that count.
"""

from __future__ import annotations

import polars as pl

from medins.engine.context import Run
from medins.engine.state import Grouping


def admission_ordinals(run: Run, grouping: Grouping) -> None:
    """``admission_no`` (1 = the first admission of the benefit year) and ``admissions`` (those before it).

    Why: pages state "the 2nd admission this year"; exports often carry 住院次数. Without a stated ordinal
    it is counted: ``history.admissions`` + the person's earlier admissions in the same claims + 1. A stated
    ordinal wins (a bill may state only the ordinal), later admissions count on from it, and ``admissions``
    follows it. A stated ordinal that differs from the person's sequence (the previous admission's ordinal
    + 1, or ``history.admissions`` + 1 for the first one when a history is given) is listed on the row as
    ``admission_no_differs:given=N,counted=M`` in ``unchecked``: the claim is settled with the stated value.

    ``grouping``: the (person, benefit year, rule bucket) grouping the ``admissions`` count was made in.
    """
    f = run.frame
    if run.trace:  # trace: whether the ordinal was stated (it is replaced by the effective one below)
        given = pl.col("admission_no") if "admission_no" in f.columns else pl.lit(None, pl.Int64)
        f = f.with_columns(_tr_admission_no_given=given.is_not_null())
    counted = pl.col("admissions") + 1
    adm = pl.col("_ok") & pl.col("_admission")
    if "admission_no" not in f.columns or f["admission_no"].null_count() == f.height:
        run.frame = f.with_columns(admission_no=pl.when(adm).then(counted))
        return
    order, key = grouping
    work = f.select("_i", "admission_no", "hist_admissions", _a=adm.fill_null(False), _c=counted).with_columns(
        _key=key)
    if order is not None:
        work = work[order]
    seg = pl.col("_key").ne_missing(pl.col("_key").shift(1)).fill_null(True).cast(pl.Int64).cum_sum()
    rows = work.with_columns(_seg=seg).filter(pl.col("_a"))
    rows = rows.with_columns(_n=pl.int_range(1, pl.len() + 1).over("_seg"))  # the n-th admission in the claims
    given = pl.col("admission_no")
    anchor_n = pl.when(given.is_not_null()).then(pl.col("_n")).forward_fill().over("_seg")
    anchor_v = pl.when(given.is_not_null()).then(given).forward_fill().over("_seg")
    rows = rows.with_columns(_eff=pl.when(anchor_n.is_null()).then(pl.col("_c"))
                             .otherwise(anchor_v + pl.col("_n") - anchor_n))
    first = pl.col("_n") == 1
    expected = pl.when(first).then(pl.when(pl.col("hist_admissions") > 0).then(pl.col("hist_admissions") + 1)) \
        .otherwise(pl.col("_eff").shift(1).over("_seg") + 1)
    rows = rows.with_columns(_exp=expected)
    differs = rows.filter(given.is_not_null() & pl.col("_exp").is_not_null() & (given != pl.col("_exp")))
    effective = rows.select("_i", "_eff")
    f = f.join(effective, on="_i", how="left", maintain_order="left")
    run.frame = f.with_columns(admission_no=pl.coalesce("_eff", "admission_no"),
                               admissions=pl.when(pl.col("_eff").is_not_null()).then(pl.col("_eff") - 1)
                               .otherwise(pl.col("admissions"))).drop("_eff")
    if differs.height:
        note = pl.lit("admission_no_differs:given=") + given.cast(pl.String) + pl.lit(",counted=") \
            + pl.col("_exp").cast(pl.String)
        notes = differs.select("_i", _note=note)
        run.frame = run.frame.join(notes, on="_i", how="left", maintain_order="left").with_columns(
            _unchecked=pl.when(pl.col("_note").is_null()).then(pl.col("_unchecked"))
            .otherwise(pl.concat_str("_unchecked", "_note", separator=";", ignore_nulls=True))).drop("_note")
