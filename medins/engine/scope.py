"""Stage 2 — scope: split each claim's total into the four parts the fund looks at.

* ``fulamt_ownpay_amt`` 全自费 — out of catalogue, excluded item kinds, big-ticket items without approval;
* ``overlmt_selfpay`` 超限价 — the part of an item or a visit above a limit, excess days of a prescription;
* ``preselfpay_amt`` 先行自付 — a share of some items paid by the patient first (e.g. class B 10 %);
* ``inscp_scp_amt`` 符合范围 — the rest, which the deductible and bands work on.

Why items are processed as a table: the same rules apply to a bill's ``items`` and to a line-item
export of a whole year; both are one Polars frame of lines joined to their claim's facts.
Claims given as claim-level ``amounts`` have no lines: ``self_pay`` is out of catalogue and
``class_b`` is the class-B part of the in-scope amount, exactly as the bill says.
"""

from __future__ import annotations

import polars as pl

from medins.engine.context import Run
from medins.policy.schema import ItemSelector, iter_expressions

_CAT_PREFIX = "cat_"


def split_scope(run: Run, items: pl.DataFrame | None) -> None:
    """Add ``fulamt``, ``overlmt``, ``presp``, ``class_b_inscope``, ``inscope`` and ``cat_*`` columns (fen)."""
    f = run.frame.with_columns(
        fulamt=pl.col("self_pay"),
        overlmt=pl.lit(0, pl.Int64),
        presp=pl.lit(0, pl.Int64),
        class_b_inscope=pl.col("class_b"),
    )
    run.frame = f
    needed_cats = _referenced_categories(run)
    if items is not None and items.height:
        lines = _settle_lines(run, items)
        per_claim = lines.group_by("claim_row").agg(
            *[
                pl.col("item_amount").filter(pl.col("item_category") == cat[len(_CAT_PREFIX):]).sum().alias(cat)
                for cat in needed_cats
            ],
            _t=pl.col("item_amount").sum(),
            _ful=pl.col("_ful").sum(),
            _over=pl.col("_over").sum(),
            _pre=pl.col("_pre").sum(),
            _b=pl.col("_b").sum(),
        )
        f = run.frame.join(per_claim, left_on="row", right_on="claim_row", how="left", maintain_order="left")
        has = pl.col("_t").is_not_null()
        f = f.with_columns(
            *[pl.col(c).fill_null(0) for c in needed_cats],
            total=pl.when(has).then(pl.col("_t")).otherwise(pl.col("total")),
            fulamt=pl.when(has).then(pl.col("_ful")).otherwise(pl.col("fulamt")),
            overlmt=pl.when(has).then(pl.col("_over")).otherwise(pl.col("overlmt")),
            presp=pl.when(has).then(pl.col("_pre")).otherwise(pl.col("presp")),
            class_b_inscope=pl.when(has).then(pl.col("_b")).otherwise(pl.col("class_b_inscope")),
        ).drop("_t", "_ful", "_over", "_pre", "_b")
        run.frame = f
    else:
        run.frame = run.frame.with_columns(*[pl.lit(0, pl.Int64).alias(c) for c in needed_cats])
    run.frame = run.frame.with_columns(
        inscope=pl.col("total") - pl.col("fulamt") - pl.col("overlmt") - pl.col("presp"),
        total_items=pl.col("total"),
    )


def _referenced_categories(run: Run) -> list[str]:
    from medins.engine.context import parse

    names: set[str] = set()
    for text in _all_expressions(run):
        names |= {n for n in parse(text).names if n.startswith(_CAT_PREFIX)}
    return sorted(names)


def _all_expressions(run: Run) -> list[str]:
    """Every expression of the policy (a ``cat_<category>`` name may appear in any of them)."""
    return [text for _loc, text, _holder in iter_expressions(run.policy.model)]


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
    claim_cols = [c for c in run.frame.columns if c not in items.columns and not c.startswith("_")] + ["_v"]
    lines = items.join(
        run.frame.select(pl.col("row").alias("claim_row"), *[c for c in claim_cols if c != "row"]),
        on="claim_row", how="inner", maintain_order="left",
    ).with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64))
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
    for lim in scope.item_limits:
        sel = _selected(run, lines, lim)
        if lim.max is not None:
            cap = _ev_lines(run, lim.max, "money", lines)
        else:
            per = _ev_lines(run, lim.max_per_dose, "money", lines)
            cap = per * lines["item_doses"]
        new = pl.min_horizontal(pl.col("_cnt"), pl.lit(cap).fill_null(1 << 60))
        lines = lines.with_columns(_cnt=pl.when(pl.lit(sel)).then(new).otherwise(pl.col("_cnt")))
    for lim in scope.visit_limits:
        sel = _selected(run, lines, lim)
        cap = _ev_lines(run, lim.max, "money", lines).fill_null(1 << 60)
        lines = lines.with_columns(_sel=sel, _cap=cap).with_columns(
            _grp=pl.col("_cnt").filter(pl.col("_sel")).sum().over("claim_row"),
            _gcap=pl.col("_cap").first().over("claim_row"),
        )
        # Spread the group's counted amount over its lines in order: each keeps what fits under the cap.
        lines = lines.with_columns(
            _before=(pl.when(pl.col("_sel")).then(pl.col("_cnt")).otherwise(0).cum_sum().over("claim_row")
                     - pl.when(pl.col("_sel")).then(pl.col("_cnt")).otherwise(0)),
        ).with_columns(
            _cnt=pl.when(pl.col("_sel"))
            .then(pl.min_horizontal(pl.col("_cnt"), (pl.col("_gcap") - pl.col("_before")).clip(lower_bound=0)))
            .otherwise(pl.col("_cnt"))
        ).drop("_sel", "_cap", "_grp", "_gcap", "_before")
    pre = pl.repeat(0, lines.height, dtype=pl.Int64, eager=True)
    for spf in scope.self_pay_first:
        sel = _selected(run, lines, spf)
        rate = _ev_lines(run, spf.rate, "rate", lines).fill_null(0)
        share = (lines["_cnt"] * rate * 2 + 1_000_000) // 2_000_000
        pre = pl.Series(pl.select(pl.when(pl.lit(sel)).then(pl.lit(share)).otherwise(pl.lit(pre))).to_series())
    lines = lines.with_columns(_pre=pre).with_columns(
        _over=pl.col("item_amount") - pl.col("_ful") - pl.col("_cnt"),
        _b=pl.when(pl.col("item_class") == "B").then(pl.col("_cnt") - pl.col("_pre")).otherwise(0),
    )
    return lines
