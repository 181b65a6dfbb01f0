"""Vectorised parsing of claims cells (all text) into the canonical, typed claims and items tables.

Why: a batch may hold a million rows, so each column is parsed once with Polars expressions — cast
with ``strict=False`` and compare nulls to find the bad cells — instead of a Python loop per row.
Every expression yields a value and an error code (``bad_date:admit_date``, …); a row with any code
goes to the rejects, so no row is ever settled on a value we could not read. All columns come from
the registry in ``fields.py``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache

import polars as pl

from medins.claims.aliases import HOSPITAL_LEVELS, reject_message, value_table
from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS, Field
from medins.money import MAX_FEN, Stages, amount_plan, is_plain_yuan, plain_yuan_fen, to_fen
from medins.textnorm import nfkc, nfkc_series

KIND_DTYPE: dict[str, pl.DataType] = {
    "str": pl.String(), "date": pl.Date(), "bool": pl.Boolean(), "int": pl.Int64(), "money": pl.Int64(),
    "list": pl.List(pl.String()),
}
#: Working column of error codes joined by ";" — null when the row is fine (string ops beat list ops).
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


def join_codes(*codes: pl.Expr) -> pl.Expr:
    """Codes (null = none) joined by ";"; null when there are none."""
    joined = pl.concat_str(list(codes), separator=";", ignore_nulls=True)
    return pl.when(joined != "").then(joined)


def declared_codes(user_values: Mapping | None) -> list[str]:
    """Codes a ``--map`` (or a policy's ``vocabulary:``) declares by mapping a code to itself.

    Why identity entries: ``values: {item_category: {xyz: xyz}}`` says "xyz is a code here" in the
    words the map already has; a map onto another unknown code (``美容: cosmetics``) stays refused.
    """
    return [str(v) for k, v in (user_values or {}).items() if v is not None and str(k).strip().lower() == str(v).lower()]


def _plan(f: Field, user_values: Mapping | None, *, required: bool,
          trimmed: bool = False) -> tuple[Stages, pl.Expr, pl.Expr]:
    """:func:`field_plan`, built once in a process for a field, its ``--map`` values, whether it is required and
    whether its cells are known to be trimmed.

    Why: a plan is a few dozen expressions, and building them in Python cost every piece of a large file
    (13 columns) several milliseconds; the expressions are immutable, so pieces parsed on threads share them.
    """
    return _cached_plan(f, tuple(user_values.items()) if user_values else None, required, trimmed)


@lru_cache(maxsize=1024)
def _cached_plan(f: Field, user_values: tuple | None, required: bool,
                 trimmed: bool = False) -> tuple[Stages, pl.Expr, pl.Expr]:
    return field_plan(f, dict(user_values) if user_values else None, required=required, trimmed=trimmed)


@lru_cache(maxsize=1024)
def _absent(f: Field, defaults: bool) -> pl.Expr:
    """The column of a field the file does not have: its default (or null) on every row."""
    return pl.lit(default_of(f) if defaults else None, KIND_DTYPE[f.kind]).alias(f.name)


def field_plan(f: Field, user_values: Mapping | None, *, required: bool,
               trimmed: bool = False) -> tuple[Stages, pl.Expr, pl.Expr]:
    """How to read the text column ``f.name``: temporary columns by stage, the typed value, the error code.

    Why stages: each intermediate (trimmed text, cleaned digits, regex groups) is materialised once
    as a column; written as one nested expression Polars would recompute it for every use. ``trimmed``:
    no cell has whitespace to strip (``readers.no_whitespace``), so the column is read as it is.
    """
    def tmp(tag: str) -> pl.Expr:
        return pl.col(f"_{tag}:{f.name}")

    # blank → null by ``replace``: a when/then would strip the column twice (half of a text column's cost)
    stripped = pl.col(f.name).cast(pl.String)
    if not trimmed:
        stripped = stripped.str.strip_chars()
    stages: Stages = [[stripped.replace("", None).alias(f"_s:{f.name}")]]
    table = {nfkc(k): v for k, v in value_table(f, user_values).items()}  # cells are NFKC too
    mapped = tmp("s")
    if table:
        mapped = mapped.str.to_lowercase().replace_strict(list(table), list(table.values()), default=tmp("s"),
                                                          return_dtype=pl.String)
    stages.append([mapped.alias(f"_t:{f.name}")])
    text, value = tmp("t"), tmp("v")
    codes: list[pl.Expr] = [_code(text.is_null(), f"missing_field:{f.name}")] if required else []
    if f.kind == "str":
        parsed = text
        if f.choices:
            codes.append(_code(~value.is_in([*f.choices, *declared_codes(user_values)]), f"unknown_code:{f.name}"))
    elif f.kind == "date":
        parsed = parse_date(text)
        codes.append(_code(text.is_not_null() & value.is_null(), f"bad_date:{f.name}"))
    elif f.kind == "bool":
        parsed = pl.when(text == "true").then(True).when(text == "false").then(False)
        codes.append(_code(text.is_not_null() & value.is_null(), f"not_a_bool:{f.name}"))
    elif f.kind == "int":
        digits = text.str.replace(r"\.0*$", "")
        parsed = pl.when(digits.str.contains(r"^[+-]?\d{1,18}$")).then(digits.cast(pl.Int64, strict=False))
        codes.append(_code(text.is_not_null() & value.is_null(), f"not_a_number:{f.name}"))
        if f.name == "hospital_level":
            codes.append(_code(~value.is_in(HOSPITAL_LEVELS), f"unknown_code:{f.name}"))
        else:
            codes.append(_code(value < f.minimum, f"{'negative_number' if f.minimum == 0 else 'below_minimum'}:{f.name}"))
    elif f.kind == "money":
        money_stages, parsed, code = amount_plan(text, f.name)
        stages += money_stages
        codes.append(code)
    else:  # list: codes or names separated by ; ； or |
        parts = (text.str.split(r"\s*[;；|]\s*", literal=False)
                 .list.eval(pl.element().filter(pl.element() != "")))
        parsed = pl.when(parts.list.len() > 0).then(parts)
    stages.append([parsed.alias(f"_v:{f.name}")])
    stages.append([(pl.coalesce(codes) if codes else pl.lit(None, pl.String)).alias(f"_e:{f.name}")])
    return stages, pl.when(tmp("e").is_null()).then(value), tmp("e")  # a bad cell has no value


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
            pl.when(long).then(
                with_time.str.strptime(pl.Datetime, f"{fmt} %H:%M:%S%.f", strict=False).dt.date())))

    compact = pl.when(text.str.contains(r"^\d{8}$")).then(text.str.to_date("%Y%m%d", strict=False))
    return pl.coalesce(dated("-"), dated("/"), compact)


#: A column of these kinds (or with a value table or a closed list of codes) usually repeats a few hundred
#: cells over a million rows (dates, visit types, 是/否): it is read once per distinct cell.
_REPETITIVE_KINDS = frozenset({"date", "bool", "list"})
#: ... unless its cells are this diverse (distinct cells per row): then it is read cell by cell.
_DISTINCT_AT_MOST = 0.25


def parse_fields(raw: pl.DataFrame, fields: Collection[Field], values: Mapping, *, required: Collection[str],
                 defaults: bool = True, trimmed: bool = False) -> pl.DataFrame:
    """``row`` + one typed column per field (absent columns and empty cells take the default) + codes.

    A cell's value and error code depend on its text alone, so a repetitive column (dates, codes,
    是/否) is parsed on its distinct cells and given back to its rows by position: the same plan, on a few
    hundred cells instead of a million; the distinct cells of all such columns are parsed together, in one
    pass of the plans' stages. A money column is read by a decimal cast where its cells are plain yuan
    (nearly all); only its other cells go through the whole grammar (``money.amount_plan``). ``trimmed``: no cell
    of ``raw`` holds a whitespace character (``readers.no_whitespace``), so a column read as written (ids,
    names) is not stripped; a normalised one still is (NFKC makes spaces of other characters).
    """
    exprs: list[pl.Expr] = [pl.col("row")]
    codes: list[pl.Expr] = []
    stages: Stages = []
    distinct: list[_Part] = []  # read on their distinct cells
    money: list[_Part] = []  # read by the cast where plain
    present = set(raw.columns)
    found = _distinct_cells(raw, [f for f in fields if f.name in present], values)
    for f in fields:
        if f.name not in present:
            exprs.append(_absent(f, defaults))
            continue
        default = default_of(f) if defaults else None
        normalize = normalized(f, values)
        plan, value, code = _plan(f, values.get(f.name), required=f.name in required,
                                  trimmed=trimmed and not normalize)
        cells = found.get(f.name)
        if cells is not None:
            distinct.append(_Part(f, plan, value, code, normalize, cells))
            value, code = pl.col(f"_dv:{f.name}"), pl.col(f"_de:{f.name}")
        elif f.kind == "money" and not value_table(f, values.get(f.name)):
            money.append(_Part(f, plan, value, code, normalize))
            value, code = pl.col(f"_dv:{f.name}"), pl.col(f"_de:{f.name}")
        else:
            if normalize:
                raw = raw.with_columns(nfkc_series(raw[f.name]))
            stages += [[] for _ in range(len(plan) - len(stages))]
            for k, stage in enumerate(plan):
                stages[k] += stage
        value = value if default is None else value.fill_null(pl.lit(default))
        exprs.append(value.cast(KIND_DTYPE[f.kind]).alias(f.name))
        codes.append(code)
    read = [*_read_distinct(distinct), *_read_money(raw, money)]
    if read:
        raw = raw.with_columns(read)
        # a column read apart whose cells are all good has no code column: no row need look at it
        codes = [c for c in codes if not _dropped(c, raw.columns)]
    for stage in stages:
        raw = raw.with_columns(stage)
    reader = [pl.col(CODES)] if CODES in raw.columns else []
    codes_expr = join_codes(*codes) if codes else pl.lit(None, pl.String)
    if reader:  # a reader's verdict on the whole row (field_count) replaces cell codes
        codes_expr = pl.coalesce(*reader, codes_expr)
    return raw.select(*exprs).with_columns(sparse(raw, [*reader, *codes], codes_expr).alias(CODES))


def _dropped(code: pl.Expr, columns: Collection[str]) -> bool:
    """Whether ``code`` is the code column of a field read apart that was not made (no cell of it was bad)."""
    return code.meta.is_column() and code.meta.output_name().startswith("_de:") and code.meta.output_name() not in columns


class _Part:
    """A field read apart from the other columns: its plan (``field_plan``), and its distinct cells if so read.

    A plain class, not a dataclass (as the engine's working classes): never compared, hashed or copied, and a frozen
    dataclass's generated methods cost every ``medins calc``'s import ~0.7 ms."""

    __slots__ = ("cells", "code", "field", "normalize", "plan", "value")

    def __init__(self, field: Field, plan: Stages, value: pl.Expr, code: pl.Expr, normalize: bool,
                 cells: _Cells | None = None) -> None:
        self.field, self.plan, self.value, self.code, self.normalize, self.cells = field, plan, value, code, normalize, cells


class _Cells:
    """A column's distinct cells (the text ones, then the null cell if any) and, for each row, the index of its own.

    A plain class, as :class:`_Part`."""

    __slots__ = ("cells", "positions")

    def __init__(self, cells: pl.Series, positions: pl.Series) -> None:
        self.cells, self.positions = cells, positions


def _run(cells: pl.DataFrame, parts: Sequence[_Part], keep: str | None = None) -> pl.DataFrame:
    """The plans of ``parts`` on their columns of ``cells``: (``keep``,) ``_dv:<name>`` value and ``_de:<name>``
    code of each, the plans' stages run together (stage k of every plan in one pass)."""
    normal = [p.field.name for p in parts if p.normalize]
    if normal:
        cells = cells.with_columns(nfkc_series(cells[name]) for name in normal)
    for k in range(max(len(p.plan) for p in parts)):
        cells = cells.with_columns(e for p in parts if k < len(p.plan) for e in p.plan[k])
    return cells.select(*([keep] if keep else []), *(e for p in parts for e in (
        p.value.alias(f"_dv:{p.field.name}"), p.code.alias(f"_de:{p.field.name}"))))


def _read_distinct(parts: Sequence[_Part]) -> list[pl.Series]:
    """``_dv``/``_de`` columns of fields read on their distinct cells (no ``_de`` when every cell is good): the
    plans run once on the distinct cells of every such column (side by side, the shorter columns padded with
    nulls no row points at), each row then given its cell's value and code by position.

    Why this is exact: a row's value is its own cell's, whichever the row, and ``_distinct_cells`` gives each row
    the index of its own text among the cells (the code of a categorical of the column's texts alone).
    """
    if not parts:
        return []
    found = [p.cells for p in parts]
    height = max(f.cells.len() for f in found)  # type: ignore[union-attr]
    cells = pl.DataFrame([f.cells.extend_constant(None, height - f.cells.len()) for f in found])  # type: ignore[union-attr]
    table = _run(cells, parts).rechunk()  # one chunk: a gather from several costs up to six times more
    out: list[pl.Series] = []
    for p, f in zip(parts, found, strict=True):
        name = p.field.name
        at = f.positions  # type: ignore[union-attr]
        out.append(table[f"_dv:{name}"].gather(at))
        if table[f"_de:{name}"].head(f.cells.len()).null_count() < f.cells.len():  # type: ignore[union-attr]
            out.append(table[f"_de:{name}"].gather(at))
    return out


def _read_money(raw: pl.DataFrame, parts: Sequence[_Part]) -> list[pl.Series]:
    """``_dv``/``_de`` of money columns (no ``_de`` when every cell is plain): plain yuan cells by a decimal cast,
    the others by the whole plan.

    Why this is exact: a plain cell (``money.is_plain_yuan``) is ASCII digits, so trimming and NFKC leave
    it as it is, and the plan reads it with this very cast and no code. The rest (blank, ``¥1,200``,
    full-width, bad) are few, and get the plan's value and code by position. Every money column's test and
    cast run in one pass.
    """
    if not parts:
        return []
    texts = {p.field.name: pl.col(p.field.name).cast(pl.String) for p in parts}
    fast = raw.select(e for name, text in texts.items()
                      for e in (is_plain_yuan(text).alias(f"_p:{name}"), plain_yuan_fen(text).alias(f"_dv:{name}")))
    out: list[pl.Series] = []
    for p in parts:
        name = p.field.name
        fen = fast[f"_dv:{name}"]
        at = fast[f"_p:{name}"].not_().arg_true()
        if at.len():  # the cast's value of a cell that is not plain is replaced by the plan's
            other = _run(raw.select(name)[at], [p])
            fen = fen.scatter(at, other[f"_dv:{name}"])
            out.append(nulls(f"_de:{name}", raw.height).scatter(at, other[f"_de:{name}"]))
        out.append(fen)
    return out


def sparse(frame: pl.DataFrame, codes: Sequence[pl.Expr], value: pl.Expr) -> pl.Series:
    """``value`` evaluated only on the rows of ``frame`` where one of ``codes`` is not null; null elsewhere.

    Why: a ``value`` that joins codes into text costs more over a million rows than parsing a column,
    and nearly every row has no code; which rows have one is a cheap null test. ``value`` must be null
    where every one of ``codes`` is (as :func:`join_codes` is).
    """
    empty = nulls(CODES, frame.height)
    if not codes:
        return empty
    at = frame.select(pl.arg_where(pl.any_horizontal(c.is_not_null() for c in codes))).to_series()
    if at.len() == 0:
        return empty
    return empty.scatter(at, frame[at].select(value.cast(pl.String)).to_series())


def nulls(name: str, height: int) -> pl.Series:
    """A text column of ``height`` nulls (repeated from one null: ``pl.repeat`` took 0.13 ms, this 6 µs)."""
    return _NULL.new_from_index(0, height).alias(name)


_NULL = pl.Series("", [None], dtype=pl.String)


def normalized(f: Field, values: Mapping) -> bool:
    """Whether cells of ``f`` are read after NFKC: numbers, dates, yes/no and codes are; identifiers and
    names (claim and person ids, hospital, item and diagnosis names) are kept as written, trimmed only.

    Why not names: NFKC turns ``（东院）`` into ``(东院)``, which then no longer equals the name as the
    policy's list of designated hospitals writes it; an id must be echoed back exactly as given.
    """
    return f.kind not in ("str", "list") or bool(f.choices) or bool(value_table(f, values.get(f.name))) \
        or f.name == "item_category"


def _distinct_cells(raw: pl.DataFrame, fields: Sequence[Field], values: Mapping) -> dict[str, _Cells]:
    """The distinct cells of each repetitive text column among ``fields``, and each row's index among them; a
    column not listed is parsed cell by cell (not repetitive, not text, or too diverse).

    Found in one pass over each column: a cast to a categorical whose categories are new (``Categories.random``),
    so its codes number the column's own texts from 0 in the order they are met, the categories listing them.
    Why: one hash lookup a cell gives both the cells and each row's position, exactly (a text is its own key).
    A column of a very few texts (visit types, 是/否) is read by comparisons instead (:func:`_few_cells`).
    """
    names = [f.name for f in fields if (f.kind in _REPETITIVE_KINDS or f.choices or value_table(f, values.get(f.name)))
             and raw.schema[f.name] in (pl.String, pl.Null)]
    if not names:
        return {}
    out: dict[str, _Cells] = {}
    for name in names:
        few = _few_cells(raw[name]) if raw.schema[name] == pl.String else None
        if few is not None:
            out[name] = few
    names = [name for name in names if name not in out]
    if not names:
        return out
    most = max(16, raw.height * _DISTINCT_AT_MOST)
    categories = {name: pl.Categories.random() for name in names}
    # the categorical columns are kept until their categories are read: the categories live as long as a column
    coded = raw.select(pl.col(name).cast(pl.String).cast(pl.Categorical(categories[name])) for name in names)
    for name in names:
        text = categories[name].to_series().rechunk()  # copied out of the column, in one chunk
        at = coded[name].to_physical()
        if text.len() + (at.null_count() > 0) > most:
            continue
        if at.null_count():  # the null cell is last
            text, at = text.extend_constant(None, 1), at.fill_null(text.len())
        out[name] = _Cells(text.alias(name), at)
    return out


#: Texts a column may have to be read by comparisons (:func:`_few_cells`) rather than by a categorical cast.
_FEW_CELLS = 4
#: Rows at the top of a column whose texts are counted first: more than ``_FEW_CELLS`` of them, and the column is cast.
_FEW_SAMPLE = 256


def _few_cells(column: pl.Series) -> _Cells | None:
    """:func:`_distinct_cells` of a text column of at most ``_FEW_CELLS`` texts (None: more, or more at its top).

    Why: the categorical cast hashes every cell into a table (28M instructions for 125,000 dates or visit types); a
    column of three texts is read in a third of that by comparing it with each text in turn, found where no
    earlier text matched (a comparison of short texts is a compare of the cells' views). The same cells in the
    same order (as they are first met), the null cell last, and each row the index of its own text.
    """
    if column.head(_FEW_SAMPLE).drop_nulls().n_unique() > _FEW_CELLS:
        return None
    covered = column.is_null()
    cells: list[str] = []
    masks: list[pl.Series] = []
    while not covered.all():
        if len(cells) == _FEW_CELLS:
            return None
        cell = column[int((~covered).arg_max())]  # the first row no earlier text matched
        matched = column.eq_missing(cell)
        cells.append(cell)
        masks.append(matched)
        covered = covered | matched
    at = pl.lit(len(cells), pl.UInt32)  # a null cell: the null, last
    for k in reversed(range(len(cells))):
        at = pl.when(pl.col(f"m{k}")).then(pl.lit(k, pl.UInt32)).otherwise(at)
    positions = (pl.DataFrame({f"m{k}": m for k, m in enumerate(masks)}).select(at.alias(column.name)).to_series()
                 if masks else pl.zeros(column.len(), pl.UInt32, eager=True).alias(column.name))
    text = pl.Series(column.name, cells, pl.String)
    if column.null_count():
        text = text.extend_constant(None, 1)
    return _Cells(text, positions)


#: Payments given as already made by earlier payers (``amounts.paid``; docs/payers.md).
PAID_COLUMNS = tuple(f.name for f in CLAIM_FIELDS if f.name.startswith("paid_"))


def claim_checks(frame: pl.DataFrame) -> pl.DataFrame:
    """Add the cross-field codes (an absent discharge date stays absent: the engine assumes it, visibly)."""
    in_scope = pl.col("total") - pl.col("self_pay")
    checks = [
        _code(pl.col("discharge_date") < pl.col("admit_date"), "discharge_before_admit"),
        _code(pl.col("self_pay") > pl.col("total"), "self_pay_above_total"),
        _code((in_scope >= 0) & (pl.col("class_b") > in_scope), "class_b_above_in_scope"),
        _code(pl.sum_horizontal(*PAID_COLUMNS) > pl.col("total"), "paid_above_total"),
        _code((in_scope >= 0) & (pl.col("preselfpay") > in_scope), "preselfpay_above_in_scope"),
    ]
    return frame.with_columns(sparse(frame, [pl.col(CODES), *checks], join_codes(pl.col(CODES), *checks)).alias(CODES))


def claims_shape(raw: pl.DataFrame, values: Mapping, extra: Sequence[Field] = (), *,
                 trimmed: bool = False) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One claim per row → (claims, bad rows with ``_codes`` and the typed cross-field values).

    ``extra`` fields (the recorded settlement of ``medins audit``) are parsed like the others, after them.
    """
    required = [f.name for f in CLAIM_FIELDS if f.required]
    parsed = claim_checks(parse_fields(raw, (*CLAIM_FIELDS, *extra), values, required=required, trimmed=trimmed))
    ok = pl.col(CODES).is_null()
    claims = parsed.filter(ok).drop(CODES).with_columns(has_items=pl.lit(False))
    return claims, parsed.filter(~ok)


def items_shape(raw: pl.DataFrame, values: Mapping, extra: Sequence[Field] = (), *,
                trimmed: bool = False) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
    """One fee line per row, keyed by claim_id → (claims, items, bad lines).

    Why all-or-nothing: a claim settled without one of its lines would pay the wrong amount, so one
    bad line holds back every line of its claim (the good ones say ``claim_has_bad_line``). Claim-level
    cells may be blank on some lines (merged cells in Excel exports); non-blank ones must agree.
    """
    claim_fields = [f for f in (*CLAIM_FIELDS, *extra) if f.name != "total"]
    lines = parse_fields(raw, claim_fields, values, required=["claim_id"], defaults=False, trimmed=trimmed)
    items = parse_fields(raw.drop(CODES, strict=False), ITEM_FIELDS, values,
                         required=[f.name for f in ITEM_FIELDS if f.required], trimmed=trimmed)
    lines = lines.with_columns(items.drop("row", CODES)).with_columns(
        join_codes(pl.col(CODES), pl.lit(items[CODES])).alias(CODES))
    given = [f.name for f in claim_fields if f.name in raw.columns and f.name != "claim_id"]
    agg = lines.filter(pl.col("claim_id").is_not_null()).group_by("claim_id", maintain_order=True).agg(
        pl.col("row").first(),
        *(pl.col(f.name).drop_nulls().first() for f in claim_fields if f.name != "claim_id"),
        pl.col("item_amount").sum().alias("total"),
        pl.col(CODES).is_not_null().any().alias("_bad_lines"),
        pl.concat_str([pl.lit(None, pl.String), *(
            pl.when(pl.col(name).drop_nulls().n_unique() > 1).then(pl.lit(name)) for name in given
        )], separator=", ", ignore_nulls=True).alias("_conflicts"),
    )
    agg = agg.with_columns(
        pl.col(f.name).fill_null(pl.lit(default_of(f), KIND_DTYPE[f.kind]))
        for f in claim_fields if default_of(f) is not None
    ).with_columns(join_codes(
        *(_code(pl.col(f.name).is_null(), f"missing_field:{f.name}") for f in claim_fields if f.required),
        _code(pl.col("total") > MAX_FEN, "too_large:total"),
        _code(pl.col("_conflicts") != "", "conflicting_claim_fields"),
    ).alias(CODES))
    agg = claim_checks(agg)
    good = pl.col(CODES).is_null() & ~pl.col("_bad_lines")
    claims = agg.filter(good).with_columns(has_items=pl.lit(True)).select(
        *(pl.col(c).cast(t) for c, t in CLAIMS_SCHEMA.items()), *(pl.col(f.name) for f in extra))
    keyed = lines.join(agg.select("claim_id", claim_row="row", _claim_codes=CODES, _claim_ok=good,
                                  _conflicts="_conflicts"), on="claim_id", how="left", maintain_order="left")
    # a line's own codes, then its claim's; claim-level codes never repeat line-level ones
    line_codes = join_codes(pl.col(CODES), pl.col("_claim_codes"))
    keyed = keyed.with_columns(
        pl.when(line_codes.is_null() & ~pl.col("_claim_ok")).then(pl.lit("claim_has_bad_line"))
        .otherwise(line_codes).alias(CODES))
    is_bad = pl.col(CODES).is_not_null()
    items_out = keyed.filter(~is_bad).select(pl.col("claim_row"), *(f.name for f in ITEM_FIELDS))
    cross = ["total", "self_pay", "class_b", "preselfpay", "admit_date", "discharge_date"]
    bad = keyed.filter(is_bad).drop(*cross, strict=False).join(agg.select("claim_id", *cross), on="claim_id",
                                                               how="left", maintain_order="left")
    return claims, items_out, bad


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
    extra = [c for c in ("total", "self_pay", "class_b", "preselfpay", "admit_date", "discharge_date", "_conflicts")
             if c in bad.columns]
    # the few bad rows' cells first: joining the whole (million-row) text table would copy every cell
    cells = cells.filter(pl.col("row").is_in(bad["row"].implode()))
    joined = (bad.select("row", "claim_id", CODES, *extra)
              .join(cells.select("row", "_nfields", *(pl.col(c).alias(f"text:{c}") for c in text_cols)),
                    on="row", how="left", maintain_order="left")
              .join(raw, on="row", how="left", maintain_order="left"))
    out: dict[str, list] = {name: [] for name in REJECTS_SCHEMA}
    for rec in joined.iter_rows(named=True):
        pairs = [reject_message(code, rec, headers, expected) for code in rec[CODES].split(";")]
        out["row"].append(rec["row"])
        out["claim_id"].append(rec["claim_id"])
        out["reason"].append(rec[CODES])
        sentence = "; ".join(p[0] for p in pairs)
        out["message_en"].append(sentence[:1].upper() + sentence[1:] + ".")
        out["message_zh"].append("；".join(p[1] for p in pairs) + "。")
        out["raw"].append(rec.get("raw"))
    return pl.DataFrame(out, schema=REJECTS_SCHEMA)
