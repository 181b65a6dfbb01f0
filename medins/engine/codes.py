"""Reason and assumption codes as bit patterns, joined into text once.

Why: a claim's reasons (``not_designated;late_claim``) and assumptions (``visit_type=inpatient``) are
built by many conditions, one after another. Appending text to a million rows for each condition
costs a string column per condition; here each code is one bit of an integer column, set with ``|``
inside the stage's own query (a cheap integer operation fused with the rest), and the text is
assembled once, at the end, for the few distinct patterns only: the rows take theirs by a lookup.

A code may also be an expression of the row (``excluded_cause:<cause>``, ``zone_not_settled:<zone>``):
its value is kept in a text column where its flag holds, and the lookup is keyed by those values too
(they are few: zones, causes, levels). The joined text lists the codes in the order they were added
— exactly the order the former one-append-per-condition passes gave — and is null when no code holds.
"""

from __future__ import annotations

import polars as pl

#: Bits per Int64 pattern column (the sign bit unused, one spare).
BITS = 62


class Codes:
    """The codes added so far to one ``;``-joined column (``_reasons``, ``_assumed``), in order.

    ``entries[k]`` is code ``k``: its text, or None when the text is the row's value in column
    :meth:`value_column` ``(k)``. Bit ``k % BITS`` of :meth:`bits_column` ``(k // BITS)`` says it holds.
    """

    def __init__(self, column: str, entries: list[str | None] | None = None, prefixes: dict[int, str] | None = None
                 ) -> None:
        """(A plain class, not a dataclass: never compared or copied, and a dataclass's generated methods cost every
        ``medins calc``'s import ~0.4 ms.) ``prefixes``: the text before a value code's value
        (``excluded_cause:``), by code number."""
        self.column = column
        self.entries: list[str | None] = [] if entries is None else entries
        self.prefixes: dict[int, str] = {} if prefixes is None else prefixes

    def bits_column(self, chunk: int) -> str:
        return f"{self.column}_bits{chunk}"

    def value_column(self, k: int) -> str:
        return f"{self.column}_code{k}"

    def add(self, code: str | pl.Expr, flag: pl.Expr, *, prefix: str = "") -> list[pl.Expr]:
        """The columns that add ``code`` where ``flag`` holds (null counts as false): to be evaluated in order,
        on the frame as it is at this point (a later step may change the columns ``flag`` reads).

        A value code (an expression: text or whole numbers) adds ``prefix`` and the row's value: the value is kept
        as it is and the text made once per distinct value (no string built per row). A null value adds nothing.
        """
        k = len(self.entries)
        chunk, bit = divmod(k, BITS)
        on = flag.fill_null(False)
        name = self.bits_column(chunk)
        before = pl.col(name) if bit else pl.lit(0, pl.Int64)  # the first code of a chunk starts its column
        exprs = [(before | pl.when(on).then(pl.lit(1 << bit, pl.Int64)).otherwise(pl.lit(0, pl.Int64))).alias(name)]
        if isinstance(code, pl.Expr):
            exprs.append(pl.when(on).then(code).otherwise(None).alias(self.value_column(k)))
            self.entries.append(None)
            self.prefixes[k] = prefix
        else:
            self.entries.append(code)
        return exprs

    def truncate(self, size: int) -> None:
        """Forget the codes added after the first ``size`` (a stage that starts again: ``Run.deferred``)."""
        del self.entries[size:]
        self.prefixes = {k: p for k, p in self.prefixes.items() if k < size}

    def columns(self) -> list[str]:
        """The bit-pattern and value columns the codes live in, until :meth:`joined`."""
        chunks = (len(self.entries) + BITS - 1) // BITS
        return [*(self.bits_column(c) for c in range(chunks)),
                *(self.value_column(k) for k, code in enumerate(self.entries) if code is None)]

    def text(self, patterns: tuple[int, ...], values: dict[int, object]) -> str | None:
        """The joined codes of one pattern (``values``: the row's text of each value code), null when none."""
        out: list[str] = []
        for k, code in enumerate(self.entries):
            chunk, bit = divmod(k, BITS)
            if not patterns[chunk] >> bit & 1:
                continue
            if code is not None:
                out.append(code)
            elif (value := values.get(k)) is not None:  # without a value nothing is added (``concat_str`` ignoring nulls)
                out.append(self.prefixes[k] + _as_text(value))
        return ";".join(out) if out else None

    def joined(self, frame: pl.DataFrame) -> pl.Series:
        """The ``;``-joined codes of every row of ``frame`` (which holds :meth:`columns`), null where none.

        Why two steps: the text of a pattern of fixed codes is looked up by the pattern alone (an integer: one
        ``unique`` and one ``replace``); only rows where a code's text is the row's own value (few) are keyed by
        those values too.
        """
        keys = self.columns()
        if not keys or frame.height == 0:  # (``replace_strict`` of no rows keeps the integer type)
            return pl.repeat(None, frame.height, dtype=pl.String, eager=True).alias(self.column)
        chunks = (len(self.entries) + BITS - 1) // BITS
        valued = [k for k, code in enumerate(self.entries) if code is None]
        if chunks > 1:
            return self._by_values(frame, keys, chunks, valued)
        bits = frame[keys[0]]
        patterns = bits.unique()
        texts = [self.text((p,), {}) for p in patterns.to_list()]
        has_value = ((bits & sum(1 << k for k in valued)) != 0) if valued else None
        if has_value is None or not has_value.any():
            return pl.Series(self.column, texts, dtype=pl.String)[positions(bits, patterns)]
        # Rows with a value code take their text from the distinct combinations of their keys: each row's number in
        # one table of texts (the patterns', then those combinations'), placed as integers, then one gather of the
        # texts (placing texts themselves row by row rebuilds the whole text column).
        from medins.engine.context import _distinct  # context imports this module

        # Keyed only by the columns that can tell the rows apart: the pattern when there are several, and the value
        # columns not null throughout (a hospital fact no listed hospital gives, say); a column left out holds one
        # value on every row (``_distinct`` hashes and compares each key column of every row).
        kept = [k for k in valued if frame[self.value_column(k)].null_count() < frame.height]
        used = [*([keys[0]] if patterns.len() > 1 else []), *(self.value_column(k) for k in kept)]
        rows = frame.select(used or keys[:1]).filter(has_value)  # the key columns only: the frame is wide
        index, distinct = _distinct(rows, used)
        combinations = distinct.select(used).iter_rows() if used else [()]
        if patterns.len() == 1:  # every row's pattern is the one pattern
            combinations = ((patterns[0], *values) for values in combinations)
        texts += [self.text(values[:1], dict(zip(kept, values[1:], strict=True))) for values in combinations]
        at = positions(bits, patterns).scatter(has_value.arg_true(), index + patterns.len())
        return pl.Series(self.column, texts, dtype=pl.String)[at]

    def _by_values(self, frame: pl.DataFrame, keys: list[str], chunks: int, valued: list[int]) -> pl.Series:
        """The joined codes keyed by every pattern and value column (distinct combinations evaluated once)."""
        from medins.engine.context import _distinct  # context imports this module

        index, distinct = _distinct(frame.select(keys), keys)
        texts = [self.text(tuple(row[:chunks]), dict(zip(valued, row[chunks:], strict=True)))
                 for row in distinct.iter_rows()]
        return pl.Series(self.column, texts, dtype=pl.String)[index]

    def finish(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``frame`` with the joined column in place of the bit-pattern and value columns; no codes kept after."""
        present = [c for c in self.columns() if c in frame.columns]
        if len(present) != len(self.columns()):
            raise AssertionError(f"codes of {self.column} lost columns")
        out = replace_columns(frame, present, self.joined(frame))
        self.entries, self.prefixes = [], {}
        return out


def replace_columns(frame: pl.DataFrame, drop: list[str], *add: pl.Series) -> pl.DataFrame:
    """``frame`` without the columns ``drop``, with ``add`` (in place of a column of the same name, else last).

    Why not ``drop(...).with_columns(...)``: each is a query of its own; this only rearranges the columns. And not
    a new frame of the kept columns' list: building one reads every column in Python (~0.7 ms on a stage's
    hundred-odd columns, a dozen times a bill); a copy of the frame (its columns shared, not copied) changed in
    place by Polars' own column operations gives the same frame for a fraction.
    """
    new = {s.name: s for s in add}
    out = frame.clone()  # the columns shared: ``frame`` itself is never changed
    for name in dict.fromkeys(drop):
        if name in out.columns:
            out.drop_in_place(name)
    at = {name: i for i, name in enumerate(out.columns)}
    appended = []
    for name, column in new.items():
        if name in at:
            out.replace_column(at[name], column)
        else:
            appended.append(column)
    return out.hstack(appended, in_place=True) if appended else out


#: Up to this many distinct values :func:`positions` looks for a modulus that tells them apart, among moduli up to
#: ``MODULI`` times their number (a table of that many entries).
FEW_VALUES, MODULI = 64, 64


def positions(values: pl.Series, distinct: pl.Series) -> pl.Series:
    """For each of ``values`` (unsigned or not-negative integers, no null, each one of ``distinct``) its position in
    ``distinct`` (distinct values), as UInt32: ``replace_strict(distinct, 0..k-1)``.

    Why: ``replace_strict`` is a hashed look-up (a join) costing ~4 ms on 250k rows however few the values. For a
    few values a modulus ``m`` leaving them distinct remainders is found by trying (the remainders of a handful of
    values are soon all different), and each row reads its position from a table of ``m`` entries at its remainder:
    one remainder and one gather (~0.8 ms). Exact: every row's value is one of ``distinct``, whose remainders
    differ, so the entry at its remainder is its own. Otherwise (many values, no such modulus, a negative value)
    the hashed look-up.
    """
    k = distinct.len()
    if 0 < k <= FEW_VALUES and not values.null_count() and not distinct.null_count() and (
            values.dtype.is_unsigned_integer() or (values.dtype.is_integer() and (distinct.min() or 0) >= 0)):
        known = distinct.to_list()
        # The low bits first (a bitwise and, ~0.06 ms on 250k rows, where a remainder costs ~1.6 ms): bit patterns of
        # codes and hashes mostly differ there.
        for b in range((k - 1).bit_length(), (MODULI * k).bit_length()):
            mask = (1 << b) - 1
            if len({v & mask for v in known}) == k:
                table = [0] * (mask + 1)
                for j, v in enumerate(known):
                    table[v & mask] = j
                return pl.Series(values.name, table, dtype=pl.UInt32)[values & mask]
        for m in range(k, MODULI * k + 1):
            if len({v % m for v in known}) == k:
                table = [0] * m
                for j, v in enumerate(known):
                    table[v % m] = j
                # by indexing: ``gather`` is a query of its own (on a bill, a query costs more than the rows)
                return pl.Series(values.name, table, dtype=pl.UInt32)[values % m]
    # (the positions as a Series built from a range: an eager ``int_range`` is a query of its own, on a bill too)
    return values.replace_strict(distinct, pl.Series(range(k), dtype=pl.UInt32), return_dtype=pl.UInt32)


def _as_text(value: object) -> str:
    """A value as Polars casts it to text (the text codes were built with before they were bits)."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return pl.Series([value]).cast(pl.String)[0]


def lists_by_pattern(codes: list[str], patterns: list[pl.Series]) -> pl.Series:
    """Per row, the list of ``codes`` whose bit is set (code k: bit k % BITS of ``patterns[k // BITS]``), in order.

    Why: a list column built check by check rebuilds a million lists each time; the few distinct
    patterns become lists once, and the rows take theirs.
    """
    out = None
    for c, bits in enumerate(patterns):
        chunk = codes[c * BITS:(c + 1) * BITS]
        distinct = bits.unique()
        lists = pl.Series([[code for k, code in enumerate(chunk) if p >> k & 1] for p in distinct.to_list()],
                          dtype=pl.List(pl.String))
        part = lists[positions(bits, distinct)]
        out = part if out is None else pl.select(pl.concat_list(pl.lit(out), pl.lit(part))).to_series()
    if out is None:
        raise ValueError("no codes")
    return out


def texts_by_pattern(codes: list[str], patterns: list[pl.Series]) -> pl.Series:
    """Per row, the ``codes`` whose bit is set joined by ";" in order (null when none): :func:`lists_by_pattern`
    as text, the form the engine holds its code columns in until the settlement (``_reasons``, ``_assumed``).

    Why text: a batch writes the codes joined; a list per row would be joined again for a million rows.
    """
    if not patterns:
        raise ValueError("no codes")
    if patterns[0].len() == 0:  # (``replace_strict`` of no rows keeps the integer type)
        return pl.Series(dtype=pl.String)
    keys = pl.DataFrame([bits.alias(f"_p{c}") for c, bits in enumerate(patterns)])
    distinct = keys.unique(maintain_order=True)
    texts = [";".join(code for k, code in enumerate(codes) if row[k // BITS] >> (k % BITS) & 1) or None
             for row in distinct.iter_rows()]
    if len(patterns) == 1:  # one integer key: a lookup (no join)
        return pl.Series(texts, dtype=pl.String)[positions(patterns[0], distinct.to_series())]
    table = distinct.with_columns(_t=pl.Series(texts, dtype=pl.String))
    return keys.join(table, on=keys.columns, how="left", maintain_order="left")["_t"]


def pattern(flags: list[pl.Expr]) -> list[pl.Expr]:
    """Int64 bit patterns of ``flags`` (bit k % BITS of pattern k // BITS: flag k holds; null counts as false)."""
    out = []
    for first in range(0, len(flags), BITS):
        chunk = flags[first:first + BITS]
        out.append(pl.sum_horizontal([flag.fill_null(False).cast(pl.Int64) * (1 << k) for k, flag in enumerate(chunk)]))
    return out


def flags_to_lists(flags: list[tuple[str, pl.Series]]) -> pl.Series:
    """Per row, the list of codes whose flag (a column) holds, in the given order."""
    patterns = pl.select(p.alias(f"_p{c}") for c, p in enumerate(pattern([pl.lit(f) for _c, f in flags])))
    return lists_by_pattern([code for code, _f in flags], patterns.get_columns())
