"""The explain trace: every yuan of a settlement traced to the clause that decided it.

Why from the engine's columns: the trace must be the computation, not a retelling of it. The engine
keeps its intermediate columns (band parts, rates, deductible, raw payment, cap) when asked
(``keep_trace``); this module only reads them and attaches the policy's ``source`` citations.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from medins.money import fen_to_yuan, ppm_to_percent
from medins.policy.plan import CompiledPolicy, payer_order
from medins.report.explain_limits import (
    account_balance,
    basic_cap,
    basic_ceiling,
    payer_cap,
    payer_ceiling,
    scope_limits,
)
from medins.report.explain_origin import origin, scale_origin


def _yuan_exact(numerator: int, denominator: int) -> str:
    """An exact amount in fen as a fraction → yuan text, up to 6 decimals (for band payments)."""
    value = (Decimal(numerator) / Decimal(denominator) / 100).quantize(Decimal("0.000001")).normalize()
    text = format(value, "f")
    if "." not in text:
        text += ".00"
    elif len(text.split(".")[1]) < 2:
        text += "0"
    return text


def _step(key: str, amount: int | str | None, *, source: str | None = None, **extra: object) -> dict:
    step: dict[str, object] = {"step": key}
    if amount is not None:
        step["amount"] = amount if isinstance(amount, str) else fen_to_yuan(amount)
    step.update({k: v for k, v in extra.items() if v is not None})
    if source:
        step["source"] = source
    return step


def explain_steps(policy: CompiledPolicy, row: Mapping) -> list[dict]:
    """The waterfall of one settled claim (a row of ``settle(..., keep_trace=True)``)."""
    model = policy.model
    steps = [_step("total", row["medfee_sumamt"])]
    if row["fulamt_ownpay_amt"]:
        steps.append(_step("fulamt", row["fulamt_ownpay_amt"], source=_scope_source(model)))
    if row["overlmt_selfpay"]:
        steps.append(_step("overlmt", row["overlmt_selfpay"], source=_scope_source(model)))
    for lim, limit in scope_limits(row, model.scope):  # each item and visit limit that selected a line, bound or not
        steps.append(_with_origin(limit, origin(policy, row, lim.max or getattr(lim, "max_per_dose", None))))
    steps.extend(_self_pay_first_steps(policy, row))
    steps.append(_step("inscope", row["inscp_scp_amt"]))
    steps.extend(_direct_steps(policy, row))
    if row["status"] != "settled":
        steps.append(_step("rejected", None, reasons=list(row["reasons"])))
        _finish(steps, row, model.account)
        return steps
    rule = model.rules[row["_rule"]]
    steps.append(_step("rule", None, rule=rule.id, label={"zh": rule.label.zh, "en": rule.label.en},
                       source=rule.source))
    if row.get("paid_hifp_pay") is None:  # a basic payment given as already paid was not computed
        steps += _basic_steps(policy, row, rule)
    steps.append(_step("hifp_pay", row["hifp_pay"], given=True if row.get("paid_hifp_pay") is not None else None))
    order = payer_order(model)
    for layer in rule.layers:
        steps += payer_steps(policy, row, layer, order.index(layer.id))
    _finish(steps, row, model.account)
    return steps


def _basic_steps(policy: CompiledPolicy, row: Mapping, rule) -> list[dict]:
    """The basic fund's ceiling, deductible, bands, class-B reduction, raw payment, allowance and cap."""
    model = policy.model
    steps: list[dict] = []
    ceiling = basic_ceiling(row, rule)
    if ceiling is not None:
        steps.append(_with_origin(ceiling, origin(policy, row, rule.ceiling.amount)))
    if rule.deductible:
        steps.append(_with_origin(_step("deductible", row["act_pay_dedc"], standard=fen_to_yuan(row["_std"] or 0),
                                        per=rule.deductible.per, **_deductible_state(row, rule.deductible),
                                        source=rule.deductible.source),
                                  origin(policy, row, rule.deductible.standard)))
    if rule.bands is not None:
        scale = policy.versions[row["_v"]].params.scales.get(rule.bands.scale or "", [])
        rate_from = origin(policy, row, rule.bands.rate, scale=rule.bands.scale or "") or \
            scale_origin(policy, row, rule.bands.scale)
        for k in range(row.get("_bwidth") or 0):
            part = row.get(f"_b{k}_a") or 0
            rate = row.get(f"_b{k}_r")
            if rate is None:
                continue
            lo, hi = row[f"_b{k}_lo"], row[f"_b{k}_hi"]
            params = policy.versions[row["_v"]].params
            band_source = (scale[k].source if k < len(scale) and scale[k].source else None) or params.sources.get(
                rule.bands.scale or "", rule.bands.source)
            listed = ppm_to_percent(int(scale[k].rate * 1_000_000)) if k < len(scale) and scale[k].rate is not None \
                else None
            shown = ppm_to_percent(rate)
            if rule.bands.rate and listed is not None and listed != shown:
                band_source = f"{band_source}; {rule.bands.source}"
            else:
                listed = None
            steps.append(_with_origin(_step(
                "band", _yuan_exact(part * rate, 1_000_000), band=k + 1,
                **band_range(part, lo, hi, *_basic_span(row, rule.bands.axis)),
                base=fen_to_yuan(part), rate=shown, listed_rate=listed, source=band_source,
            ), rate_from))
        if row.get("_boff"):
            # the reduction over 10^6 × E: Σ A_k × r_k × E − Σ A_k × max(0, r_k × E − C) = Σ A_k × min(r_k × E, C)
            e0 = row.get("_e0") or 1
            c = row["_boff"] * max(row.get("class_b_inscope") or 0, 0)
            reduction = sum((row.get(f"_b{k}_a") or 0) * min((row.get(f"_b{k}_r") or 0) * e0, c)
                            for k in range(row.get("_bwidth") or 0))
            params = policy.versions[row["_v"]].params
            steps.append(_with_origin(_step("class_b", "-" + _yuan_exact(reduction, 1_000_000 * e0),
                                            rate=ppm_to_percent(row["_boff"]),
                                            source=params.sources.get(rule.bands.class_b_offset or "",
                                                                      rule.bands.source)),
                                      origin(policy, row, rule.bands.class_b_offset)))
        steps.append(_step("fund_raw", row["_raw"]))
    if row.get("direct_pay"):
        steps.append(_step("direct_pay", row["direct_pay"], source="; ".join(
            s.source for s in model.scope.self_pay_first if s.fund_rate is not None)))
    if row.get("_allow"):
        steps.append(_step("allowance", row["_allow"], source="; ".join(a.source for a in rule.allowances)))
    cap = basic_cap(row, rule)
    if cap is not None:
        steps.append(_with_origin(cap, origin(policy, row, rule.cap.amount)))
    return steps


def payer_steps(policy: CompiledPolicy, row: Mapping, layer, n: int) -> list[dict]:
    """One payer of the chain: its base and how it was formed, ceiling, deductible, each band's paid part,
    the amount before and after its cap, and what it pays — each with its citation (``payers.py`` columns)."""
    pid = layer.id
    common = {"payer": pid, "field": layer.field,
              "label": {"zh": layer.label.zh, "en": layer.label.en} if layer.label else None}
    pay = row.get(f"_pay_{pid}") or 0
    if row.get(f"_pgiven_{pid}"):
        return [_step("payer", pay, given=True, **common, source=layer.source)]
    if not row.get(f"_papp_{pid}"):  # `when` false or unknown: the payer does not settle this claim
        return [_step("payer", 0, **common, when=layer.when, eligible=False, source=layer.source)]
    base = row.get(f"_pbase_{pid}") or 0
    steps = [_step("payer_base", base, formula=layer.base, **common, source=layer.source)]
    ceiling = payer_ceiling(row, layer, common)
    if ceiling is not None:
        steps.append(_with_origin(ceiling, origin(policy, row, layer.ceiling.amount)))
    if layer.deductible:
        yearly = layer.deductible.per == "year"
        before = row.get(f"_tr_{pid}_d0") or 0
        std = row.get(f"_pstd_{pid}") or 0
        ded = row.get(f"_pded_{pid}") or 0
        steps.append(_with_origin(_step(
            "payer_deductible", ded, standard=fen_to_yuan(std), per=layer.deductible.per,
            paid_before=fen_to_yuan(before) if yearly else None,
            left_after=fen_to_yuan(max(std - before - ded, 0)) if yearly else None, **common,
            source=layer.deductible.source), origin(policy, row, layer.deductible.standard)))
    prefix = f"_q{n}"
    params = policy.versions[row["_v"]].params
    scale = params.scales.get(layer.bands.scale or "", [])
    for k in range(row.get(f"{prefix}width") or 0):
        part, rate = row.get(f"{prefix}{k}_a") or 0, row.get(f"{prefix}{k}_r")
        if rate is None or not part:
            continue
        lo, hi = row[f"{prefix}{k}_lo"], row[f"{prefix}{k}_hi"]
        band_source = (scale[k].source if k < len(scale) and scale[k].source else None) or layer.bands.source
        steps.append(_step("payer_band", _yuan_exact(part * rate, 1_000_000), band=k + 1,
                           **band_range(part, lo, hi, *_payer_span(row, pid, layer.bands.axis)),
                           base=fen_to_yuan(part), rate=ppm_to_percent(rate), **common, source=band_source))
    raw = row.get(f"_praw_{pid}") or 0
    steps.append(_step("payer_raw", raw, **common))
    cap = payer_cap(row, layer, common)
    if cap is not None:
        steps.append(_with_origin(cap, origin(policy, row, layer.cap.amount)))
    steps.append(_step("payer", pay, **common, source=layer.source))
    return steps


def _finish(steps: list[dict], row: Mapping, account=None) -> None:
    steps.append(_step("fund", row["fund_pay_sumamt"]))
    steps.append(_step("patient", row["psn_part_amt"]))
    if row["acct_pay"]:
        steps.append(_step("account", row["acct_pay"]))
    balance = account_balance(row, account) if account is not None else None
    if balance is not None:
        steps.append(balance)
    steps.append(_step("cash", row["psn_cash_pay"]))
    if row.get("deposit_amt"):  # at the cashier: the deposit against the cash share
        steps.append(_step("deposit", row["deposit_amt"]))
        steps.append(_step("refund", row["refund_amt"]) if row["refund_amt"] else _step("due", row["due_amt"]))
    if row["unchecked"]:
        steps.append(_step("unchecked", None, checks=list(row["unchecked"])))
    if row.get("assumed"):
        steps.append(_step("assumed", None, checks=list(row["assumed"])))


def _self_pay_first_steps(policy: CompiledPolicy, row: Mapping) -> list[dict]:
    """Each 先行自付 step with its own rule's citation, and the part its ``fund_rate`` sends to the fund directly.

    A ``preselfpay`` amount given by the bill is one step citing the bill (the rules were not applied).
    """
    scope = policy.model.scope
    if row.get("preselfpay") is not None:
        return [_step("presp_given", row["preselfpay_amt"], source="amounts.preselfpay")] if row["preselfpay_amt"] \
            else []
    constants = policy.versions[row.get("_v") or 0].params.constants
    steps = []
    for j, spf in enumerate(scope.self_pay_first):
        amount = row.get(f"_spf{j}") or 0
        if amount:
            steps.append(_step("presp", amount, rule=scope.self_pay_first_name(j), rate=_rate_text(spf.rate, constants),
                               combine=scope.self_pay_first_combine, source=spf.source))
    return steps


def _direct_steps(policy: CompiledPolicy, row: Mapping) -> list[dict]:
    """The part of the in-scope amount a rule's ``fund_rate`` pays directly, and what is left for the bands."""
    if not row.get("direct_base"):
        return []
    constants = policy.versions[row.get("_v") or 0].params.constants
    rules = [s for s in policy.model.scope.self_pay_first if s.fund_rate is not None]
    rates = [_rate_text(s.fund_rate, constants) or "" for s in rules]
    return [_step("direct_base", row["direct_base"], rate=", ".join(dict.fromkeys(rates)),
                  source="; ".join(s.source for s in rules)),
            _step("inscope_bands", row["inscope"])]


def _rate_text(text: str | None, constants: Mapping[str, object]) -> str | None:
    """A rule's rate as a percentage when it names a plain rate parameter, else the expression itself."""
    value = constants.get(text or "")
    if isinstance(value, Decimal):
        return ppm_to_percent(int(value * 1_000_000))
    return text


def _scope_source(model) -> str | None:
    sources = [s.source for s in model.scope.excluded] + [s.source for s in model.scope.item_limits]
    return "; ".join(dict.fromkeys(sources)) or None


def band_range(part: int, lo: int, hi: int | None, lower: int, upper: int, shift: int, axis: str) -> dict:
    """Where a band applied for this claim, on the rule's ``axis``: ``range`` is the part of the band the claim's
    paid interval (``lower``, ``upper``] covered (None when it covered none of it, ``position`` then saying
    whether the band lies below — taken by the deductible or earlier claims — or above); ``band_edges`` the
    band as listed; ``claim_range`` the same part on the claim's own in-scope amount from 0 (axis value +
    ``shift``), given when the axis is not that amount already.
    """
    out: dict[str, object] = {"axis": axis, "band_edges": _interval(lo, hi)}
    if part <= 0:
        out["range"] = None
        out["position"] = "below" if hi is not None and hi <= lower else "above"
        return out
    start, end = max(lo, lower), min(hi, upper) if hi is not None else upper
    out["range"] = _interval(start, end)
    if axis != "absolute":
        out["claim_range"] = _interval(start + shift, end + shift)
    return out


def _interval(lo: int, hi: int | None) -> str:
    return f"({fen_to_yuan(lo)}, {fen_to_yuan(hi) if hi is not None else '∞'}]"


def _basic_span(row: Mapping, axis: str) -> tuple[int, int, int, str]:
    """The basic fund's paid interval on its axis and the shift to the claim's own amount (benefits.py)."""
    ded, eligible = row["ded"], row["eligible"]
    if axis == "cumulative":
        before = row.get("_c0") or 0
        return before + ded, before + eligible, -before, axis
    if axis == "above_deductible":
        return 0, eligible - ded, ded, axis
    return ded, eligible, 0, axis


def _payer_span(row: Mapping, pid: str, axis: str) -> tuple[int, int, int, str]:
    """A payer's paid interval on its axis (payers.py: its base after the ceiling, above its deductible)."""
    ded = row.get(f"_pded_{pid}") or 0
    through = (row.get(f"_pbase_{pid}") or 0) - (row.get(f"_pceil_{pid}") or 0)
    if axis == "cumulative":
        before = row.get(f"_tr_{pid}_pc0") or 0
        return before + ded, before + through, -before, axis
    if axis == "above_deductible":
        return 0, through - ded, ded, axis
    return ded, through, 0, axis


def _deductible_state(row: Mapping, deductible) -> dict:
    """A yearly deductible's state: paid before this claim and left after it; a top-up's standard already met."""
    std, ded = row["_std"] or 0, row["act_pay_dedc"]
    if deductible.per == "year":
        before = row.get("_tr_ded0") or 0
        return {"paid_before": fen_to_yuan(before), "left_after": fen_to_yuan(max(std - before - ded, 0))}
    if deductible.topup and row.get("_prior_std"):
        return {"standard_met_before": fen_to_yuan(row["_prior_std"])}
    return {}


def _with_origin(step: dict, found: dict | None) -> dict:
    """``step`` with ``from``: where its limit, standard or rate came from (``explain_origin.origin``)."""
    if found is not None:
        source = step.pop("source", None)
        step["from"] = found
        if source:
            step["source"] = source
    return step
