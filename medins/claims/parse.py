"""Vectorised parsing of claims cells (all text) into the canonical, typed claims and items tables.

Why: a batch may hold a million rows, so each column is parsed once with Polars expressions — cast
with ``strict=False`` and compare nulls to find the bad cells — instead of a Python loop per row.
Every expression yields a value and an error code (``bad_date:admit_date``, …); a row with any code
goes to the rejects, so no row is ever settled on a value we could not read. All columns come from
the registry in ``fields.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from medins.claims.aliases import ALL_FIELDS, value_table
from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS, Field
from medins.money import FEN_PER_YUAN, MAX_YUAN, fen_to_yuan, to_fen

KIND_DTYPE: dict[str, pl.DataType] = {
    "str": pl.String(), "date": pl.Date(), "bool": pl.Boolean(), "int": pl.Int64(), "money": pl.Int64(),
    "list": pl.List(pl.String()),
}
MAX_FEN = int(MAX_YUAN * FEN_PER_YUAN)
#: Valid hospital levels (0 = village clinic / community station); a bill or table outside is refused.
HOSPITAL_LEVELS = (0, 1, 2, 3)
CODES = "_codes"

CLAIMS_SCHEMA = pl.Schema({"row": pl.Int64(), **{f.name: KIND_DTYPE[f.kind] for f in CLAIM_FIELDS},
                           "has_items": pl.Boolean()})
ITEMS_SCHEMA = pl.Schema({"claim_row": pl.Int64(), **{f.name: KIND_DTYPE[f.kind] for f in ITEM_FIELDS}})
REJECTS_SCHEMA = pl.Schema({"row": pl.Int64(), "claim_id": pl.String(), "reason": pl.String(),
                            "message_en": pl.String(), "message_zh": pl.String(), "raw": pl.String()})


def default_of(f: Field) -> object:
    """The table value of a field's default (money defaults are yuan in the registry, fen here)."""
    if f.default is None or f.kind != "money":
        return f.default
    return to_fen(f.default)


def _code(condition: pl.Expr, code: str) -> pl.Expr:
    return pl.when(condition).then(pl.lit(code))


Stages = list[list[pl.Expr]]


def field_plan(f: Field, user_values: Mapping | None, *, required: bool) -> tuple[Stages, pl.Expr, pl.Expr]:
    """How to read the text column ``f.name``: temporary columns by stage, the typed value, the error code.

    Why stages: each intermediate (trimmed text, cleaned digits, regex groups) is materialised once
    as a column; written as one nested expression Polars would recompute it for every use.
    """
    def tmp(tag: str) -> pl.Expr:
        return pl.col(f"_{tag}:{f.name}")

    stripped = pl.col(f.name).cast(pl.String).str.strip_chars()
    stages: Stages = [[pl.when(stripped != "").then(stripped).alias(f"_s:{f.name}")]]
    table = value_table(f, user_values)
    mapped = tmp("s")
    if table:
        mapped = mapped.str.to_lowercase().replace_strict(list(table), list(table.values()), default=tmp("s"),
                                                          return_dtype=pl.String)
    stages.append([mapped.alias(f"_t:{f.name}")])
    text = tmp("t")
    codes: list[pl.Expr] = [_code(text.is_null(), f"missing_field:{f.name}")] if required else []
    if f.kind == "str":
        value = text
        if f.choices:
            codes.append(_code(~value.is_in(list(f.choices)), f"unknown_code:{f.name}"))
    elif f.kind == "date":
        value = parse_date(text)
        codes.append(_code(text.is_not_null() & value.is_null(), f"bad_date:{f.name}"))
    elif f.kind == "bool":
        value = pl.when(text == "true").then(True).when(text == "false").then(False)
        codes.append(_code(text.is_not_null() & value.is_null(), f"not_a_bool:{f.name}"))
    elif f.kind == "int":
        digits = text.str.replace(r"\.0*$", "")
        value = pl.when(digits.str.contains(r"^[+-]?\d{1,18}$")).then(digits.cast(pl.Int64, strict=False))
        codes.append(_code(text.is_not_null() & value.is_null(), f"not_a_number:{f.name}"))
        if f.name == "hospital_level":
            codes.append(_code(~value.is_in(HOSPITAL_LEVELS), f"unknown_code:{f.name}"))
        else:
            codes.append(_code(value < 0, f"negative_number:{f.name}"))
    elif f.kind == "money":
        money_stages, value, code = money_plan(text, f.name)
        stages += money_stages
        codes.append(code)
    else:  # list: codes or names separated by ; ； or |
        parts = text.str.split(r"\s*[;；|]\s*", literal=False).list.eval(pl.element().filter(pl.element() != ""))
        value = pl.when(parts.list.len() > 0).then(parts)
    return stages, value, pl.coalesce(codes) if codes else pl.lit(None, pl.String)


def parse_date(text: pl.Expr) -> pl.Expr:
    """``YYYY-MM-DD``, ``YYYY/MM/DD``, ``YYYYMMDD``, or the first two with a time (dropped) → Date.

    The fifth character picks the format (so ``08-03-02`` is not read as the year 8); a time part
    is parsed too, so ``2008-03-02 25:00:00`` is refused rather than cut.
    """
    fifth, long = text.str.slice(4, 1), text.str.len_chars() > 10
    with_time = text.str.replace("T", " ", literal=True)

    def dated(sep: str) -> pl.Expr:
        fmt = f"%Y{sep}%m{sep}%d"
        return pl.when(fifth == sep).then(pl.coalesce(
            text.str.to_date(fmt, strict=False),
            pl.when(long).then(with_time.str.strptime(pl.Datetime, f"{fmt} %H:%M:%S%.f", strict=False).dt.date())))

    compact = pl.when(text.str.contains(r"^\d{8}$")).then(text.str.to_date("%Y%m%d", strict=False))
    return pl.coalesce(dated("-"), dated("/"), compact)


def money_plan(text: pl.Expr, name: str) -> tuple[Stages, pl.Expr, pl.Expr]:
    """Yuan text (``1,234.50``, ``¥12``, ``12元``) → Int64 fen, exactly, and the code of a bad cell.

    Why text and not a float or Decimal cast: a cast would round ``12.345`` silently; here the digits
    after the point are counted, so sub-fen input is refused as ``money.to_fen`` refuses it.
    """
    def tmp(tag: str) -> pl.Expr:
        return pl.col(f"_{tag}:{name}")

    clean = text.str.replace_all(r"[,，¥￥元\s]", "")
    groups = tmp("c").str.extract_groups(r"^([+-]?)(\d*)(?:\.(\d*))?$")
    parts = tmp("g").struct
    stages: Stages = [
        [clean.alias(f"_c:{name}")],
        [groups.alias(f"_g:{name}")],
        [parts.field("1").alias(f"_n:{name}"),  # sign; null when the text is not a number at all
         parts.field("2").fill_null("").str.strip_chars_start("0").alias(f"_w:{name}"),
         parts.field("3").fill_null("").str.strip_chars_end("0").alias(f"_f:{name}")],
        [(pl.when(tmp("w") == "").then(pl.lit("0")).otherwise(tmp("w")).cast(pl.Int64, strict=False)
          * FEN_PER_YUAN + (tmp("f") + "00").str.slice(0, 2).cast(pl.Int64)).alias(f"_a:{name}")],
    ]
    digits = parts.field("2").fill_null("").str.len_chars() + parts.field("3").fill_null("").str.len_chars()
    syntax_ok = tmp("n").is_not_null() & (digits > 0)
    fits = tmp("w").str.len_chars() <= 15
    fen, negative = tmp("a"), tmp("n") == "-"
    code = (pl.when(text.is_null()).then(None).when(~syntax_ok).then(pl.lit(f"not_a_number:{name}"))
            .when(tmp("f").str.len_chars() > 2).then(pl.lit(f"sub_fen:{name}"))
            .when(~fits | (fen > MAX_FEN)).then(pl.lit(f"too_large:{name}"))
            .when(negative & (fen != 0)).then(pl.lit(f"negative_amount:{name}")))
    value = pl.when(syntax_ok & fits).then(pl.when(negative).then(-fen).otherwise(fen))
    return stages, value, code


def parse_fields(raw: pl.DataFrame, fields: Collection[Field], values: Mapping, *, required: Collection[str],
                 defaults: bool = True) -> pl.DataFrame:
    """``row`` + one typed column per field (absent columns and empty cells take the default) + codes."""
    exprs: list[pl.Expr] = [pl.col("row")]
    codes: list[pl.Expr] = []
    stages: Stages = []
    for f in fields:
        default = default_of(f) if defaults else None
        if f.name in raw.columns:
            plan, value, code = field_plan(f, values.get(f.name), required=f.name in required)
            stages += [[] for _ in range(len(plan) - len(stages))]
            for k, stage in enumerate(plan):
                stages[k] += stage
            value = value if default is None else value.fill_null(pl.lit(default))
            exprs.append(value.cast(KIND_DTYPE[f.kind]).alias(f.name))
            codes.append(code)
        else:
            exprs.append(pl.lit(default, KIND_DTYPE[f.kind]).alias(f.name))
    for stage in stages:
        raw = raw.with_columns(stage)
    codes_expr = pl.concat_list(codes).list.drop_nulls() if codes else pl.lit([], pl.List(pl.String))
    if CODES in raw.columns:  # a reader's verdict on the whole row (field_count) replaces cell codes
        codes_expr = pl.when(pl.col(CODES).list.len() > 0).then(pl.col(CODES)).otherwise(codes_expr)
    return raw.select(*exprs, codes_expr.alias(CODES))


def claim_checks(frame: pl.DataFrame) -> pl.DataFrame:
    """Default the discharge date to the admission date and add the cross-field codes."""
    frame = frame.with_columns(pl.col("discharge_date").fill_null(pl.col("admit_date")))
    in_scope = pl.col("total") - pl.col("self_pay")
    checks = [
        _code(pl.col("discharge_date") < pl.col("admit_date"), "discharge_before_admit"),
        _code(pl.col("self_pay") > pl.col("total"), "self_pay_above_total"),
        _code((in_scope >= 0) & (pl.col("class_b") > in_scope), "class_b_above_in_scope"),
    ]
    return frame.with_columns(pl.concat_list(pl.col(CODES), *checks).list.drop_nulls().alias(CODES))


def claims_shape(raw: pl.DataFrame, values: Mapping) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One claim per row → (claims, bad rows with ``_codes`` and the typed cross-field values)."""
    required = [f.name for f in CLAIM_FIELDS if f.required]
    parsed = claim_checks(parse_fields(raw, CLAIM_FIELDS, values, required=required))
    ok = pl.col(CODES).list.len() == 0
    claims = parsed.filter(ok).drop(CODES).with_columns(has_items=pl.lit(False))
    return claims, parsed.filter(~ok)


def items_shape(raw: pl.DataFrame, values: Mapping) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One fee line per row, keyed by claim_id → (claims, items, bad lines).

    Why all-or-nothing: a claim settled without one of its lines would pay the wrong amount, so one
    bad line holds back every line of its claim (the good ones say ``claim_has_bad_line``). Claim-level
    cells may be blank on some lines (merged cells in Excel exports); non-blank ones must agree.
    """
    claim_fields = [f for f in CLAIM_FIELDS if f.name != "total"]
    lines = parse_fields(raw, claim_fields, values, required=["claim_id"], defaults=False)
    items = parse_fields(raw.drop(CODES, strict=False), ITEM_FIELDS, values, required=[f.name for f in ITEM_FIELDS if f.required])
    lines = lines.with_columns(items.drop("row", CODES)).with_columns(
        pl.concat_list(pl.col(CODES), items[CODES]).alias(CODES))
    given = [f.name for f in claim_fields if f.name in raw.columns and f.name != "claim_id"]
    agg = lines.filter(pl.col("claim_id").is_not_null()).group_by("claim_id", maintain_order=True).agg(
        pl.col("row").first(),
        *(pl.col(f.name).drop_nulls().first() for f in claim_fields if f.name != "claim_id"),
        pl.col("item_amount").sum().alias("total"),
        (pl.col(CODES).list.len() > 0).any().alias("_bad_lines"),
        pl.concat_list(pl.lit(None, pl.String), *(
            pl.when(pl.col(name).drop_nulls().n_unique() > 1).then(pl.lit(name)) for name in given
        )).list.drop_nulls().alias("_conflicts"),
    )
    agg = agg.with_columns(
        pl.col(f.name).fill_null(pl.lit(default_of(f), KIND_DTYPE[f.kind]))
        for f in claim_fields if default_of(f) is not None
    ).with_columns(pl.concat_list(
        *(_code(pl.col(f.name).is_null(), f"missing_field:{f.name}") for f in claim_fields if f.required),
        _code(pl.col("total") > MAX_FEN, "too_large:total"),
        _code(pl.col("_conflicts").list.len() > 0, "conflicting_claim_fields"),
    ).list.drop_nulls().alias(CODES))
    agg = claim_checks(agg)
    good = (pl.col(CODES).list.len() == 0) & ~pl.col("_bad_lines")
    claims = agg.filter(good).select(*(pl.col(c).cast(t) for c, t in CLAIMS_SCHEMA.items() if c != "has_items"),
                                     has_items=pl.lit(True))
    keyed = lines.join(agg.select("claim_id", claim_row="row", _claim_codes=CODES, _claim_ok=good,
                                  _conflicts="_conflicts"), on="claim_id", how="left", maintain_order="left")
    line_codes = pl.concat_list(CODES, pl.col("_claim_codes").fill_null([])).list.unique(maintain_order=True)
    keyed = keyed.with_columns(
        pl.when((line_codes.list.len() == 0) & ~pl.col("_claim_ok"))
        .then(pl.lit(["claim_has_bad_line"])).otherwise(line_codes).alias(CODES),
        pl.col("_conflicts").list.join(", ").alias("_conflicts"),
    )
    is_bad = pl.col(CODES).list.len() > 0
    items_out = keyed.filter(~is_bad).select(pl.col("claim_row"), *(f.name for f in ITEM_FIELDS))
    cross = ["total", "self_pay", "class_b", "admit_date", "discharge_date"]
    bad = keyed.filter(is_bad).drop(*cross, strict=False).join(agg.select("claim_id", *cross), on="claim_id",
                                                               how="left", maintain_order="left")
    return claims, items_out, bad


# --- reject messages ------------------------------------------------------------------------------

_CELL_MESSAGES: dict[str, tuple[str, str]] = {
    "missing_field": ("{col} is empty, but it is required", "{col}为空，但这是必填项"),
    "bad_date": ("{col} has {val}, which is not a date (use YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)",
                 "{col}的值{val}不是有效日期（应为 YYYY-MM-DD、YYYY/MM/DD 或 YYYYMMDD）"),
    "not_a_number": ("{col} has {val}, which is not a number", "{col}的值{val}不是数字"),
    "sub_fen": ("{col} has {val}, which has more than two decimals (less than one fen)",
                "{col}的值{val}超过两位小数（不足一分）"),
    "too_large": ("{col} has {val}, which is more than " + f"{MAX_YUAN} yuan",
                  "{col}的值{val}超过上限 " + f"{MAX_YUAN} 元"),
    "negative_amount": ("{col} has {val}, which is negative", "{col}的值{val}为负数"),
    "negative_number": ("{col} has {val}, which is negative", "{col}的值{val}为负数"),
    "unknown_code": ("{col} has {val}, which is not a known value; allowed: {allowed}",
                     "{col}的值{val}无法识别；允许：{allowed}"),
    "not_a_bool": ("{col} has {val}, which is not yes or no (use 是/否, Y/N, 1/0 or true/false)",
                   "{col}的值{val}不是“是/否”（应为 是/否、Y/N、1/0 或 true/false）"),
}
_ROW_MESSAGES: dict[str, tuple[str, str]] = {
    "field_count": ("the row has {found} fields but the header has {expected}",
                    "该行有 {found} 个字段，而表头有 {expected} 个"),
    "discharge_before_admit": ("the discharge date {discharge_date} is before the admission date {admit_date}",
                               "出院日期 {discharge_date} 早于入院日期 {admit_date}"),
    "self_pay_above_total": ("the self-paid amount {self_pay} is more than the total {total}",
                             "全自费金额 {self_pay} 大于医疗费总额 {total}"),
    "class_b_above_in_scope": ("the class B amount {class_b} is more than the in-scope amount "
                               "(total {total} minus self-paid {self_pay})",
                               "乙类金额 {class_b} 大于政策范围内金额（医疗费总额 {total} 减全自费金额 {self_pay}）"),
    "conflicting_claim_fields": ("the lines of claim {claim_id} disagree on {conflicts}",
                                 "结算单 {claim_id} 的各明细行在 {conflicts} 上不一致"),
    "claim_has_bad_line": ("another line of claim {claim_id} is rejected, so the whole claim is held back",
                           "结算单 {claim_id} 的其他明细行有错误，整张结算单暂不结算"),
}


def build_rejects(bad: pl.DataFrame, cells: pl.DataFrame, raw: pl.DataFrame, headers: Mapping[str, str],
                  *, expected: int) -> pl.DataFrame:
    """Bad rows (``row``, ``claim_id``, ``_codes``, typed values) → the rejects table with messages.

    ``cells`` holds the text as read (to quote the bad value back), ``raw`` the original line or
    cells per row, ``headers`` the original header of each canonical column. Python runs here only
    over the rejected rows.
    """
    if bad.height == 0:
        return REJECTS_SCHEMA.to_frame()
    text_cols = [c for c in cells.columns if c not in ("row", CODES, "_nfields")]
    extra = [c for c in ("total", "self_pay", "class_b", "admit_date", "discharge_date", "_conflicts")
             if c in bad.columns]
    joined = (bad.select("row", "claim_id", CODES, *extra)
              .join(cells.select("row", "_nfields", *(pl.col(c).alias(f"text:{c}") for c in text_cols)), on="row",
                    how="left", maintain_order="left")
              .join(raw, on="row", how="left", maintain_order="left"))
    out: dict[str, list] = {name: [] for name in REJECTS_SCHEMA}
    for rec in joined.iter_rows(named=True):
        pairs = [_message(code, rec, headers, expected) for code in rec[CODES]]
        out["row"].append(rec["row"])
        out["claim_id"].append(rec["claim_id"])
        out["reason"].append(";".join(rec[CODES]))
        sentence = "; ".join(p[0] for p in pairs)
        out["message_en"].append(sentence[:1].upper() + sentence[1:] + ".")
        out["message_zh"].append("；".join(p[1] for p in pairs) + "。")
        out["raw"].append(rec.get("raw"))
    return pl.DataFrame(out, schema=REJECTS_SCHEMA)


def _message(code: str, rec: dict, headers: Mapping[str, str], expected: int) -> tuple[str, str]:
    kind, _, name = code.partition(":")
    if kind in _CELL_MESSAGES:
        f = ALL_FIELDS[name]
        header = headers.get(name, name)
        col_en = f'column "{header}"' + (f" ({name})" if header != name else "")
        value = rec.get(f"text:{name}")
        allowed = ", ".join(map(str, HOSPITAL_LEVELS if name == "hospital_level" else f.choices))
        en, zh = _CELL_MESSAGES[kind]
        return (en.format(col=col_en, val=repr(value), allowed=allowed),
                zh.format(col=f"列“{header}”" + (f"（{f.zh}）" if header == name else ""), val=f"“{value}”",
                          allowed=allowed))
    values = {k: _show(v) for k, v in rec.items() if k in ("total", "self_pay", "class_b", "admit_date",
                                                           "discharge_date", "claim_id", "_conflicts")}
    conflicts = ", ".join(headers.get(n, n) for n in values.pop("_conflicts", "").split(", ") if n)
    values = {"found": rec.get("_nfields"), "expected": expected, "conflicts": conflicts, **values}
    en, zh = _ROW_MESSAGES.get(code, (code, code))
    return en.format(**values), zh.format(**values)


def _show(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return fen_to_yuan(value)
    return "" if value is None else str(value)
