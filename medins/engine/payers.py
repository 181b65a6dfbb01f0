"""Stage 5b — the payer chain after the basic fund: 大额 / 大病 / 医疗救助 / 倾斜救助 / supplements.

Why a module of its own: each payer is a full benefit definition (``schema.Layer``) with its own
eligibility, base, deductible, ceiling, bands and cap, and its own year-to-date state per person,
benefit year and payer id, flowing through ``batch`` exactly like the basic fund's. Which money enters
a payer is the policy's ``base`` expression over the named amounts below, never a formula fixed
here (docs/payers.md).

Order: payers are settled one payer id at a time, in an order consistent with every rule's list
(:func:`payer_order`), so a payer with the same id in several rules keeps one state and every
earlier payer of a claim's chain has paid before the next one reads ``paid``.

Exactness: each payer's band parts (fen) × rates (ppm) are summed exactly and rounded half up to
the fen once; its base is clipped to what is left of the claim's total, so no payer pays more than
its base, none pays a negative amount, and fund + patient == total.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from medins.engine.benefits import PERSON_YEAR, _grouping, _half_up, _mask, _pick, band_parts
from medins.engine.context import Run
from medins.engine.fused import repeat
from medins.engine.state import clamped_cumsum
from medins.policy.plan import PAYER_FIELDS, payer_order

if TYPE_CHECKING:  # annotations only: the engine runs on a plain model too (medins.policy.plan)
    from medins.policy.schema import Layer, Policy

#: Named amounts a payer's ``base`` reads (yuan in expressions), besides ``total``, ``inscope`` and ``eligible``;
#: their names are ``PAYER_NAMES`` of medins/policy/compiled.py (the loader accepts them in payer expressions).
PAYER_AMOUNTS: dict[str, tuple[str, str]] = {
    "out_of_catalogue": ("全自费(目录外)", "out-of-catalogue money (fulamt_ownpay_amt)"),
    "over_limit": ("超限价自付", "over-limit self-pay (overlmt_selfpay)"),
    "self_pay_first": ("先行自付", "self-pay-first share (preselfpay_amt)"),
    "basic_deductible": ("基本医保起付线", "the basic fund's deductible on this claim (act_pay_dedc)"),
    "basic_paid": ("基本统筹支付", "the basic fund's payment on this claim (hifp_pay)"),
    "basic_cap_cut": ("基本封顶截去额", "what the basic fund's cap cut from its payment on this claim"),
    "above_ceiling": ("超基本费用上限", "in-scope expense above the basic ceiling (inscope − eligible)"),
    "paid": ("前序已付", "sum of the earlier payers' payments on this claim, the basic fund included"),
}


def settle_payers(run: Run) -> None:
    """Add the payer fields (fen) and, per payer id P, the trace columns ``_pay_P``, ``_pbase_P`` …"""
    model = run.policy.model
    f = run.frame
    paid_hifp = pl.col("paid_hifp_pay")
    f = f.with_columns(
        out_of_catalogue=pl.col("fulamt"), over_limit=pl.col("overlmt"), self_pay_first=pl.col("presp"),
        basic_deductible=pl.col("ded"), basic_paid=pl.col("hifp_pay"),
        basic_cap_cut=pl.when(paid_hifp.is_null()).then((pl.col("_raw_total") - pl.col("hifp_pay")).clip(lower_bound=0))
        .otherwise(0),
        above_ceiling=(pl.col("inscope") - pl.col("eligible")).clip(lower_bound=0),
        paid=pl.col("hifp_pay"),
        **{name: pl.lit(0, pl.Int64) for name in PAYER_FIELDS},
    )
    run.frame = f
    for n, pid in enumerate(payer_order(model)):
        _settle_one(run, n, pid)


def _layers_of(model: Policy, pid: str) -> dict[int, tuple[int, Layer]]:
    """Rule index → (position, layer) of payer ``pid``."""
    return {idx: (j, layer) for idx, rule in enumerate(model.rules)
            for j, layer in enumerate(rule.layers) if layer.id == pid}


def _by_rule(layers: dict[int, tuple[int, Layer]], value, dtype: pl.DataType) -> pl.Expr:
    """A when/then chain over rules: ``value(layer)`` (a Python scalar or None) on that rule's rows."""
    expr: pl.Expr = pl.lit(None, dtype)
    for idx, (_j, layer) in layers.items():
        v = value(layer)
        if v is not None:
            expr = pl.when(pl.col("_rule") == idx).then(pl.lit(v, dtype)).otherwise(expr)
    return expr


def _settle_one(run: Run, n: int, pid: str) -> None:
    model = run.policy.model
    layers = _layers_of(model, pid)
    field_of = _by_rule(layers, lambda lay: lay.field, pl.String)
    # Which rows this payer settles: its rule, admissible, `when` true (unknown → it does not pay).
    applies = repeat(False, run.frame.height, pl.Boolean)
    given_first = pl.lit(False)
    blocked = pl.lit(False)
    for idx, (j, layer) in layers.items():
        mask = _mask(run, idx)
        hit = mask if layer.when is None else (mask & run.ev(layer.when, "bool", mask=mask).fill_null(False))
        applies = applies | hit.fill_null(False)
        first_of_field = all(other.field != layer.field for other in model.rules[idx].layers[:j])
        given = pl.col(f"paid_{layer.field}").is_not_null() & (pl.col("_rule") == idx)
        if first_of_field:
            given_first = given_first | given
        else:
            blocked = blocked | given  # a later tier of a field given as paid: the given amount covers it
    f = run.frame.with_columns(_papp=applies, _pfield=field_of)
    f = f.with_columns(_pgiven=pl.col("_papp") & given_first,
                       _pcomp=pl.col("_papp") & ~given_first & ~blocked)
    run.frame = f
    comp = run.frame["_pcomp"]

    def per_rule(text_of, returns: str = "money") -> pl.Series:
        series = {idx: run.ev(t, returns, mask=_mask(run, idx) & comp, required=True)
                  for idx, (_j, layer) in layers.items() if (t := text_of(layer)) is not None}
        return _pick(run, series, pl.Int64)

    base = per_rule(lambda lay: lay.base)
    std = per_rule(lambda lay: lay.deductible.standard if lay.deductible else None)
    ceil = per_rule(lambda lay: lay.ceiling.amount if lay.ceiling else None)
    cap = per_rule(lambda lay: lay.cap.amount if lay.cap else None)
    f = run.frame.with_columns(
        _p_left=(pl.col("total") - pl.col("paid")).clip(lower_bound=0),
        _p_std=std, _p_ceil=ceil, _p_camt=cap,
        _p_dper=_by_rule(layers, lambda lay: lay.deductible.per if lay.deductible else None, pl.String),
        _p_cper=_by_rule(layers, lambda lay: lay.ceiling.per if lay.ceiling else None, pl.String),
        _p_cmeas=_by_rule(layers, lambda lay: lay.ceiling.measure if lay.ceiling else None, pl.String),
        _p_kper=_by_rule(layers, lambda lay: lay.cap.per if lay.cap else None, pl.String),
        _p_axis=_by_rule(layers, lambda lay: lay.bands.axis, pl.String),
    ).with_columns(_p_b=pl.when(pl.col("_pcomp")).then(pl.lit(base).fill_null(0).clip(lower_bound=0)).otherwise(0))
    f = f.with_columns(_p_b=pl.min_horizontal("_p_b", "_p_left"))
    run.frame = f
    hist = _history(model, layers)
    group = [*PERSON_YEAR, "_pall"]
    run.frame = run.frame.with_columns(_pall=pl.lit("payers"))
    grouping = _grouping(run, "_pall")

    def cumsum(x: str, limit: str | None, h0: str | None, before: str, after: str) -> None:
        run.frame = clamped_cumsum(run.frame, x=x, limit=limit, h0=h0, group=group, out_before=before,
                                   out_after=after, grouping=grouping)

    run.frame = run.frame.with_columns(_p_h_base=hist["base"], _p_h_ded=hist["deductible_paid"], _p_h_paid=hist["paid"],
                                       _p_h_above=(hist["base"] - hist["deductible_paid"]).clip(lower_bound=0))
    above_first = pl.col("_p_cmeas") == "above_deductible"
    # 1. Ceiling measured on the expense (before the deductible).
    _ceiling(run, cumsum, x="_p_b", where=~above_first.fill_null(False), h0="_p_h_base", out="_p_b1")
    # 2. Deductible on what the ceiling let through.
    _payer_deductible(run, cumsum, x="_p_b1")
    # 3. Ceiling measured above the deductible.
    run.frame = run.frame.with_columns(_p_ab=(pl.col("_p_b1") - pl.col("_p_d")).clip(lower_bound=0))
    _ceiling(run, cumsum, x="_p_ab", where=above_first.fill_null(False), h0="_p_h_above", out="_p_ab1")
    run.frame = run.frame.with_columns(_p_b2=pl.col("_p_d") + pl.col("_p_ab1"))
    # 4. Bands on the payer's axis.
    cumsum("_p_b2", None, "_p_h_base", "_p_pc0", "_p_pc1")
    axis = pl.col("_p_axis")
    lower = (pl.when(axis == "cumulative").then(pl.col("_p_pc0") + pl.col("_p_d"))
             .when(axis == "above_deductible").then(0).otherwise(pl.col("_p_d")))
    upper = (pl.when(axis == "cumulative").then(pl.col("_p_pc0") + pl.col("_p_b2"))
             .when(axis == "above_deductible").then(pl.col("_p_b2") - pl.col("_p_d")).otherwise(pl.col("_p_b2")))
    prefix = f"_q{n}"
    band_parts(run, lambda r: next((lay.bands for lay in r.layers if lay.id == pid), None), prefix,
               pl.when(pl.col("_pcomp")).then(lower).otherwise(0), pl.when(pl.col("_pcomp")).then(upper).otherwise(0),
               only="_pcomp")
    run.frame = run.frame.with_columns(
        _p_raw=pl.when(pl.col("_pcomp")).then(_half_up(pl.col(f"{prefix}num"), pl.lit(1_000_000, pl.Int128))).otherwise(0))
    # 5. Cap: per claim or per year, alone or together with earlier payers (shared_with).
    _payer_cap(run, cumsum, layers)
    pay = pl.col("_p_pay")
    run.frame = run.frame.with_columns(
        paid=pl.col("paid") + pay,
        **{name: pl.when(pl.col("_pfield") == name).then(pl.col(name) + pay).otherwise(pl.col(name))
           for name in PAYER_FIELDS},
    ).rename({"_p_pay": f"_pay_{pid}", "_p_b": f"_pbase_{pid}", "_p_d": f"_pded_{pid}", "_p_raw": f"_praw_{pid}",
              "_pgiven": f"_pgiven_{pid}", "_p_std": f"_pstd_{pid}", "_papp": f"_papp_{pid}"})
    run.frame = run.frame.with_columns(
        (pl.col(f"_pbase_{pid}") - pl.col("_p_b2")).alias(f"_pceil_{pid}"))
    # trace: the payer's axis start, ceiling, cap and their state before the claim, as ``_tr_<pid>_<name>``
    kept = {c: f"_tr_{pid}_{c.removeprefix('_p_tr').removeprefix('_p_')}" for c in (
        "_p_pc0", "_p_ceil", "_p_cper", "_p_camt", "_p_kper", "_p_tr_p_b10", "_p_tr_p_ab10", "_p_trd0", "_p_trs1",
        "_p_trsh", "_p_trk0")}
    run.frame = run.drop(run.frame, kept, "_pfield", "_pcomp", *(c for c in run.frame.columns if c.startswith("_p_")))


def _history(model: Policy, layers: dict[int, tuple[int, Layer]]) -> dict[str, pl.Expr]:
    """The payer's state before the first claim, from the bill's ``history.payers.<field>`` (its first payer)."""
    out: dict[str, pl.Expr] = {}
    for what in ("paid", "deductible_paid", "base"):
        expr: pl.Expr = pl.lit(0, pl.Int64)
        for idx, (j, layer) in layers.items():
            first = all(other.field != layer.field for other in model.rules[idx].layers[:j])
            if not first:
                continue
            value = pl.col(f"hist_{layer.field}_{what}").fill_null(0)
            if what == "paid" and layer.field == "hifob_pay":
                value = value + pl.col("hist_layer2_paid").fill_null(0)  # the older name of 大额 paid
            expr = pl.when(pl.col("_rule") == idx).then(value).otherwise(expr)
        out[what] = expr
    return out


def _ceiling(run: Run, cumsum, *, x: str, where: pl.Expr, h0: str, out: str) -> None:
    """``out`` = ``x`` limited by the payer's ceiling where ``where`` holds (per claim, or per year)."""
    has = pl.col("_p_ceil").is_not_null() & where
    yearly = has & (pl.col("_p_cper") == "year")
    run.frame = run.frame.with_columns(_p_cx=pl.when(yearly).then(pl.col(x)).otherwise(0),
                                       _p_cl=pl.when(yearly).then(pl.col("_p_ceil")).otherwise(None))
    cumsum("_p_cx", "_p_cl", h0, "_p_cy0", "_p_cy1")
    run.frame = run.frame.with_columns(
        pl.when(yearly).then(pl.col("_p_cy1") - pl.col("_p_cy0"))
        .when(has).then(pl.min_horizontal(pl.col(x), pl.col("_p_ceil")))
        .otherwise(pl.col(x)).alias(out))
    run.frame = run.drop(run.frame, {"_p_cy0": f"_p_tr{out}0"}, "_p_cx", "_p_cl", "_p_cy0", "_p_cy1")  # trace: used before


def _payer_deductible(run: Run, cumsum, *, x: str) -> None:
    """``_d``: the payer's own deductible on ``x`` — on each claim, or once a year (its own counter)."""
    has = pl.col("_p_std").is_not_null() & pl.col("_pcomp")
    yearly = has & (pl.col("_p_dper") == "year")
    run.frame = run.frame.with_columns(_p_dx=pl.when(yearly).then(pl.col(x)).otherwise(0),
                                       _p_dl=pl.when(yearly).then(pl.col("_p_std")).otherwise(None))
    cumsum("_p_dx", "_p_dl", "_p_h_ded", "_p_dy0", "_p_dy1")
    run.frame = run.frame.with_columns(
        pl.when(yearly).then(pl.col("_p_dy1") - pl.col("_p_dy0"))
        .when(has).then(pl.min_horizontal(pl.col(x), pl.col("_p_std")))
        .otherwise(0).alias("_p_d"))
    run.frame = run.drop(run.frame, {"_p_dy0": "_p_trd0"}, "_p_dx", "_p_dl", "_p_dy0", "_p_dy1")  # trace: paid before


def _shared(model: Policy, layers: dict[int, tuple[int, Layer]]) -> tuple[pl.Expr, pl.Expr]:
    """This claim's payments of the payers a cap is shared with, and their history before the bill."""
    now: pl.Expr = pl.lit(0, pl.Int64)
    before: pl.Expr = pl.lit(0, pl.Int64)
    for idx, (_j, layer) in layers.items():
        if layer.cap is None or not layer.cap.shared_with:
            continue
        paid_now: pl.Expr = pl.lit(0, pl.Int64)
        hist: pl.Expr = pl.lit(0, pl.Int64)
        for other in layer.cap.shared_with:
            if other == "basic":
                paid_now, hist = paid_now + pl.col("hifp_pay"), hist + pl.col("hist_fund_paid").fill_null(0)
            else:
                field = next(lay.field for lay in model.rules[idx].layers if lay.id == other)
                paid_now = paid_now + pl.col(f"_pay_{other}")
                hist = hist + pl.col(f"hist_{field}_paid").fill_null(0)
        now = pl.when(pl.col("_rule") == idx).then(paid_now).otherwise(now)
        before = pl.when(pl.col("_rule") == idx).then(hist).otherwise(before)
    return now, before


def _payer_cap(run: Run, cumsum, layers: dict[int, tuple[int, Layer]]) -> None:
    """``_pay``: the payment after the cap; a payment given as already paid counts in the payer's state as is."""
    shared_now, shared_hist = _shared(run.policy.model, layers)
    has = pl.col("_p_camt").is_not_null() & pl.col("_pcomp")
    yearly = has & (pl.col("_p_kper") == "year")
    given = pl.col("_pgiven")
    given_amount = pl.min_horizontal(pl.col("_pgiven_amount"), pl.col("_p_left"))
    run.frame = run.frame.with_columns(
        _pgiven_amount=pl.coalesce(*[pl.when(pl.col("_pfield") == name).then(pl.col(f"paid_{name}"))
                                     for name in PAYER_FIELDS if f"paid_{name}" in run.frame.columns], pl.lit(0, pl.Int64)),
        _p_sh=pl.when(pl.col("_rule").is_not_null()).then(shared_now).otherwise(0).fill_null(0),
        _p_shh=shared_hist.fill_null(0),
    )
    cumsum("_p_sh", None, "_p_shh", "_p_s0", "_p_s1")
    run.frame = run.frame.with_columns(
        _p_kx=pl.when(given).then(given_amount).when(yearly).then(pl.col("_p_raw")).otherwise(0),
        _p_kl=pl.when(yearly).then(pl.col("_p_camt") - pl.col("_p_s1")).otherwise(None),
    )
    cumsum("_p_kx", "_p_kl", "_p_h_paid", "_p_k0", "_p_k1")
    run.frame = run.frame.with_columns(
        _p_pay=pl.when(given).then(given_amount)
        .when(~pl.col("_pcomp")).then(0)
        .when(yearly).then(pl.col("_p_k1") - pl.col("_p_k0"))
        .when(has).then(pl.min_horizontal(pl.col("_p_raw"), (pl.col("_p_camt") - pl.col("_p_sh")).clip(lower_bound=0)))
        .otherwise(pl.col("_p_raw")),
    )
    run.frame = run.drop(run.frame, {"_p_s1": "_p_trs1", "_p_sh": "_p_trsh", "_p_k0": "_p_trk0"},  # trace: cap headroom
                         "_pgiven_amount", "_p_sh", "_p_shh", "_p_s0", "_p_s1", "_p_kx", "_p_kl", "_p_k0", "_p_k1")
