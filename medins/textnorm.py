"""NFKC normalisation of cell text, as a scalar and as a column (Python only on distinct non-ASCII cells).

Why: exports typed with a Chinese input method carry full-width digits, letters, points, commas,
minus signs and ideographic spaces (``１２００.００``, ``ｉｎｐａｔｉｅｎｔ``, ``\u3000``). NFKC folds them into
their ASCII forms, so a money cell or a code reads as the person meant it instead of as empty or
unknown. A column is normalised without a Python loop over its rows: ASCII cells (nearly all) are
found by a vectorised length comparison and left alone, and each distinct non-ASCII cell is
normalised once.
"""

from __future__ import annotations

import unicodedata

import polars as pl

#: A character NFKC may change: anything but ASCII and the CJK unified ideographs (U+4E00–U+9FFF).
_MAYBE_CHANGED = r"[^\x00-\x7F\x{4E00}-\x{9FFF}]"
#: Characters NFKC leaves alone that still mean a minus sign in money cells (U+2212 MINUS SIGN).
_EXTRA = str.maketrans({"\u2212": "-"})


def nfkc(text: str) -> str:
    """NFKC of one text (plus U+2212 → ``-``); ASCII text is returned as it is."""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_EXTRA)


def nfkc_series(cells: pl.Series) -> pl.Series:
    """:func:`nfkc` of every cell of a String column; Python runs once per distinct non-ASCII cell."""
    if cells.dtype != pl.String:
        return cells
    non_ascii = cells.str.len_bytes() != cells.str.len_chars()
    if not non_ascii.any():
        return cells
    candidates = cells.filter(non_ascii).unique()
    # ASCII and CJK unified ideographs (住院, 元 …) are their own NFKC: only cells with other characters are
    # looked at in Python (a column of 1200元 cells is left alone at Rust speed)
    distinct = candidates.filter(candidates.str.contains(_MAYBE_CHANGED)).to_list()
    changed = {old: new for old in distinct if (new := nfkc(old)) != old}
    if not changed:
        return cells
    return cells.replace(list(changed), list(changed.values()))


def nfkc_columns(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    """``frame`` with the named String columns normalised by :func:`nfkc_series` (absent names skipped)."""
    present = [c for c in columns if c in frame.columns and frame.schema[c] == pl.String]
    if not present:
        return frame
    return frame.with_columns(nfkc_series(frame[c]) for c in present)
