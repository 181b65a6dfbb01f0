"""Every limit a claim was checked against, with its headroom — whether it bound or not.

Why: a reader who sees no cap in the waterfall cannot tell whether the fund cap was checked and left room,
or was never looked at. Each basic ceiling and cap, each payer's ceiling and cap (a cap ``shared_with``
earlier payers counts their payments too), and the individual account's balance is shown as: the limit,
what was used of it before this claim, what this claim used, what is left after, and whether it bound
(cut this claim's amount). The numbers are the engine's own state (``keep_trace`` columns ``_tr_*`` and the
cumulative sums it keeps anyway); nothing is recomputed here.
"""

from __future__ import annotations

from collections.abc import Mapping

from medins.money import fen_to_yuan


def limit_step(key: str, *, limit: int, per: str, before: int | None, used: int, cut: int,
               source: str | None, **extra: object) -> dict:
    """One limit: ``amount`` is what it cut (0.00 when it did not bind); ``left_after`` never below 0.

    ``before`` is None for a limit that holds per claim (nothing carries over from earlier claims).
    """
    step: dict[str, object] = {"step": key, "amount": fen_to_yuan(max(cut, 0)), "limit": fen_to_yuan(limit),
                               "per": per}
    if before is not None:
        step["used_before"] = fen_to_yuan(before)
    step["this_claim"] = fen_to_yuan(used)
    step["left_after"] = fen_to_yuan(max(limit - (before or 0) - used, 0))
    step["binding"] = cut > 0
    step.update({k: v for k, v in extra.items() if v is not None})
    if source:
        step["source"] = source
    return step


def basic_ceiling(row: Mapping, rule) -> dict | None:
    """The rule's eligible-expense ceiling (per benefit year): on the expense from 0, or above the deductible."""
    if rule.ceiling is None or row.get("_ceil") is None:
        return None
    cut = row["inscope"] - row["eligible"]
    if rule.ceiling.measure == "above_deductible":
        before = row.get("_tr_ceil_above0") or 0
        used = row["eligible"] - row["ded"]
    else:
        before, used = row.get("_c_ceil0") or 0, row["eligible"]
    return limit_step("ceiling", limit=row["_ceil"], per="year", before=before, used=used, cut=cut,
                      measure=rule.ceiling.measure, source=rule.ceiling.source)


def basic_cap(row: Mapping, rule) -> dict | None:
    """The fund's cap: per claim, or per benefit year counting the person's earlier payments (``history``)."""
    if rule.cap is None or row.get("_tr_cap") is None:
        return None
    cut = (row.get("_raw_total") or 0) - row["hifp_pay"]
    yearly = bool(row.get("_tr_cap_year"))
    return limit_step("cap", limit=row["_tr_cap"], per="year" if yearly else "claim",
                      before=(row.get("_tr_cap0") or 0) if yearly else None, used=row["hifp_pay"], cut=cut,
                      source=rule.cap.source)


def payer_ceiling(row: Mapping, layer, common: Mapping) -> dict | None:
    """A payer's ceiling on its base: the base it let through, measured from 0 or above the payer's deductible."""
    pid = layer.id
    limit = row.get(f"_tr_{pid}_ceil")
    if layer.ceiling is None or limit is None:
        return None
    cut = row.get(f"_pceil_{pid}") or 0
    through = (row.get(f"_pbase_{pid}") or 0) - cut
    above = layer.ceiling.measure == "above_deductible"
    used = through - (row.get(f"_pded_{pid}") or 0) if above else through
    before = row.get(f"_tr_{pid}_ab10" if above else f"_tr_{pid}_b10") or 0
    yearly = row.get(f"_tr_{pid}_cper") == "year"
    return limit_step("payer_ceiling", limit=limit, per="year" if yearly else "claim",
                      before=before if yearly else None, used=max(used, 0), cut=cut, measure=layer.ceiling.measure,
                      **common, source=layer.ceiling.source)


def payer_cap(row: Mapping, layer, common: Mapping) -> dict | None:
    """A payer's cap. Shared with earlier payers (``shared_with``), the headroom is theirs together: used before
    counts every sharing payer's payments before this claim, this claim their payments on it."""
    pid = layer.id
    limit = row.get(f"_tr_{pid}_camt")
    if layer.cap is None or limit is None:
        return None
    pay = row.get(f"_pay_{pid}") or 0
    cut = (row.get(f"_praw_{pid}") or 0) - pay
    shared_now = row.get(f"_tr_{pid}_sh") or 0
    yearly = row.get(f"_tr_{pid}_kper") == "year"
    before = None
    if yearly:
        shared_through = row.get(f"_tr_{pid}_s1") or 0  # the sharing payers' cumulative, this claim included
        before = (row.get(f"_tr_{pid}_k0") or 0) + shared_through - shared_now
    return limit_step("payer_cap", limit=limit, per="year" if yearly else "claim", before=before,
                      used=pay + shared_now, cut=cut, shared_with=list(layer.cap.shared_with) or None,
                      shared_this_claim=fen_to_yuan(shared_now) if layer.cap.shared_with else None,
                      **common, source=layer.cap.source)


def account_balance(row: Mapping, account) -> dict | None:
    """The individual account: the balance it had before this claim, what it paid, what is left."""
    if account is None or not row.get("_tr_acct_pays") or row.get("_tr_acct_limit") is None:
        return None
    spent = row.get("_tr_acct0") or 0
    balance = row["_tr_acct_limit"] - spent
    short = row["psn_part_amt"] - row["acct_pay"]  # the account pays min(balance, share): it binds when short
    return limit_step("account_balance", limit=row["_tr_acct_limit"], per="balance", before=spent,
                      used=row["acct_pay"], cut=short if row["acct_pay"] >= balance else 0,
                      balance_before=fen_to_yuan(balance), source=account.source)


#: Above this a limit is "none" (the engine's stand-in for a missing limit, ``1 << 60`` fen).
_NO_LIMIT = 1 << 59


def scope_limits(row: Mapping, scope) -> list[tuple[object, dict]]:
    """Each item limit (per line) and visit limit (per claim) that selected a line of this claim, with its step:
    the limit (for item limits, the sum over the lines it selected), the amount counted after it, what it cut."""
    steps: list[tuple[object, dict]] = []
    for kind, prefix, limits in (("item_limit", "_til", scope.item_limits), ("visit_limit", "_tvl", scope.visit_limits)):
        for j, lim in enumerate(limits):
            lines = row.get(f"{prefix}{j}_n") or 0
            limit = row.get(f"{prefix}{j}_l")
            if not lines or limit is None or limit >= _NO_LIMIT:
                continue
            before, kept = row.get(f"{prefix}{j}_a") or 0, row.get(f"{prefix}{j}_k") or 0
            steps.append((lim, limit_step(
                kind, limit=limit, per="line" if kind == "item_limit" else "claim", before=None, used=kept,
                cut=before - kept, lines=lines, counted_before=fen_to_yuan(before),
                categories=list(lim.categories) if lim.categories else None,
                classes=list(lim.classes) if lim.classes else None, source=lim.source)))
    return steps
