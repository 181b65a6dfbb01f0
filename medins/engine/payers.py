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

Cost: a payer is one lazy query (``Run.lazy``) up to each year-to-date state column it needs, and only
the state its layers keep per year is scanned (a per-claim ceiling or cap, or no deductible, needs
none); its layers' settings are sets of rules, not text columns compared on every row. One bill, a
batch partition and a Spark task go through the same steps (``settle.settle``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from medins.engine.benefits import PERSON_YEAR, _grouping, _half_up, band_parts
from medins.engine.context import Run
from medins.engine.fused import at_least_zero
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
    order = payer_order(run.policy.model)
    if not order:
        run.frame = run.frame.with_columns(**{name: pl.lit(0, pl.Int64) for name in PAYER_FIELDS})
        return
    for n, pid in enumerate(order):
        run.deferred(lambda r, defer, n=n, pid=pid: _settle_one(r, n, pid, defer))


def _named_amounts() -> dict[str, pl.Expr]:
    """The amounts a payer's base reads (``PAYER_AMOUNTS``), ``paid`` so far and the payer fields at 0."""
    paid_hifp = pl.col("paid_hifp_pay")
    return dict(
        out_of_catalogue=pl.col("fulamt"), over_limit=pl.col("overlmt"), self_pay_first=pl.col("presp"),
        basic_deductible=pl.col("ded"), basic_paid=pl.col("hifp_pay"),
        basic_cap_cut=pl.when(paid_hifp.is_null()).then(at_least_zero(pl.col("_raw_total") - pl.col("hifp_pay")))
        .otherwise(0),
        above_ceiling=at_least_zero(pl.col("inscope") - pl.col("eligible")),
        paid=pl.col("hifp_pay"),
        **{name: pl.lit(0, pl.Int64) for name in PAYER_FIELDS},
    )


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


def _rules_where(layers: dict[int, tuple[int, Layer]], holds) -> pl.Expr:
    """True on the rows of the rules whose layer ``holds`` (false elsewhere, and where no rule settles the claim).

    Why not a column of the layers' setting (``year``, ``cumulative`` …) compared row by row: that is a text
    column per setting, built and compared on every row; the rules are a handful, known before the query."""
    rules = [idx for idx, (_j, layer) in layers.items() if holds(layer)]
    return pl.col("_rule").is_in(rules).fill_null(False) if rules else pl.lit(False)


def _rule_rows(idx: int) -> pl.Expr:
    """``benefits._mask`` as an expression: the rule's admissible rows."""
    return ((pl.col("_rule") == idx) & pl.col("_ok")).fill_null(False)


class _Yearly:
    """Which of a payer's limits keep a year-to-date state: only those need a state column (a scan).

    Why: a limit that no layer of the payer keeps per year (a ceiling or cap per claim, no deductible) leaves
    its state unread — the payment takes the per-claim branch on every row — so its scan is not run. What
    the state columns would have given (their trace columns included) is never read then (``--explain``
    reads a payer's state only for a yearly limit, its axis start only on a cumulative axis)."""

    def __init__(self, layers: list[Layer]) -> None:
        self.ceiling = any(lay.ceiling is not None and lay.ceiling.per == "year"
                           and lay.ceiling.measure != "above_deductible" for lay in layers)
        self.ceiling_above = any(lay.ceiling is not None and lay.ceiling.per == "year"
                                 and lay.ceiling.measure == "above_deductible" for lay in layers)
        self.deductible = any(lay.deductible is not None and lay.deductible.per == "year" for lay in layers)
        self.cumulative = any(lay.bands.axis == "cumulative" for lay in layers)
        self.cap = any(lay.cap is not None and lay.cap.per == "year" for lay in layers)
        # the sharing payers' sum runs over all the person's claims of the year, a per-claim cap's among them
        self.shared = self.cap and any(lay.cap is not None and lay.cap.shared_with for lay in layers)


class _Chain:
    """One payer's pending query (``Run.lazy``): materialised only before a state column (a scan) and at the end.

    ``trace`` collects the state columns kept under their trace names (``Run.drop``) for ``--explain``."""

    def __init__(self, run: Run, pid: str, defer: bool) -> None:
        self.run, self.pid, self.defer = run, pid, defer
        self.q = run.lazy(defer=defer)
        self.trace: dict[str, str] = {}

    def with_columns(self, *exprs: pl.Expr, **named: pl.Expr) -> None:
        self.q.with_columns(*exprs, **named)

    def ev(self, text: str, returns: str, *, mask: pl.Expr, required: bool = False) -> pl.Expr:
        return self.q.ev(text, returns, mask=mask, required=required)

    def collect(self) -> None:
        """Materialise the query so far into ``run.frame`` and start a new one on it."""
        self.q.collect()
        self.q = self.run.lazy(defer=self.defer)

    def cumsum(self, x: str, limit: str | None, h0: str, before: str, after: str) -> None:
        """A state column of the payer over (person, benefit year) (``state.clamped_cumsum``)."""
        self.q.collect()
        run = self.run
        run.frame = clamped_cumsum(run.frame, x=x, limit=limit, h0=h0, group=PERSON_YEAR, out_before=before,
                                   out_after=after, grouping=_grouping(run, None))
        self.q = run.lazy(defer=self.defer)

    def keep(self, column: str, name: str) -> None:
        """Keep ``column`` as ``_tr_<pid>_<name>`` with ``settle(keep_trace=True)``."""
        self.trace[column] = f"_tr_{self.pid}_{name}"


def _settle_one(run: Run, n: int, pid: str, defer: bool) -> None:
    """Settle payer ``pid`` (the ``n``-th of the chain): one query up to each state column it needs, the rest fused.

    ``defer``: the expressions are fused natively; a row only the exact evaluator gives (or rejects as unknown)
    makes :meth:`Run.deferred` settle the payer again through :meth:`Run.ev` (the same values)."""
    model = run.policy.model
    layers = _layers_of(model, pid)
    yearly = _Yearly([layer for _j, layer in layers.values()])
    c = _Chain(run, pid, defer)
    if n == 0:
        c.with_columns(**_named_amounts())
    # Which rows this payer settles: its rule, admissible, `when` true (unknown → it does not pay).
    applies: pl.Expr = pl.lit(False)
    given_first: pl.Expr = pl.lit(False)
    blocked: pl.Expr = pl.lit(False)
    for idx, (j, layer) in layers.items():
        mask = _rule_rows(idx)
        hit = mask if layer.when is None else (mask & c.ev(layer.when, "bool", mask=mask).fill_null(False))
        applies = applies | hit
        first_of_field = all(other.field != layer.field for other in model.rules[idx].layers[:j])
        given = pl.col(f"paid_{layer.field}").is_not_null() & (pl.col("_rule") == idx)
        if first_of_field:
            given_first = given_first | given
        else:
            blocked = blocked | given  # a later tier of a field given as paid: the given amount covers it
    c.with_columns(_papp=applies)
    c.with_columns(_pgiven=pl.col("_papp") & given_first, _pcomp=pl.col("_papp") & ~given_first & ~blocked)
    # the payer fields this payer writes, each on the rows of the rules whose layer writes it
    writes = {name: _rules_where(layers, lambda lay, name=name: lay.field == name) for name in PAYER_FIELDS
              if any(lay.field == name for _j, lay in layers.values())}

    def per_rule(text_of) -> pl.Expr:
        """The layers' money expression ``text_of(layer)`` on the rows the payer computes (``benefits._pick``)."""
        values = [c.ev(t, "money", mask=_rule_rows(idx) & pl.col("_pcomp"), required=True)
                  for idx, (_j, layer) in layers.items() if (t := text_of(layer)) is not None]
        if not values:
            return pl.lit(None, pl.Int64)
        return values[0].cast(pl.Int64) if len(values) == 1 else pl.coalesce(values).cast(pl.Int64)

    # A limit no layer of the payer has is no column: its amount would be null on every row, its step a no-op.
    kinds = {"_p_std": lambda lay: lay.deductible.standard if lay.deductible else None,
             "_p_ceil": lambda lay: lay.ceiling.amount if lay.ceiling else None,
             "_p_camt": lambda lay: lay.cap.amount if lay.cap else None}
    limits = {name: per_rule(text_of) for name, text_of in kinds.items()
              if any(text_of(lay) is not None for _j, lay in layers.values())}
    c.with_columns(_p_left=at_least_zero(pl.col("total") - pl.col("paid")), _p_b=per_rule(lambda lay: lay.base),
                   **limits)
    if run.trace:  # trace: the ceiling's and the cap's period, as ``--explain`` shows them
        c.with_columns(_p_cper=_by_rule(layers, lambda lay: lay.ceiling.per if lay.ceiling else None, pl.String),
                       _p_kper=_by_rule(layers, lambda lay: lay.cap.per if lay.cap else None, pl.String))
        c.keep("_p_cper", "cper")
        c.keep("_p_kper", "kper")
    c.with_columns(_p_b=pl.min_horizontal(
        pl.when(pl.col("_pcomp")).then(at_least_zero(pl.col("_p_b").fill_null(0))).otherwise(0), "_p_left"))
    hist = _history(model, layers)
    above_first = _rules_where(layers, lambda lay: lay.ceiling is not None and lay.ceiling.measure == "above_deductible")
    # 1. Ceiling measured on the expense (before the deductible).
    if yearly.ceiling:
        c.with_columns(_p_h_base=hist["base"])
    _ceiling(c, layers, x="_p_b", where=~above_first, h0="_p_h_base", out="_p_b1", state=yearly.ceiling)
    # 2. Deductible on what the ceiling let through.
    if yearly.deductible:
        c.with_columns(_p_h_ded=hist["deductible_paid"])
    _payer_deductible(c, layers, x="_p_b1", state=yearly.deductible)
    # 3. Ceiling measured above the deductible.
    c.with_columns(_p_ab=at_least_zero(pl.col("_p_b1") - pl.col("_p_d")))
    if yearly.ceiling_above:
        c.with_columns(_p_h_above=at_least_zero(hist["base"] - hist["deductible_paid"]))
    _ceiling(c, layers, x="_p_ab", where=above_first, h0="_p_h_above", out="_p_ab1", state=yearly.ceiling_above)
    c.with_columns(_p_b2=pl.col("_p_d") + pl.col("_p_ab1"))
    # 4. Bands on the payer's axis (a cumulative one starts where the payer's base of the year stands).
    def axis(name: str) -> pl.Expr:
        return _rules_where(layers, lambda lay: lay.bands.axis == name)

    lower = pl.when(axis("above_deductible")).then(0).otherwise(pl.col("_p_d"))
    upper = pl.when(axis("above_deductible")).then(pl.col("_p_b2") - pl.col("_p_d")).otherwise(pl.col("_p_b2"))
    if yearly.cumulative:
        c.with_columns(_p_h_base=hist["base"])
        c.cumsum("_p_b2", None, "_p_h_base", "_p_pc0", "_p_pc1")
        c.keep("_p_pc0", "pc0")
        lower = pl.when(axis("cumulative")).then(pl.col("_p_pc0") + pl.col("_p_d")).otherwise(lower)
        upper = pl.when(axis("cumulative")).then(pl.col("_p_pc0") + pl.col("_p_b2")).otherwise(upper)
    c.collect()
    prefix = f"_q{n}"
    band_parts(run, lambda r: next((lay.bands for lay in r.layers if lay.id == pid), None), prefix,
               pl.when(pl.col("_pcomp")).then(lower).otherwise(0), pl.when(pl.col("_pcomp")).then(upper).otherwise(0),
               only="_pcomp")
    c.q = run.lazy(defer=defer)
    num = pl.col(f"{prefix}num")
    # Σ parts × rates rounded half up to the fen: in Int64 when band_parts summed in Int64 (num < 2^62 then, so
    # num + 500000 fits), the same quotient as the Int128 form's (2 num + 10^6) // (2 × 10^6)
    raw = (num + 500_000) // 1_000_000 if run.frame[f"{prefix}num"].dtype == pl.Int64 else \
        _half_up(num, pl.lit(1_000_000, pl.Int128))
    c.with_columns(_p_raw=pl.when(pl.col("_pcomp")).then(raw).otherwise(0))
    # 5. Cap: per claim or per year, alone or together with earlier payers (shared_with).
    _payer_cap(c, layers, yearly, writes)
    pay = pl.col("_p_pay")
    c.with_columns(paid=pl.col("paid") + pay,
                   **{name: pl.when(rows).then(pl.col(name) + pay).otherwise(pl.col(name))
                      for name, rows in writes.items()})
    renamed = {"_p_pay": f"_pay_{pid}", "_p_b": f"_pbase_{pid}", "_p_d": f"_pded_{pid}", "_p_raw": f"_praw_{pid}",
               "_pgiven": f"_pgiven_{pid}", "_papp": f"_papp_{pid}"}
    if "_p_std" in limits:
        renamed["_p_std"] = f"_pstd_{pid}"
    c.with_columns((pl.col("_p_b") - pl.col("_p_b2")).alias(f"_pceil_{pid}"),
                   *(pl.col(old).alias(new) for old, new in renamed.items()))
    # trace: the payer's ceiling, cap and their kinds, as ``_tr_<pid>_<name>``
    for column in ("_p_ceil", "_p_camt"):
        if column in limits:
            c.keep(column, column.removeprefix("_p_"))
    c.collect()
    run.frame = run.drop(run.frame, c.trace, "_pcomp", "_pgiven", "_papp", "_pgiven_amount",
                         *(name for name in run.frame.columns if name.startswith("_p_")))


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


def _ceiling(c: _Chain, layers: dict[int, tuple[int, Layer]], *, x: str, where: pl.Expr, h0: str, out: str,
             state: bool) -> None:
    """``out`` = ``x`` limited by the payer's ceiling where ``where`` holds, per claim or per year (``state``: a
    layer keeps it per year, so the state column is computed). Without a ceiling, ``out`` is ``x``."""
    if "_p_ceil" not in c.q.schema:
        c.with_columns(pl.col(x).alias(out))
        return
    has = pl.col("_p_ceil").is_not_null() & where
    per_claim = pl.when(has).then(pl.min_horizontal(pl.col(x), pl.col("_p_ceil"))).otherwise(pl.col(x))
    if not state:
        c.with_columns(per_claim.alias(out))
        return
    yearly = has & _rules_where(layers, lambda lay: lay.ceiling is not None and lay.ceiling.per == "year")
    c.with_columns(_p_cx=pl.when(yearly).then(pl.col(x)).otherwise(0),
                   _p_cl=pl.when(yearly).then(pl.col("_p_ceil")).otherwise(None))
    c.cumsum("_p_cx", "_p_cl", h0, "_p_cy0", "_p_cy1")
    c.with_columns(pl.when(yearly).then(pl.col("_p_cy1") - pl.col("_p_cy0")).otherwise(per_claim).alias(out),
                   pl.col("_p_cy0").alias(f"_p_tr{out}0"))
    c.keep(f"_p_tr{out}0", f"{out.removeprefix('_p_')}0")  # trace: used before


def _payer_deductible(c: _Chain, layers: dict[int, tuple[int, Layer]], *, x: str, state: bool) -> None:
    """``_p_d``: the payer's own deductible on ``x`` — on each claim, or once a year (its own counter: ``state``);
    0 without one."""
    if "_p_std" not in c.q.schema:
        c.with_columns(_p_d=pl.lit(0, pl.Int64))
        return
    has = pl.col("_p_std").is_not_null() & pl.col("_pcomp")
    per_claim = pl.when(has).then(pl.min_horizontal(pl.col(x), pl.col("_p_std"))).otherwise(0)
    if not state:
        c.with_columns(_p_d=per_claim)
        return
    yearly = has & _rules_where(layers, lambda lay: lay.deductible is not None and lay.deductible.per == "year")
    c.with_columns(_p_dx=pl.when(yearly).then(pl.col(x)).otherwise(0),
                   _p_dl=pl.when(yearly).then(pl.col("_p_std")).otherwise(None))
    c.cumsum("_p_dx", "_p_dl", "_p_h_ded", "_p_dy0", "_p_dy1")
    c.with_columns(_p_d=pl.when(yearly).then(pl.col("_p_dy1") - pl.col("_p_dy0")).otherwise(per_claim))
    c.keep("_p_dy0", "d0")  # trace: paid before


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


def _payer_cap(c: _Chain, layers: dict[int, tuple[int, Layer]], yearly: _Yearly, writes: dict[str, pl.Expr]) -> None:
    """``_p_pay``: the payment after the cap; a payment given as already paid counts in the payer's state as is.

    The state columns (the sharing payers' year so far, the payer's own) only where a layer's cap is yearly."""
    run = c.run
    given = pl.col("_pgiven")
    given_amount = pl.min_horizontal(pl.col("_pgiven_amount"), pl.col("_p_left"))
    schema = c.q.schema
    c.with_columns(_pgiven_amount=pl.coalesce(*[pl.when(rows).then(pl.col(f"paid_{name}"))
                                                for name, rows in writes.items() if f"paid_{name}" in schema],
                                              pl.lit(0, pl.Int64)))
    if "_p_camt" not in schema:  # no cap: the payment is what the bands give
        c.with_columns(_p_pay=pl.when(given).then(given_amount).when(~pl.col("_pcomp")).then(0)
                       .otherwise(pl.col("_p_raw")))
        return
    shared_now, shared_hist = _shared(run.policy.model, layers)
    has = pl.col("_p_camt").is_not_null() & pl.col("_pcomp")
    c.with_columns(_p_sh=pl.when(pl.col("_rule").is_not_null()).then(shared_now).otherwise(0).fill_null(0))
    c.keep("_p_sh", "sh")  # trace: cap headroom
    per_claim = (pl.when(has).then(pl.min_horizontal(pl.col("_p_raw"), at_least_zero(pl.col("_p_camt") - pl.col("_p_sh"))))
                 .otherwise(pl.col("_p_raw")))
    if not yearly.cap:
        c.with_columns(_p_pay=pl.when(given).then(given_amount).when(~pl.col("_pcomp")).then(0).otherwise(per_claim))
        return
    per_year = has & _rules_where(layers, lambda lay: lay.cap is not None and lay.cap.per == "year")
    if yearly.shared:
        c.with_columns(_p_shh=shared_hist.fill_null(0))
        c.cumsum("_p_sh", None, "_p_shh", "_p_s0", "_p_s1")
        c.keep("_p_s1", "s1")
        shared_through = pl.col("_p_s1")
    else:
        shared_through = pl.lit(0, pl.Int64)  # no yearly cap is shared: the sharing payers' sum is 0
    c.with_columns(
        _p_kx=pl.when(given).then(given_amount).when(per_year).then(pl.col("_p_raw")).otherwise(0),
        _p_kl=pl.when(per_year).then(pl.col("_p_camt") - shared_through).otherwise(None),
        _p_h_paid=_history(run.policy.model, layers)["paid"],
    )
    c.cumsum("_p_kx", "_p_kl", "_p_h_paid", "_p_k0", "_p_k1")
    c.keep("_p_k0", "k0")
    c.with_columns(
        _p_pay=pl.when(given).then(given_amount)
        .when(~pl.col("_pcomp")).then(0)
        .when(per_year).then(pl.col("_p_k1") - pl.col("_p_k0"))
        .otherwise(per_claim),
    )
