"""Issue 12, "Done when": random malformed cells through ``medins.batch`` — settled as meant or rejected, never lost.

A claims CSV is written with money cells drawn from what exports really hold — full-width digits
and punctuation, thousands commas, ¥/￥/元, ideographic spaces, trailing zeros, CSV quoting — and from
what they should never silently pass: exponents, underscores, NaN/inf, sub-fen, 31-digit amounts,
negatives, empty cells, stray quotes, a GBK-encoded cell and an encoded lone surrogate (bytes
ED A0 80) inside the UTF-8 file. The batch (:func:`medins.batch.run_batch`, what ``medins batch``
calls) must settle every well-formed row at exactly the amount written and reject every other
row with a reason; rows read = claims settled + rows rejected; no exception.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medins.batch import run_batch
from medins.policy.loader import load_policy

SUQIAN = load_policy("suqian-2007")
HEADER = "结算单号,个人编号,医疗类别,入院日期,就医地类型,是否备案,医院名称,医疗费总额,全自费金额,乙类金额\n"
WIDE = str.maketrans("0123456789.,-", "０１２３４５６７８９．，－")

Cell = tuple[bytes, object]  # (bytes as written, fen meant or the reason code's kind)


@st.composite
def good_cell(draw) -> Cell:
    """An amount written as a person or an export might: the fen it means is known."""
    fen = draw(st.integers(0, 10**9))
    yuan, cents = divmod(fen, 100)
    whole = f"{yuan:,}" if draw(st.booleans()) else str(yuan)
    text = whole + draw(st.sampled_from([f".{cents:02d}", f".{cents:02d}00"] + ([""] if cents == 0 else [])))
    if draw(st.booleans()):
        text = text.translate(WIDE)
    text = draw(st.sampled_from(["{}", "¥{}", "￥{}", "{}元", "\u3000{}\u3000", " {} "])).format(text)
    quoted = "," in text or draw(st.booleans())
    return (f'"{text}"' if quoted else text).encode(), fen


BAD: list[Cell] = [
    (b"1e4", "not_a_number"), (b"1E+4", "not_a_number"), (b"12_000", "not_a_number"), (b"NaN", "not_a_number"),
    (b"inf", "not_a_number"), (b'12"3', "not_a_number"), (b'"1,20,0"', "not_a_number"), (b"12.345", "sub_fen"),
    ("１２．３４５".encode(), "sub_fen"), (b"1" * 31, "too_large"), (b"-5", "negative_amount"),
    (b"\xed\xa0\x8012", "encoding"), ("１２".encode("gbk"), "encoding"), ("１２元".encode("gbk"), "encoding"),
]


def cell(*, required: bool) -> st.SearchStrategy[Cell]:
    empty: Cell = (b"", "missing_field") if required else (b"", 0)
    return st.one_of(good_cell(), good_cell(), st.sampled_from([*BAD, empty]))


rows = st.lists(st.tuples(cell(required=True), cell(required=False)), min_size=1, max_size=5)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows)
def test_random_malformed_cells_are_settled_as_meant_or_rejected(drawn: list[tuple[Cell, Cell]]) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "claims.csv"
        lines = [b"C%d,P%d,\xe4\xbd\x8f\xe9\x99\xa2,2008-04-02,in_district,true,%s,%s,%s,0\n"
                 % (i, i % 2, "宿迁市中医院".encode(), total, self_pay) for i, ((total, _), (self_pay, _)) in
                 enumerate(drawn)]
        path.write_bytes(HEADER.encode() + b"".join(lines))
        result = run_batch(path, SUQIAN, Path(folder) / "out.csv")
        out = pl.read_csv(Path(folder) / "out.csv", infer_schema=False)
        rejects = pl.read_csv(Path(folder) / "out.rejects.csv", infer_schema=False)

    assert result.encoding == "utf-8"
    assert result.rows_read == len(drawn) == result.claims_settled + result.rows_rejected
    settled = dict(zip(out["claim_id"], zip(out["medfee_sumamt"], out["fulamt_ownpay_amt"], strict=True),
                       strict=True))
    reasons = dict(zip(rejects["claim_id"], rejects["reason"], strict=True))
    assert len(settled) + len(reasons) == len(drawn) and not set(settled) & set(reasons)
    for i, ((_, total), (_, self_pay)) in enumerate(drawn):
        claim = f"C{i}"
        kinds = [k for k in (total, self_pay) if isinstance(k, str)]
        if not kinds and self_pay <= total:
            assert settled[claim] == (_yuan(total), _yuan(self_pay)), claim
        elif not kinds:
            assert reasons[claim] == "self_pay_above_total"
        elif "encoding" in kinds:
            assert reasons[claim] == "encoding"
        else:
            assert {code.split(":")[0] for code in reasons[claim].split(";")} == set(kinds), claim


def _yuan(fen: int) -> str:
    return f"{fen // 100}.{fen % 100:02d}"
