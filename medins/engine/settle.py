"""The one evaluator: a claims table in, a settlement table out.

Why one function: ``medins calc`` (a one-row table), ``medins batch`` (a year of claims) and
``medins compare`` (the same claims under several policies) must never disagree, so they all call
:func:`settle`. Claims are sorted by (person, date, input row) so year-to-date state follows the
order the claims happened in, then the output is put back in input order.
"""

from __future__ import annotations

import polars as pl

from medins.engine.account import settle_account
from medins.engine.admissibility import REASON_COLUMNS, UNCHECKED, check_admissibility, codes_list, reasons_list, reasons_ok
from medins.engine.benefits import PERSON_YEAR, settle_benefits
from medins.engine.codes import replace_columns
from medins.engine.context import ASSUMED, Lazy, Run
from medins.engine.fused import at_least_zero
from medins.engine.prepare import add_derived
from medins.engine.rules import select_rules
from medins.engine.scope import split_scope
from medins.engine.state import NUMPY_ROWS, SEQUENCE, Grouping, _unorder
from medins.policy.plan import PAYER_FIELDS, CompiledPolicy
from medins.stagetimes import stage

#: Settlement fields (DESIGN.md §4), money in fen, in output order.
MONEY_OUTPUTS = (
    "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc",
    "hifp_pay", "hifob_pay", "hifmi_pay", "maf_pay", "hifes_pay", "cvlserv_pay", "oth_pay", "fund_pay_sumamt",
    "psn_part_amt", "acct_pay", "psn_cash_pay", "deposit_amt", "refund_amt", "due_amt",
)
#: The fund fields of the payer chain; ``fund_pay_sumamt`` is their sum.
FUND_FIELDS = ("hifp_pay", *PAYER_FIELDS)
OUTPUT_COLUMNS = ("claim_id", "person_id", *MONEY_OUTPUTS, "policy", "status", "reasons", "unchecked", "assumed")
#: The output columns that are lists of codes, made from the engine's texts (codes joined by ";"): see ``lists``.
CODE_LISTS = {"reasons": REASON_COLUMNS, "unchecked": UNCHECKED, "assumed": ASSUMED}


class ConservationError(AssertionError):
    """fund + patient != total for some claim: a bug in medins, never a user error."""


def settle(policy: CompiledPolicy, claims: pl.DataFrame, items: pl.DataFrame | None = None,
           *, keep_trace: bool = False, keep: tuple[str, ...] = (), lists: bool = True) -> pl.DataFrame:
    """Settle every claim of ``claims`` (canonical claims table) under ``policy``.

    Returns one row per claim in input order with ``OUTPUT_COLUMNS`` (money in Int64 fen) and the
    claim facts named in ``keep`` as the engine saw them (e.g. a zone filled from the hospital's
    name); with ``keep_trace`` every intermediate column, which the explain view reads.

    ``lists=False`` leaves out the ``CODE_LISTS`` columns, for a caller that reads their texts instead (kept by
    naming them in ``keep``): the same codes; splitting a million claims' texts into lists no one reads cost
    a third of the totals stage.
    """
    with stage("engine.order"):
        order, person = claim_order(claims)
    # The ids are not read by the engine (unless a policy expression names them): they join the
    # output in input order at the end instead of travelling through every stage.
    names = _expression_names(policy)
    ids = [c for c in ("claim_id", "person_id") if c not in names]
    # The frame stays in input order (sorting every column of a wide claims table, then sorting the
    # settlement back, cost a fifth of the run): ``_seq`` is each claim's place in the order state flows
    # in, which the state columns sort their few columns by (``state.group_order``).
    by_person, sequence = _in_frame_order(order, person)  # the (person) grouping, in claim order
    # One chunk a column (a file read in pieces has several): added columns are one chunk, and every
    # eager step on a frame whose columns are chunked differently would first copy the whole frame.
    frame = (
        claims.drop(ids, *_unused_payer_columns(policy, claims, names), strict=False).rechunk().with_row_index("_in")
        .with_columns(_i=pl.col("_in").cast(pl.Int64), _v=pl.lit(0, pl.Int64), _pk=by_person[1],
                      **{SEQUENCE: sequence})
    )
    run = Run(policy, frame, trace=keep_trace)
    with stage("engine.prepare"):
        add_derived(run)
    with stage("engine.scope"):
        split_scope(run, items)
    with stage("engine.admissibility"):
        check_admissibility(run)
    with stage("engine.rules"):
        select_rules(run)  # and check_history on the same query
        _guard_benefit_year(run)
        # The reasons and assumptions were added as bits: joined into their text once (``engine/codes.py``).
        run.finish_codes(REASON_COLUMNS)
        run.finish_codes(ASSUMED)
    _apply_problems(run)
    run.frame = run.frame.with_columns(_ok=reasons_ok())
    before = run.frame
    with stage("engine.benefits"):
        settle_benefits(run)
    while run.problems:
        # Claims found unsettleable while settling (an unknown fact, a table without the claim's key, a given
        # payment above the cap) must not consume caps or deductibles of the person's later claims: settle
        # again without them, until a pass rejects no claim — a later claim may become unsettleable once an
        # earlier one no longer counts, and it must not keep its payments in the state or the explain trace
        # either. Each pass rejects at least one more claim, so this ends.
        _keep_sure_problems(run)
        run.frame = before
        _apply_problems(run)
        run.frame = run.frame.with_columns(_ok=reasons_ok())
        before = run.frame
        settle_benefits(run)
    run.groupings["_pk"] = by_person  # the account's grouping: each person's claims in claim order
    with stage("engine.account"):
        pending = settle_account(run, _zero_rejected(run.lazy()))
    with stage("engine.totals"):
        out = _totals(run, claims, pending, lists=lists or keep_trace)
    # the ids join the frame, which never left input order: columns put side by side, no query
    if keep_trace:
        return out.hstack([claims[c] for c in ids])
    wanted = [c for c in (*OUTPUT_COLUMNS, *keep) if lists or c not in CODE_LISTS]
    return pl.DataFrame([claims[c] if c in ids else out[c] for c in wanted])


def _in_frame_order(order: pl.Series, person: pl.Series) -> tuple[Grouping, pl.Series]:
    """The (person) grouping of :func:`claim_order`'s ``order`` and persons, and each claim's place in that order
    (``SEQUENCE``), in frame order.

    Why NumPy for a large frame: the place of each claim is the inverse permutation itself (one scatter of 0 … n−1),
    and the persons in frame order one gather by it; through ``Grouping.unorder`` the same took a scatter of the
    persons, another of 0 … n−1 and a gather (~4 ms a 250,000-claim partition, ~1.5 ms so).
    """
    n = order.len()
    if n < NUMPY_ROWS:
        by_person = Grouping(order, _unorder(person, order))
        return by_person, by_person.unorder(pl.int_range(0, n, dtype=pl.Int64, eager=True))
    import numpy as np

    place = np.empty(n, dtype=np.int64)
    place[order.to_numpy()] = np.arange(n, dtype=np.int64)
    return Grouping(order, pl.Series(person.name, person.to_numpy()[place], dtype=pl.Int64)), pl.Series(place)


def _unused_payer_columns(policy: CompiledPolicy, claims: pl.DataFrame, names: set[str]) -> list[str]:
    """The paid and history columns of payer fields no payer of the policy writes (and no expression reads).

    Why: a claims table carries them for every field (25 columns, mostly empty); a policy without payers
    would otherwise drag them through every stage of a million-claim run.
    """
    written = {layer.field for rule in policy.model.rules for layer in rule.layers}
    return [c for c in claims.columns for field in PAYER_FIELDS if field not in written and c not in names
            and (c == f"paid_{field}" or c.startswith(f"hist_{field}_"))]


def _expression_names(policy: CompiledPolicy) -> set[str]:
    """Every name any expression of the policy reads."""
    from medins.engine.context import parse
    names: set[str] = set()
    for text in policy.expression_texts():
        names |= parse(text).names
    return names


def claim_order(claims: pl.DataFrame) -> tuple[pl.Series, pl.Series]:
    """Positions of ``claims`` sorted by person, then date, then input row (the order state flows in),
    and for each position the person's number (0, 1, … in that order).

    Why not ``sort(["person_id", "admit_date", "row"])``: a multi-column sort with a string key costs
    about a second per million rows. One stable sort of one 64-bit integer does the same when the rows
    are already in input order (a file's claims are): the high bits are a hash of the person id, the low
    bits the day — persons' order among themselves is irrelevant (state never crosses persons), and the
    stable sort keeps equal days in row order. Should two person ids of the file share those hash bits
    (the number of persons found differs from the number of distinct ids), or the rows not be in order,
    the two-sort or exact string sort below is used instead.
    """
    n = claims.height
    days = pl.col("admit_date").cast(pl.Int64)
    low, high, first, last, no_row, ordered = claims.select(
        days.min().alias("d0"), days.max().alias("d1"), pl.col("row").min().alias("r0"),
        pl.col("row").max().alias("r1"), pl.col("row").null_count().alias("rn"),
        (pl.col("row").diff() >= 0).all().alias("up")).row(0)
    if n >= 2 and None not in (low, first) and first >= 0 and last < 1 << 32 and high - low < 1 << 29:
        hashed = pl.col("person_id").hash(seed=20071)
        if no_row == 0 and ordered:
            found = _by_person_day(claims, hashed, (days - low).fill_null(high - low + 1), high - low + 2)
            if found is not None:
                return found
        hashed = claims.select(hashed).to_series()
        if hashed.n_unique() == claims["person_id"].n_unique():  # no two persons share a hash
            by_date = claims.select(pl.arg_sort_by((days - low).fill_null(high - low + 1) * (1 << 32)
                                                   + pl.col("row").fill_null(0), maintain_order=True)).to_series()
            in_date_order = hashed.gather(by_date)
            by_person = in_date_order.to_frame("_h").select(pl.arg_sort_by("_h", maintain_order=True)).to_series()
            order = by_date.gather(by_person)
            return order, _numbered(in_date_order.gather(by_person))
    order = claims.select(pl.arg_sort_by(["person_id", "admit_date", "row"], nulls_last=True,
                                         maintain_order=True)).to_series()
    return order, _numbered(claims["person_id"].gather(order))


def _by_person_day(claims: pl.DataFrame, hashed: pl.Expr, day: pl.Expr, span: int
                   ) -> tuple[pl.Series, pl.Series] | None:
    """:func:`claim_order` of claims already in row order by one stable sort of (person hash bits, day).

    ``day`` is 0 … ``span`` - 1. None when two person ids share the hash bits kept.
    """
    bits = span.bit_length()
    if claims.height >= NUMPY_ROWS and 64 - bits - (claims.height - 1).bit_length() >= _ROW_KEY_HASH_BITS:
        found = _by_person_day_row(claims, hashed, day, bits)
        if found is not None:
            return found
    person = pl.lit(((1 << 64) - 1) ^ ((1 << bits) - 1), pl.UInt64)  # the bits above the day's
    key = claims.select(key=(hashed & person) | day.cast(pl.UInt64))
    if claims.height >= NUMPY_ROWS:
        order = _stable_argsort(key.to_series())
    else:
        order = key.select(pl.arg_sort_by("key", maintain_order=True)).to_series()
    numbered = _numbered(key.select(pl.col("key").gather(order) & person).to_series())
    # Two persons share the bits kept when, in this order, the person changes more often than the bits do (a
    # run of equal bits holding two persons): cheaper than counting the distinct person ids (hashing strings).
    persons = claims.select(pl.col("person_id").gather(order))
    if numbered[-1] + 1 != _runs(persons.to_series()):
        return None
    return order, numbered


#: The fewest person-hash bits :func:`_by_person_day_row` sorts by (the day's and the row's bits below them).
_ROW_KEY_HASH_BITS = 32


def _by_person_day_row(claims: pl.DataFrame, hashed: pl.Expr, day: pl.Expr, bits: int
                       ) -> tuple[pl.Series, pl.Series] | None:
    """:func:`_by_person_day` of a large frame: one sort of distinct keys (person hash bits, day, row position).

    Why: with its position in the lowest bits each row's key is its own, so the plain (unstable) sort of the keys
    themselves is the stable sort, and the positions are read back from the sorted keys: NumPy sorts 250,000 keys
    in ~1.6 ms, where the stable argsort of (person bits, day) cost ~10 ms. Fewer hash bits are kept (at least
    ``_ROW_KEY_HASH_BITS``), so two persons of a partition share them more often (about one partition in fifty
    of 50,000 persons): seen as before (the person changes more often than the bits do), and None is returned.
    """
    import numpy as np

    n = claims.height
    place = (n - 1).bit_length()  # a row's position
    shift = bits + place
    person = ((1 << 64) - 1) ^ ((1 << shift) - 1)  # the bits above the day's and the position's
    key = claims.select(((hashed & pl.lit(person, pl.UInt64)) | (day.cast(pl.UInt64) * (1 << place))
                         | pl.int_range(0, n, dtype=pl.UInt64)).alias("key")).to_series()
    keys = np.sort(key.to_numpy())
    order = pl.Series("key", (keys & np.uint64((1 << place) - 1)).astype(np.uint32 if pl.get_index_type() == pl.UInt32
                                                                          else np.uint64))
    heads = keys >> np.uint64(shift)
    starts = np.empty(n, dtype=np.int64)
    starts[0] = 0
    np.not_equal(heads[1:], heads[:-1], out=starts[1:], casting="unsafe")
    numbered = pl.Series(np.cumsum(starts))
    persons = claims["person_id"].gather(order)
    if numbered[-1] + 1 != _runs(persons):  # two persons share the bits kept
        return None
    return order, numbered


def _stable_argsort(key: pl.Series) -> pl.Series:
    """``arg_sort_by(key, maintain_order=True)`` of an unsigned 64-bit key without nulls, as NumPy computes it faster.

    Why: the stable sort of a 250k-claim partition's key cost Polars 16 ms, NumPy's stable sort more; NumPy's
    unstable one about half, and keys are nearly all distinct (one person, one day). So: the unstable sort, then
    only the rows whose key is shared (a person's claims of one day) put back in input order within their run.
    """
    import numpy as np

    values = key.to_numpy()
    order = np.argsort(values)
    ordered = values[order]
    tied = ordered[1:] == ordered[:-1]  # the row continues the run of equal keys before it
    if tied.any():
        in_run = np.zeros(len(values), dtype=bool)
        in_run[1:] |= tied
        in_run[:-1] |= tied
        rows = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate(([True], ~tied)))[rows]  # the run's number, ascending in sorted order
        order[rows] = order[rows][np.lexsort((order[rows], run))]
    return pl.Series(key.name, order).cast(pl.get_index_type())  # the positions' type, as Polars' arg_sort gives


def _runs(grouped: pl.Series) -> int:
    """The number of runs of equal values (nulls equal) of a column: of its distinct values when it is grouped."""
    return grouped.to_frame("_k").select(
        (pl.col("_k").ne_missing(pl.col("_k").shift(1)) | (pl.int_range(pl.len()) == 0)).sum()).item()


def _numbered(sorted_keys: pl.Series) -> pl.Series:
    """0, 1, 2 … numbering the runs of equal values (nulls equal) of an already grouped column."""
    return sorted_keys.to_frame("_k").select(
        # the first value opens a run even when it is missing (``ne_missing`` of two nulls is False)
        (pl.col("_k").ne_missing(pl.col("_k").shift(1)) | (pl.int_range(pl.len()) == 0)).cast(pl.Int64).cum_sum()
        - 1).to_series()


def _keep_sure_problems(run: Run) -> None:
    """Keep the problems found while settling that hold whatever the person's earlier claims become.

    Why: such a problem may come from the state the person's earlier claims of the year left (a payer base
    made negative by an earlier payment, a given payment above what the cap leaves). If an earlier claim of
    the same person-year is rejected in the same pass, that state was not the one ``calc`` would see with the
    history of the claims actually settled, so the later claim is judged again in the next pass. So per
    person-year only the first claim with a problem keeps them all; a later one keeps its missing facts
    (they do not depend on the state, and rejecting them at once saves a pass per such claim).
    """
    ids = pl.DataFrame({"_i": list(run.problems)}, schema={"_i": pl.Int64})
    keys = ids.join(run.frame.select("_i", SEQUENCE, *PERSON_YEAR), on="_i", how="left")
    # "first" in the order the claims happened (``_seq``), not in the frame's (input) order
    first = set(keys.group_by(PERSON_YEAR).agg(pl.col("_i").sort_by(SEQUENCE).first())["_i"].to_list())
    kept: dict[int, list[str]] = {}
    for i, codes in run.problems.items():
        sure = codes if i in first else [c for c in codes if c.startswith("missing_fact:")]
        if sure:
            kept[i] = sure
    run.problems = kept


def _guard_benefit_year(run: Run) -> None:
    """Without a benefit-year start, year-to-date state exists only through a bill's ``history``."""
    if run.policy.benefit_year_start is not None:
        return
    many = pl.col("_pk").count().over("_pk") > 1
    from medins.engine.admissibility import add_reason

    add_reason(run, "missing_parameter:benefit_year_start", many)


def _apply_problems(run: Run) -> None:
    if not run.problems:
        return
    table = pl.DataFrame(
        {"_i": list(run.problems), "_p": [sorted(set(v)) for v in run.problems.values()]},
        schema={"_i": pl.Int64, "_p": pl.List(pl.String)},
    )
    run.problems = {}
    f = run.frame.join(table, on="_i", how="left", maintain_order="left")
    merged = pl.concat_list(reasons_list(), pl.col("_p").fill_null(pl.lit([], pl.List(pl.String)))).list.unique(
        maintain_order=True)
    run.frame = f.with_columns(
        pl.when(merged.list.len() > 0).then(merged.list.join(";")).alias(REASON_COLUMNS)
    ).drop("_p")


def _zero_rejected(q: Lazy) -> Lazy:
    """A rejected claim pays nothing from any fund: the first step of the account's query (no pass of its own)."""
    return q.with_columns([pl.when(pl.col("_ok")).then(pl.col(c)).otherwise(0).alias(c) for c in (*FUND_FIELDS, "ded")])


def _policy_label(run: Run) -> pl.Expr:
    """``id@version`` of the version in force for each claim (just ``id`` for an undated policy)."""
    versions = run.policy.versions
    if len(versions) == 1:
        return pl.lit(run.policy.label())
    labels = [f"{run.policy.id}@{v.id}" for v in versions]
    return pl.col("_v").replace_strict(list(range(len(labels))), labels, return_dtype=pl.String)


def _totals(run: Run, claims: pl.DataFrame, pending: Lazy, *, lists: bool = True) -> pl.DataFrame:
    """The settlement fields, in one query with the conservation check: the account's ``pending`` query continued
    (``Run.lazy``); ``lists``: with ``CODE_LISTS``."""
    q = pending.with_columns(
        medfee_sumamt=pl.col("total"),
        fulamt_ownpay_amt=pl.col("fulamt"),
        overlmt_selfpay=pl.col("overlmt"),
        preselfpay_amt=pl.col("presp"),
        inscp_scp_amt=pl.col("inscope") + pl.col("direct_base"),  # in scope, whether via the bands or directly
        act_pay_dedc=pl.col("ded"),
        fund_pay_sumamt=pl.sum_horizontal(*FUND_FIELDS),
    ).with_columns(psn_part_amt=pl.col("medfee_sumamt") - pl.col("fund_pay_sumamt"))
    q.with_columns(
        psn_cash_pay=pl.col("psn_part_amt") - pl.col("acct_pay"),
        deposit_amt=pl.col("deposit").fill_null(0),
        policy=_policy_label(run),
        status=pl.when(pl.col("_ok")).then(pl.lit("settled")).otherwise(pl.lit("rejected")),
        **({name: codes_list(text) for name, text in CODE_LISTS.items()} if lists else {}),
    )
    # At the cashier (出院结算): the deposit against the cash share — 应退 what it exceeds, 应补 what it lacks.
    q.with_columns(refund_amt=at_least_zero(pl.col("deposit_amt") - pl.col("psn_cash_pay")),
                   due_amt=at_least_zero(pl.col("psn_cash_pay") - pl.col("deposit_amt")))
    q.with_columns(_unbalanced=(pl.col("fund_pay_sumamt") + pl.col("psn_part_amt") != pl.col("medfee_sumamt"))
                   | (pl.col("psn_part_amt") < 0) | (pl.col("fund_pay_sumamt") < 0) | (pl.col("psn_cash_pay") < 0)
                   | (pl.col("inscp_scp_amt") < 0))
    f = q.collect().frame
    bad = f["_unbalanced"]
    if bad.any():
        ids = claims["claim_id"].gather(f["_in"].filter(bad).head(5)).to_list()
        raise ConservationError(f"settlement does not add up for claims {ids}")
    return replace_columns(f, ["_unbalanced"])
