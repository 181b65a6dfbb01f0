"""State flows in (person, date, row) order while the claims frame stays in input order (``_seq``, state.py).

Why: settle no longer sorts the whole claims table; every state column sorts only its own few columns
by ``state.SEQUENCE``. These tests fail if a state column (or the account's opening balance) followed
frame order instead.
"""

from __future__ import annotations

import random
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medins.claims.readers import read_claims
from medins.engine.settle import settle
from medins.engine.state import (
    NUMPY_ROWS,
    SEQUENCE,
    UNLIMITED,
    clamped_cumsum,
    first_in_group,
    group_order,
    running_max_before,
)
from medins.policy.loader import load_policy

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

rows = st.lists(st.tuples(st.sampled_from([1, 2, None]), st.sampled_from(["in", "out", None]),
                          st.integers(0, 400), st.sampled_from([0, 50, 300, 1000, None]), st.integers(0, 500)),
                min_size=1, max_size=30)


def _recurrence(xs: list[int], limits: list[int | None], h0: int) -> list[int]:
    state, out = h0, []
    for x, limit in zip(xs, limits, strict=True):
        state = max(state, min(UNLIMITED if limit is None else limit, state + x))
        out.append(state)
    return out


def _frame(data, seq: list[int], *, wide_keys: bool = False) -> pl.DataFrame:
    frame = pl.DataFrame(data, schema={"p": pl.Int64, "b": pl.String, "x": pl.Int64, "l": pl.Int64, "h": pl.Int64},
                         orient="row").with_columns(pl.Series(SEQUENCE, seq, dtype=pl.Int64))
    if wide_keys:  # codes spanning ~2^60: key × n + seq no longer fits an Int64, the two-key sort is used
        frame = frame.with_columns(p=pl.col("p") * (1 << 30), b=pl.col("b").replace_strict(
            {"in": 1 << 29, "out": 0}, default=None, return_dtype=pl.Int64))
    return frame


@settings(max_examples=150)
@given(rows, st.randoms(use_true_random=False), st.booleans())
def test_state_follows_the_sequence_not_frame_order(data, rnd, wide_keys) -> None:
    """Rows shuffled, ``_seq`` giving their order: each group's state is the recurrence in ``_seq`` order."""
    seq = list(range(len(data)))
    rnd.shuffle(seq)
    frame = _frame(data, seq, wide_keys=wide_keys)
    out = clamped_cumsum(frame, x="x", limit="l", h0="h", group=["p", "b"], out_before="c0", out_after="c1")
    peak = running_max_before(frame, x="x", h0="h", group=["p", "b"], out="m")
    for key in {(p, b) for p, b, *_ in data}:
        idx = sorted((i for i, r in enumerate(data) if (r[0], r[1]) == key), key=lambda i: seq[i])
        h0 = data[idx[0]][4]
        want = _recurrence([data[i][2] for i in idx], [data[i][3] for i in idx], h0)
        assert [out["c1"][i] for i in idx] == want
        assert [out["c0"][i] for i in idx] == [h0, *want[:-1]]
        assert [peak["m"][i] for i in idx] == [max([h0, *(data[j][2] for j in idx[:k])]) for k in range(len(idx))]


@given(rows, st.randoms(use_true_random=False))
def test_first_in_group_is_the_first_in_sequence(data, rnd) -> None:
    """The value on the group's first row in ``_seq`` order — an unknown value too (not the next known one)."""
    seq = list(range(len(data)))
    rnd.shuffle(seq)
    frame = _frame(data, seq)
    out = first_in_group(frame, {"f": pl.col("l")}, group_order(frame, ["p"]))
    for i, (p, *_rest) in enumerate(data):
        first = min((j for j, r in enumerate(data) if r[0] == p), key=lambda j: seq[j])
        assert out["f"][i] == data[first][3]


@pytest.mark.parametrize("shuffled", [True, False])
def test_first_in_group_of_a_large_frame_is_the_first_in_sequence(shuffled: bool) -> None:
    """At ``NUMPY_ROWS`` rows and more the first rows come from the grouping's segments: the same values (an
    unknown first value too), whether the rows must be sorted (``shuffled``) or already are in group order."""
    rnd = random.Random(7)
    n = NUMPY_ROWS + 1000
    seq = list(range(n))
    if shuffled:
        rnd.shuffle(seq)
    persons = sorted(rnd.randrange(600) for _ in range(n))  # in group order when not shuffled
    frame = pl.DataFrame({"p": persons, "l": [rnd.choice([None, 1, 2, 3, 500]) for _ in range(n)],
                          SEQUENCE: seq}, schema={"p": pl.Int64, "l": pl.Int64, SEQUENCE: pl.Int64})
    grouping = group_order(frame, ["p"])
    assert (grouping[0] is None) == (not shuffled)
    out = first_in_group(frame, {"f": pl.col("l"), "g": pl.col("l") * 2 + pl.col("p")}, grouping)
    want = frame.with_columns(f=pl.col("l").sort_by(SEQUENCE).first().over("p"))
    assert out["f"].to_list() == want["f"].to_list()
    assert out["g"].to_list() == (want["f"] * 2 + frame["p"]).to_list()


def test_unlimited_sum_near_the_limit_is_clipped_like_the_recurrence() -> None:
    """A history so large that the running sum would pass ``UNLIMITED`` takes the exact path (clipped there)."""
    frame = pl.DataFrame({"g": [1, 1, 1], "x": [5, 7, 9], "h": [UNLIMITED - 10, 0, 0]})
    out = clamped_cumsum(frame, x="x", limit=None, h0="h", group=["g"], out_before="b", out_after="a")
    assert out["a"].to_list() == _recurrence([5, 7, 9], [None] * 3, UNLIMITED - 10) == [UNLIMITED - 5, UNLIMITED,
                                                                                       UNLIMITED]
    assert out["b"].to_list() == [UNLIMITED - 10, UNLIMITED - 5, UNLIMITED]


def test_settlement_does_not_depend_on_input_order() -> None:
    """A year of claims (caps reached, 门诊大病, the account over two years) settles the same in any row order."""
    policy = load_policy("suqian-2007")
    claims = read_claims(EXAMPLES / "claims.csv").claims
    assert claims["person_id"].n_unique() < claims.height  # several claims a person: state matters
    base = settle(policy, claims)
    order = list(range(claims.height))
    random.Random(7).shuffle(order)
    for permuted in (claims.reverse(), claims[order]):
        again = settle(policy, permuted)
        assert again["claim_id"].to_list() == permuted["claim_id"].to_list()  # input order kept
        assert again.sort("claim_id").equals(base.sort("claim_id"))
    assert base["acct_pay"].sum() > 0 and base["hifp_pay"].sum() > 0


def test_columns_stay_in_one_chunk_when_the_claims_come_in_pieces() -> None:
    """A file read in pieces gives columns of several chunks; the engine works on one chunk a column (a frame
    mixing chunkings is copied whole by every eager step — the same numbers, many times slower)."""
    policy = load_policy("suqian-2007")
    claims = read_claims(EXAMPLES / "claims.csv").claims
    pieces = pl.concat([claims.slice(0, 9), claims.slice(9, 9), claims.slice(18)], rechunk=False)
    assert pieces["total"].n_chunks() == 3
    trace = settle(policy, pieces, keep_trace=True)
    assert {c: n for c in trace.columns if c not in ("claim_id", "person_id") and (n := trace[c].n_chunks()) > 1} == {}
    assert trace.select(*(c for c in settle(policy, claims).columns)).equals(settle(policy, claims))
