"""Stage 2 — scope: split each claim's total into the four parts the fund looks at.

* ``fulamt_ownpay_amt`` 全自费 — out of catalogue, excluded item kinds, big-ticket items without approval;
* ``overlmt_selfpay`` 超限价 — the part of an item or a visit above a limit, excess days of a prescription;
* ``preselfpay_amt`` 先行自付 — a share of some items paid by the patient first (e.g. class B 10 %);
* ``inscp_scp_amt`` 符合范围 — the rest, which the deductible and bands work on.

Why items are processed as a table: the same rules apply to a bill's ``items`` and to a line-item
export of a whole year; both are one Polars frame of lines joined to their claim's facts.
Claims given as claim-level ``amounts`` have no lines: ``self_pay`` is out of catalogue and
``class_b`` is the class-B part of the in-scope amount, exactly as the bill says. The policy's
``self_pay_first`` rules still apply to them, on two virtual lines (class A: the rest of the in-scope
amount; class B: ``class_b``; no category) — so a class-B share is never skipped because a bill has
no items. A ``preselfpay`` amount given by the bill (the hospital's own 先行自付) is used as-is
instead of the rules (no shares, no direct fund rate), and is taken off the class-B amount first.

Several rules on one line combine as ``scope.self_pay_first_combine`` says (``max``: the largest
share; ``sequential``: each rule on what the previous ones left, in listed order, each share rounded
half up to the fen); without it such a claim is rejected ``self_pay_first_overlap:<a>+<b>``. A rule's
``fund_rate`` sends the rest of its lines to the fund directly (``direct_pay``, rounded half up once
per claim), outside the deductible and the bands; its base (``direct_base``) is in scope but not in
``inscope``, the amount the deductible and bands work on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import polars as pl

from medins.claims.parse import ITEMS_SCHEMA
from medins.engine.codes import replace_columns
from medins.engine.context import Lazy, Run
from medins.engine.fused import at_least_zero

if TYPE_CHECKING:  # annotations only: the engine runs on a plain model too (medins.policy.plan)
    from medins.policy.schema import ItemSelector

_CAT_PREFIX = "cat_"


def split_scope(run: Run, items: pl.DataFrame | None) -> None:
    """Add ``fulamt``, ``overlmt``, ``presp``, ``class_b_inscope``, ``direct_base``, ``direct_pay``, ``inscope``,
    ``_spf<j>`` (each self_pay_first rule's share) and ``cat_*`` columns (fen).

    Claims without lines are one query (``Run.lazy``); line items and claim-level shares are settled between.
    """
    n_rules = len(run.policy.model.scope.self_pay_first)
    q = run.lazy()
    if "preselfpay" not in q.schema:
        q.with_columns(preselfpay=pl.lit(None, pl.Int64))
    q.with_columns(
        *[pl.lit(0, pl.Int64).alias(f"_spf{j}") for j in range(n_rules)],
        fulamt=pl.col("self_pay"),
        overlmt=pl.lit(0, pl.Int64),
        presp=pl.lit(0, pl.Int64),
        class_b_inscope=pl.col("class_b"),
        direct_base=pl.lit(0, pl.Int64),
        _dnum=pl.lit(0, pl.Int128),
        _lined=pl.lit(False),
    )
    needed_cats = _referenced_categories(run)
    if items is not None and items.height:
        q.collect()
        _merge_lines(run, _settle_lines(run, items), needed_cats)
        q = run.lazy()
    else:
        q.with_columns(*[pl.lit(0, pl.Int64).alias(c) for c in needed_cats])
    if n_rules:
        q.collect()
        _claim_level_shares(run)
        q = run.lazy()
    _given_preselfpay(q)
    q.with_columns(
        direct_pay=_direct_pay(run.frame["_dnum"] if "_dnum" in run.frame.columns else None),
    ).with_columns(
        inscope=pl.col("total") - pl.col("fulamt") - pl.col("overlmt") - pl.col("presp") - pl.col("direct_base"),
        total_items=pl.col("total"),
    ).drop("_dnum", "_lined")
    frame = q.collect().frame
    for i in frame["_i"].filter(frame["_presp_over"]).to_list():
        run.problems.setdefault(i, []).append("preselfpay_above_in_scope")
    run.frame = replace_columns(frame, ["_presp_over"])


def _direct_pay(dnum: pl.Series | None) -> pl.Expr:
    """``direct_pay``: ``_dnum`` (fen × ppm, Int128) rounded half up to the fen, ``(2 num + 10^6) // (2 × 10^6)``.

    Why not always in Int128: Polars' Int128 arithmetic (a cast, a product, a floor division) costs several times its
    Int64 one on every claim. ``dnum`` None: still the 0 every claim starts with (no line settled it), so 0; values of
    at most 2^61 in magnitude (any real bill): the same quotient in Int64, where 2 num + 10^6 fits.
    """
    if dnum is None:
        return pl.lit(0, pl.Int64)
    low, high = dnum.min(), dnum.max()  # Series reductions: no query (None: every value null)
    if low is None or (low >= -(1 << 61) and high <= 1 << 61):  # type: ignore[operator]
        return (pl.col("_dnum").cast(pl.Int64) * 2 + 1_000_000) // 2_000_000
    return ((pl.col("_dnum") * 2 + 1_000_000) // 2_000_000).cast(pl.Int64)


_SUMMED = ("_ful", "_over", "_pre", "_b", "_dbase", "_dnum")


def _merge_lines(run: Run, lines: pl.DataFrame, needed_cats: list[str]) -> None:
    """Sum settled lines per claim into the claim's columns (claims without lines keep their amounts)."""
    spf = [c for c in lines.columns if c.startswith("_spf")]
    traced = [c for c in lines.columns if c.startswith(("_til", "_tvl"))]  # trace only: item and visit limits
    per_claim = lines.group_by("claim_row").agg(
        *[pl.col(c).sum() for c in traced],
        *[
            pl.col("item_amount").filter(pl.col("item_category") == cat[len(_CAT_PREFIX):]).sum().alias(cat)
            for cat in needed_cats
        ],
        *[pl.col(c).sum().alias(f"{c}_sum") for c in (*_SUMMED, *spf)],
        _t=pl.col("item_amount").sum(),
    )
    f = run.frame.join(per_claim, left_on="row", right_on="claim_row", how="left", maintain_order="left")
    has = pl.col("_t").is_not_null()
    targets = {"fulamt": "_ful", "overlmt": "_over", "presp": "_pre", "class_b_inscope": "_b",
               "direct_base": "_dbase", "_dnum": "_dnum", **{c: c for c in spf}}
    f = f.with_columns(
        *[pl.col(c).fill_null(0) for c in needed_cats],
        total=pl.when(has).then(pl.col("_t")).otherwise(pl.col("total")),
        _lined=has,
        **{out: pl.when(has).then(pl.col(f"{src}_sum")).otherwise(pl.col(out)) for out, src in targets.items()},
    )
    run.frame = f.drop("_t", *[f"{c}_sum" for c in (*_SUMMED, *spf)])


def _claim_level_shares(run: Run) -> None:
    """Apply the self_pay_first rules to claims without lines, on their class-A and class-B amounts.

    Why no join: each such claim is exactly two virtual lines (class A, then class B), built from the claim's
    own row, so the lines frame is the claims twice over and per-claim sums are the two halves added.
    """
    mask = ~run.frame["_lined"]
    rows = run.frame.filter(mask)
    k = rows.height
    if k == 0:
        return
    base = rows.with_columns(
        *[pl.lit(None, dtype).alias(name) for name, dtype in ITEMS_SCHEMA.items() if name not in ("claim_row",)],
        claim_row=pl.col("row"), _claim_i=pl.col("_i"),
    )
    rest = at_least_zero(pl.col("total") - pl.col("self_pay") - pl.col("class_b"))
    lines = pl.concat([base.with_columns(item_amount=rest, item_class=pl.lit("A")),
                       base.with_columns(item_amount=pl.col("class_b"), item_class=pl.lit("B"))])
    lines = lines.with_columns(_cnt=pl.col("item_amount"), _i=pl.int_range(0, 2 * k, dtype=pl.Int64))
    lines = _self_pay_first(run, lines)
    spf = [f"_spf{j}" for j in range(len(run.policy.model.scope.self_pay_first))]
    a, b = lines.slice(0, k), lines.slice(k, k)
    sums = {c: a[c] + b[c] for c in ("_pre", "_dbase", "_dnum", *spf)}
    sums["_b"] = b["_cnt"] - b["_pre"] - b["_dbase"]
    targets = {"presp": "_pre", "class_b_inscope": "_b", "direct_base": "_dbase", "_dnum": "_dnum",
               **{c: c for c in spf}}
    if k == run.frame.height:
        run.frame = run.frame.with_columns(**{out: sums[src] for out, src in targets.items()})
        return
    where = mask.arg_true()
    run.frame = run.frame.with_columns(**{out: run.frame[out].scatter(where, sums[src]) for out, src in targets.items()})


def _given_preselfpay(q: Lazy) -> None:
    """A bill's own ``preselfpay`` replaces the rules' shares (they were not applied to it: ``_self_pay_first``).

    It may not exceed what is left after the fully self-paid and over-limit parts (else the claim is
    rejected ``preselfpay_above_in_scope``, flagged ``_presp_over``, and only that much is counted, so the
    totals still add up).
    """
    given = pl.col("preselfpay")
    room = at_least_zero(pl.col("total") - pl.col("fulamt") - pl.col("overlmt"))
    q.with_columns(
        _presp_over=(given > room).fill_null(False),
        presp=pl.when(given.is_not_null()).then(pl.min_horizontal(given, room)).otherwise(pl.col("presp")),
        class_b_inscope=pl.when(given.is_not_null()).then(at_least_zero(pl.col("class_b_inscope") - given))
        .otherwise(pl.col("class_b_inscope")),
    )


def _referenced_categories(run: Run) -> list[str]:
    from medins.engine.context import parse

    names: set[str] = set()
    for text in _all_expressions(run):
        names |= {n for n in parse(text).names if n.startswith(_CAT_PREFIX)}
    return sorted(names)


def _all_expressions(run: Run) -> list[str]:
    """Every expression of the policy (a ``cat_<category>`` name may appear in any of them)."""
    return list(run.policy.expression_texts())


def _selected(run: Run, lines: pl.DataFrame, sel: ItemSelector) -> pl.Series:
    mask = pl.repeat(True, lines.height, dtype=pl.Boolean, eager=True)
    if sel.categories is not None:
        mask = mask & lines["item_category"].is_in(sel.categories).fill_null(False)
    if sel.classes is not None:
        mask = mask & lines["item_class"].is_in(sel.classes).fill_null(False)
    if sel.when is not None:
        mask = mask & _ev_lines(run, sel.when, "bool", lines).fill_null(False)
    return mask


def _ev_lines(run: Run, text: str | None, returns: str, lines: pl.DataFrame) -> pl.Series:
    """``run.ev`` on the line items, a line whose expression fails (or gives an amount below 0 or a rate
    outside 0–100 %) rejecting its claim ``policy_error:…`` — never ignored, never clipped.

    Why the remapping: ``run.ev`` files problems under the rows' ``_i``, which for ``lines`` numbers
    the lines, not the claims.
    """
    saved, run.problems = run.problems, {}
    try:
        values = run.ev(text, returns, frame=lines)
    finally:
        found, run.problems = run.problems, saved
    if found:
        claim_of_line = lines["claim_row"]
        claim_i = dict(zip(run.frame["row"].to_list(), run.frame["_i"].to_list(), strict=True))
        for line, codes in found.items():
            run.problems.setdefault(claim_i[claim_of_line[line]], []).extend(codes)
    return values


def _settle_lines(run: Run, items: pl.DataFrame) -> pl.DataFrame:
    """Apply the scope rules line by line (and per visit), returning per-line fen columns."""
    scope = run.policy.model.scope
    lines = _join_claims(run, items)
    amount = lines["item_amount"]
    ful = pl.repeat(False, lines.height, dtype=pl.Boolean, eager=True)
    for sel in scope.excluded:
        ful = ful | _selected(run, lines, sel)
    if scope.in_scope_only is not None:
        ful = ful | ~_selected(run, lines, scope.in_scope_only)
    for rule in scope.approvals:
        big = amount >= _ev_lines(run, rule.min_amount, "money", lines).fill_null(1 << 60)
        waived = _ev_lines(run, rule.waived_if, "bool", lines).fill_null(False) if rule.waived_if \
            else pl.repeat(False, lines.height, dtype=pl.Boolean, eager=True)
        unapproved = lines["item_approved"].eq(False).fill_null(False)
        ful = ful | (_selected(run, lines, rule) & big & unapproved & ~waived)
    counted = pl.when(ful).then(0).otherwise(amount)
    lines = lines.with_columns(_ful=pl.when(ful).then(amount).otherwise(0), _cnt=counted)
    if scope.days_supply_limit is not None:
        limit = _ev_lines(run, scope.days_supply_limit, "int", lines)
        days = lines["item_days_supply"]
        excess = (days - limit).clip(lower_bound=0)
        over = (lines["_cnt"] * excess * 2 + days) // (days * 2)  # half up of cnt × excess / days
        lines = lines.with_columns(_cnt=pl.col("_cnt") - over.fill_null(0))
    for j, lim in enumerate(scope.item_limits):
        sel = _selected(run, lines, lim)
        if lim.max is not None:
            cap = _ev_lines(run, lim.max, "money", lines)
        else:
            per = _ev_lines(run, lim.max_per_dose, "money", lines)
            cap = per * lines["item_doses"]
        new = pl.min_horizontal(pl.col("_cnt"), pl.lit(cap).fill_null(1 << 60))
        if run.trace:  # trace: per line, the selected amount before the limit and the limit (summed per claim)
            lines = lines.with_columns(**{f"_til{j}_n": pl.lit(sel).cast(pl.Int64),
                                          f"_til{j}_a": pl.when(pl.lit(sel)).then(pl.col("_cnt")).otherwise(0),
                                          f"_til{j}_l": pl.when(pl.lit(sel)).then(pl.lit(cap)).otherwise(0)})
        lines = lines.with_columns(_cnt=pl.when(pl.lit(sel)).then(new).otherwise(pl.col("_cnt")))
        if run.trace:
            lines = lines.with_columns(**{f"_til{j}_k": pl.when(pl.lit(sel)).then(pl.col("_cnt")).otherwise(0)})
    for j, lim in enumerate(scope.visit_limits):
        sel = _selected(run, lines, lim)
        cap = _ev_lines(run, lim.max, "money", lines).fill_null(1 << 60)
        lines = lines.with_columns(_sel=sel, _cap=cap).with_columns(
            _grp=pl.col("_cnt").filter(pl.col("_sel")).sum().over("claim_row"),
            _gcap=pl.col("_cap").first().over("claim_row"),
        )
        if run.trace:  # trace: the group's amount before the limit (first line of the claim) and the limit
            first = pl.int_range(pl.len()).over("claim_row") == 0
            lines = lines.with_columns(**{f"_tvl{j}_a": pl.when(first).then(pl.col("_grp").fill_null(0)).otherwise(0),
                                          f"_tvl{j}_l": pl.when(first).then(pl.col("_gcap")).otherwise(0),
                                          f"_tvl{j}_n": pl.col("_sel").cast(pl.Int64)})
        # Spread the group's counted amount over its lines in order: each keeps what fits under the cap.
        lines = lines.with_columns(
            _before=(pl.when(pl.col("_sel")).then(pl.col("_cnt")).otherwise(0).cum_sum().over("claim_row")
                     - pl.when(pl.col("_sel")).then(pl.col("_cnt")).otherwise(0)),
        ).with_columns(
            _cnt=pl.when(pl.col("_sel"))
            .then(pl.min_horizontal(pl.col("_cnt"), at_least_zero(pl.col("_gcap") - pl.col("_before"))))
            .otherwise(pl.col("_cnt"))
        )
        if run.trace:
            lines = lines.with_columns(**{f"_tvl{j}_k": pl.when(pl.col("_sel")).then(pl.col("_cnt")).otherwise(0)})
        lines = lines.drop("_sel", "_cap", "_grp", "_gcap", "_before")
    lines = _self_pay_first(run, lines).with_columns(
        _over=pl.col("item_amount") - pl.col("_ful") - pl.col("_cnt"),
        _b=pl.when(pl.col("item_class") == "B").then(pl.col("_cnt") - pl.col("_pre") - pl.col("_dbase")).otherwise(0),
    )
    return lines


def _join_claims(run: Run, items: pl.DataFrame) -> pl.DataFrame:
    """Lines with their claim's facts (expressions of item rules may read both) and the claim's ``_claim_i``."""
    claim_cols = [c for c in run.frame.columns if c not in items.columns and not c.startswith("_")] + ["_v"]
    return items.join(
        run.frame.select(pl.col("row").alias("claim_row"), pl.col("_i").alias("_claim_i"),
                         *[c for c in claim_cols if c != "row"]),
        on="claim_row", how="inner", maintain_order="left",
    ).with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64))


def _half_up_ppm(amount: pl.Series, rate: pl.Series) -> pl.Series:
    """amount (fen) × rate (ppm, 0–10^6), rounded half up to the fen, exactly (Int128 inside when Int64 could overflow)."""
    wide = pl.Int64 if (amount.abs().max() or 0) < 1 << 41 else pl.Int128  # 2^41 × 2 × 10^6 < 2^63
    num = pl.lit(amount).cast(wide) * pl.lit(rate).cast(wide)
    return pl.select(((num * 2 + 1_000_000) // 2_000_000).cast(pl.Int64)).to_series()


def _note(run: Run, lines: pl.DataFrame, matched: list[pl.Series], names: list[str], flag: pl.Series, code: str,
          named: bool) -> None:
    """Add ``code`` (followed by the names of the rules that met on the line, when ``named``) to the claims of the
    flagged lines; the names are only assembled for those lines."""
    flag = flag.fill_null(False)
    if not flag.any():
        return
    where = flag.arg_true()
    codes: pl.Expr = pl.lit(code)
    if named:
        codes = codes + pl.concat_str([pl.when(pl.lit(m.gather(where))).then(pl.lit(name))
                                       for m, name in zip(matched, names, strict=True)],
                                      separator="+", ignore_nulls=True)
    hit = pl.select(_claim_i=pl.lit(lines["_claim_i"].gather(where)), _code=codes)
    for i, reason in hit.unique(maintain_order=True).rows():
        run.problems.setdefault(i, []).append(reason)


def _self_pay_first(run: Run, lines: pl.DataFrame) -> pl.DataFrame:
    """Add ``_pre`` (the line's 先行自付), ``_spf<j>`` (rule j's part of it), ``_dbase`` (the rest the fund pays
    directly at a rule's ``fund_rate``) and ``_dnum`` (``_dbase`` × that rate, fen × ppm) to settled lines.

    Lines of claims that carry their own ``preselfpay`` are left alone (that amount is used as-is).
    """
    scope = run.policy.model.scope
    n = lines.height
    cnt = lines["_cnt"]
    zero = pl.repeat(0, n, dtype=pl.Int64, eager=True)
    active = lines["preselfpay"].is_null() if "preselfpay" in lines.columns else pl.repeat(True, n, eager=True)
    combine = scope.self_pay_first_combine
    names = [scope.self_pay_first_name(j) for j in range(len(scope.self_pay_first))]
    problems: list[tuple[pl.Series, str, bool]] = []  # (lines flagged, reason code, + the names of the rules met)
    left, pre, best = cnt, zero, pl.repeat(-1, n, dtype=pl.Int64, eager=True)
    fund = pl.repeat(None, n, dtype=pl.Int64, eager=True)
    conflict = pl.repeat(False, n, eager=True)
    shares: dict[str, pl.Series] = {}
    matched: list[pl.Series] = []
    for j, spf in enumerate(scope.self_pay_first):
        sel = (_selected(run, lines, spf) & active).fill_null(False)
        matched.append(sel)
        rate = run.ev(spf.rate, "rate", frame=lines, on_error="ignore")
        bad = sel & (rate.is_null() | (rate < 0) | (rate > 1_000_000)).fill_null(True)
        problems.append((bad, f"policy_error:self_pay_first {names[j]} rate unknown or outside 0-100%", False))
        rate = rate.fill_null(0).clip(0, 1_000_000)
        if combine == "sequential":
            share = pl.select(pl.when(pl.lit(sel)).then(pl.lit(_half_up_ppm(left, rate))).otherwise(0)).to_series()
            left = left - share
            shares[f"_spf{j}"] = share
        else:  # max (also when undeclared: such claims are rejected below, the shares only shown)
            share = _half_up_ppm(cnt, rate)
            wins = sel & (rate > best)
            best = pl.select(pl.when(pl.lit(wins)).then(pl.lit(rate)).otherwise(pl.lit(best))).to_series()
            pre = pl.select(pl.when(pl.lit(wins)).then(pl.lit(share)).otherwise(pl.lit(pre))).to_series()
            for k in shares:  # the winner takes the attribution
                shares[k] = pl.select(pl.when(pl.lit(wins)).then(0).otherwise(pl.lit(shares[k]))).to_series()
            shares[f"_spf{j}"] = pl.select(pl.when(pl.lit(wins)).then(pl.lit(share)).otherwise(0)).to_series()
        if spf.fund_rate is not None:
            f_rate = run.ev(spf.fund_rate, "rate", frame=lines, on_error="ignore")
            bad = sel & (f_rate.is_null() | (f_rate < 0) | (f_rate > 1_000_000)).fill_null(True)
            problems.append((bad, f"policy_error:self_pay_first {names[j]} fund_rate unknown or outside 0-100%", False))
            f_rate = pl.select(pl.when(pl.lit(sel)).then(pl.lit(f_rate.clip(0, 1_000_000)))).to_series()
            conflict = conflict | (fund.is_not_null() & f_rate.is_not_null() & (fund != f_rate)).fill_null(False)
            fund = fund.fill_null(f_rate)
    if combine == "sequential":
        pre = cnt - left
    if matched and combine is None:
        count = pl.select(pl.sum_horizontal(*[pl.lit(m).cast(pl.Int64) for m in matched])).to_series()
        problems.append((count >= 2, "self_pay_first_overlap:", True))
    problems.append((conflict, "self_pay_first_fund_rate_conflict:", True))
    for flag, code, named in problems:
        _note(run, lines, matched, names, flag, code, named)
    dbase = pl.select(pl.when(pl.lit(fund).is_not_null()).then(pl.lit(cnt - pre)).otherwise(0)).to_series()
    return lines.with_columns(
        _pre=pre, _dbase=dbase, _dnum=dbase.cast(pl.Int128) * fund.fill_null(0).cast(pl.Int128), **shares)
