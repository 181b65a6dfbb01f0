"""The Python API: load a policy, settle a table of claims, settle one bill.

Why a thin module: the CLI, the tests and users' notebooks call the same three functions, and each
of them goes through the one engine (:func:`medins.engine.settle.settle`).

>>> from medins.api import load_policy, settle_bill
>>> policy = load_policy("suqian-2007")
>>> bill = {"person": {"id": "P1"}, "visit": {"type": "inpatient", "admit_date": "2008-04-02",
...         "hospital": {"zone": "in_district"}, "preapproved": True}, "amounts": {"total": "12000"}}
>>> settle_bill(policy, bill)["fund_pay_sumamt"]
'6200.00'
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import polars as pl

from medins.claims.bill import bill_to_tables
from medins.engine.admissibility import check_sources
from medins.engine.settle import MONEY_OUTPUTS, settle
from medins.money import fen_to_yuan
from medins.policy.loader import load_policy
from medins.policy.plan import CompiledPolicy, field_codes

__all__ = ["load_policy", "settle", "settle_bill", "settlement_row_to_dict"]


def settle_bill(policy: CompiledPolicy, bill: Mapping, *, source: str = "bill", trace: bool = False) -> dict:
    """Settle one bill (DESIGN.md §3) → the §4 fields, money as yuan text, plus ``steps`` when ``trace``."""
    claims, items = bill_to_tables(dict(bill), source=source, codes=field_codes(policy.model))
    out = settle(policy, claims, items, keep_trace=trace)
    row = out.row(0, named=True)
    result = _cite_unchecked(policy, settlement_row_to_dict(row))
    if trace:
        from medins.report.explain import explain_steps

        result["steps"] = explain_steps(policy, row)
    return result


def bills_to_tables(bills: list[Mapping], *, source: str = "bill",
                    codes: Mapping[str, Collection[str]] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Several bills → one claims table (rows numbered 1…n in the given order) and its items."""
    claims, items = [], []
    for n, bill in enumerate(bills, start=1):
        one, lines = bill_to_tables(dict(bill), source=f"{source}[{n}]", codes=codes)
        claims.append(one.with_columns(row=pl.lit(n, pl.Int64)))
        items.append(lines.with_columns(claim_row=pl.lit(n, pl.Int64)))
    return pl.concat(claims, how="vertical"), pl.concat(items, how="vertical")


def settle_bills(policy: CompiledPolicy, bills: list[Mapping], *, source: str = "bill") -> list[dict]:
    """Settle bills together as one claims table (year-to-date state flows between them)."""
    claims, items = bills_to_tables(bills, source=source, codes=field_codes(policy.model))
    out = settle(policy, claims, items)
    return [_cite_unchecked(policy, settlement_row_to_dict(row)) for row in out.iter_rows(named=True)]


def _cite_unchecked(policy: CompiledPolicy, result: dict) -> dict:
    """Add ``unchecked_sources``: each check not done, with the clause it comes from."""
    sources = check_sources(policy)
    result["unchecked_sources"] = {code: sources.get(code, "") for code in result["unchecked"]}
    return result


def settlement_row_to_dict(row: Mapping) -> dict:
    """One settlement row (fen) → JSON-ready dict with yuan text (two decimals)."""
    out: dict[str, object] = {"claim_id": row["claim_id"], "person_id": row.get("person_id")}
    for name in MONEY_OUTPUTS:
        out[name] = fen_to_yuan(row[name])
    out["policy"] = row["policy"]
    out["status"] = row["status"]
    out["reasons"] = list(row["reasons"] or [])
    out["unchecked"] = list(row["unchecked"] or [])
    out["assumed"] = list(row["assumed"] or [])
    return out


def settlement_to_yuan(frame: pl.DataFrame) -> pl.DataFrame:
    """Money columns of a settlement frame as yuan text (for CSV/JSON edges)."""
    return frame.with_columns(
        [
            pl.format("{}.{}", pl.col(c) // 100, (pl.col(c) % 100).cast(pl.String).str.zfill(2)).alias(c)
            for c in MONEY_OUTPUTS
            if c in frame.columns
        ]
    )
