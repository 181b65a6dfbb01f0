"""Rich renderables for one settlement and its explain trace. They return tables; they never print.

Why: the same renderable goes to a terminal, to a test's ``Console(file=StringIO())`` and into the
compare view; money is right-justified and totals are set apart, as a clerk reads a statement.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medins.report.labels import STATUS, STEPS, Lang, field_label, pick, reason_label

_SUMMARY_FIELDS = (
    "medfee_sumamt", "fulamt_ownpay_amt", "overlmt_selfpay", "preselfpay_amt", "inscp_scp_amt", "act_pay_dedc",
    "hifp_pay", "hifob_pay", "hifmi_pay", "maf_pay", "hifes_pay", "cvlserv_pay", "oth_pay",
)
_TOTAL_FIELDS = ("fund_pay_sumamt", "psn_part_amt", "acct_pay", "psn_cash_pay")
_ALWAYS = {"medfee_sumamt", "inscp_scp_amt", "act_pay_dedc", "hifp_pay"}


_CITATION = re.compile(r"\b(?:A-)?[A-Z]{1,4}(?:-[A-Z]{1,3})?-T?\d+\b|\b\d{3}:L\d+(?:[-–]\d+)?")


def short_source(text: str) -> str:
    """The citations of a ``source`` (rule ids and seed lines) without the quoted Chinese, for tables."""
    found = list(dict.fromkeys(_CITATION.findall(text)))
    return ", ".join(found) if found else text


def _money(text: str) -> str:
    whole, _, frac = text.partition(".")
    sign = "-" if whole.startswith("-") else ""
    return f"{sign}{int(whole.lstrip('-')):,}.{frac}"


def _amount(value: object) -> str:
    """Every amount of the explain table formatted one way: ``12,345.67``; an exact value finer than a fen
    (a band's share before the one rounding, ``291.666667``) is shown to the fen and marked ``≈``.

    The exact values stay in ``--format json``; the table is for reading, so it never prints a raw number
    beside formatted ones.
    """
    from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

    text = str(value or "")
    if not text:
        return ""
    try:
        exact = Decimal(text)
    except InvalidOperation:
        return text
    rounded = exact.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return _money(format(rounded, "f")) if rounded == exact else "≈" + _money(format(rounded, "f"))


def settlement_table(result: Mapping, lang: Lang) -> RenderableType:
    """The settlement of one claim: amounts by field, totals after a rule, then status and reasons."""
    zh = lang == "zh"
    status = result["status"]
    title = f"{result.get('claim_id') or ''}  ·  {result['policy']}"
    table = Table(title=title, box=box.SIMPLE_HEAVY, show_header=True, title_justify="left")
    table.add_column("项目" if zh else "Item")
    table.add_column("金额(元)" if zh else "Amount (yuan)", justify="right")
    table.add_column("字段" if zh else "Field", style="dim")
    for name in _SUMMARY_FIELDS:
        if name in _ALWAYS or result[name] != "0.00":
            table.add_row(field_label(name, lang), _money(result[name]), name)
    table.add_section()
    for name in _TOTAL_FIELDS:
        if name in ("fund_pay_sumamt", "psn_part_amt") or result[name] != "0.00":
            table.add_row(Text(field_label(name, lang), style="bold"), Text(_money(result[name]), style="bold"), name)
    if result.get("deposit_amt", "0.00") != "0.00":  # a cashier's statement: 预交金额, then 应退 or 应补
        table.add_section()
        for name in ("deposit_amt", "refund_amt", "due_amt"):
            if name == "deposit_amt" or result[name] != "0.00":
                table.add_row(field_label(name, lang), _money(result[name]), name)
    parts: list[RenderableType] = [table]
    colour = "green" if status == "settled" else "red"
    line = Text(f"{field_label('status', lang)}: ", style="bold")
    line.append(pick(STATUS.get(status, (status, status)), lang), style=colour)
    parts.append(line)
    for code in result.get("reasons", []):
        parts.append(Text(f"  • {reason_label(code, lang)}  [{code}]", style="red"))
    if result.get("unchecked"):
        label = "未核查(账单未给出或无法显示的条件)" if zh else "Not checked (the bill does not show these)"
        parts.append(Text(f"{label}:", style="yellow"))
        sources = result.get("unchecked_sources") or {}
        for code in result["unchecked"]:
            cite = short_source(sources[code]) if sources.get(code) else ""
            parts.append(Text(f"  • {code}" + (f"  ({cite})" if cite else ""), style="yellow"))
    if result.get("assumed"):
        label = "假定(账单未给出,按默认值计算)" if zh else "Assumed (absent from the bill, default taken)"
        parts.append(Text(f"{label}: {', '.join(result['assumed'])}", style="yellow"))
    return Group(*parts)


def explain_table(steps: Sequence[Mapping], lang: Lang) -> RenderableType:
    """The waterfall: each step with its base, rate, amount and the clause it applies; then each clause quoted.

    The table cites codes (narrow enough for 80 columns); below it every cited code appears once with its
    original words from the bundled source list (``medins policy sources``).
    """
    # (the explain view's words: imported here, so that the settlement table alone, calc's default, never loads them)
    from medins.report.explain_text import LIMITS, origin_lines

    zh = lang == "zh"
    table = Table(title="计算过程" if zh else "How it was computed", box=box.SIMPLE, title_justify="left")
    table.add_column("步骤" if zh else "Step", overflow="fold", ratio=3)
    table.add_column("基数" if zh else "Base", justify="right", no_wrap=True)
    table.add_column("比例" if zh else "Rate", justify="right")
    table.add_column("金额(元)" if zh else "Amount (yuan)", justify="right", no_wrap=True)
    table.add_column("依据" if zh else "Source", style="dim", overflow="fold", ratio=1)
    cited: list[str] = []
    for step in steps:
        key = step["step"]
        label = _step_label(step, lang)
        amount = step.get("amount")
        if key in LIMITS and not step.get("binding"):
            amount = None  # a limit that did not bind cut nothing: its headroom is in the label
        style = "bold" if key in ("fund", "patient", "hifp_pay", "cash", "payer") else None
        source = str(step.get("source") or "")
        cited.extend(_CODE.findall(source))
        table.add_row(
            Text(label, style=style or ""),
            Text(_amount(step.get("base")), no_wrap=True),
            f"{step['listed_rate']} → {step['rate']}" if step.get("listed_rate") else str(step.get("rate") or ""),
            Text(_amount(amount), style=style or ""),
            short_source(source),
        )
    origins = origin_lines(steps, lang, lambda step: _short_label(step, lang))
    return Group(table, *origins, *clause_lines(list(dict.fromkeys(cited)), lang))


def _short_label(step: Mapping, lang: Lang) -> str:
    """A step's name alone (a payer's steps after the payer's name), for the lines below the table."""
    label = pick(STEPS.get(step["step"], (step["step"], step["step"])), lang)
    if step.get("payer"):
        name = step["label"]["zh" if lang == "zh" else "en"] if step.get("label") else step["payer"]
        label = f"{name}: {label}"
    return label


def _step_label(step: Mapping, lang: Lang) -> str:
    """The Step column of one explain step."""
    from medins.report.explain_text import LIMITS, band_label, deductible_label, limit_label

    zh = lang == "zh"
    key = step["step"]
    label = pick(STEPS.get(key, (key, key)), lang)
    if key in LIMITS:
        if key.startswith("payer"):
            name = step["label"]["zh" if zh else "en"] if step.get("label") else step["payer"]
            label = f"{name}: {label}"
        return limit_label(label, step, lang)
    if key == "band":
        label = band_label(label, step, lang)
    elif key == "rule":
        label = f"{label}: {step['label']['zh' if zh else 'en']}"
    elif key == "layer":
        label = field_label(str(step["field"]), lang)
    elif key.startswith("payer"):
        name = step["label"]["zh" if zh else "en"] if step.get("label") else step["payer"]
        label = f"{name}: {label}" if key != "payer" else f"{name} ({step['field']}) {label}"
        if key == "payer_base" and step.get("formula"):
            label = f"{label} = {step['formula']}"
        elif key == "payer_deductible" and step.get("standard"):
            label = deductible_label(label, step, lang)
        elif key == "payer" and step.get("given"):
            label = f"{label} — {pick(STEPS['given'], lang)}"
        elif key == "payer" and step.get("eligible") is False:
            label = f"{label} — {pick(STEPS['not_eligible'], lang)}: {step.get('when')}"
        elif step.get("band"):
            label = f"{name}: {band_label(pick(STEPS['band'], lang), step, lang)}"
    elif key == "hifp_pay" and step.get("given"):
        label = f"{label} — {pick(STEPS['given'], lang)}"
    elif key == "rejected":
        label = f"{label}: " + "; ".join(reason_label(c, lang) for c in step.get("reasons", []))
    elif key in ("unchecked", "assumed"):
        label = f"{label}: {', '.join(step.get('checks', []))}"
    elif key == "presp" and step.get("rule"):
        label = f"{label} ({step['rule']})"
    elif key == "deductible" and step.get("standard"):
        label = deductible_label(label, step, lang)
    return label

_CODE = re.compile(r"\b(?:A-)?[A-Z]{1,5}-T?\d+[a-z]?\b")


def clause_lines(codes: Sequence[str], lang: Lang) -> list[RenderableType]:
    """Each cited code once, beside its original words (zh) or its rule and words (en), from the bundled list."""
    from medins.sources import clause

    zh = lang == "zh"
    lines: list[RenderableType] = [Text("依据原文" if zh else "The clauses cited", style="bold")] if codes else []
    for code in codes:
        found = clause(code) or {}
        line = Text(f"{code} ", style="bold cyan")
        if found.get("cites"):
            line.append(f"{found['cites']} ", style="dim")
        if found.get("quote"):
            if not zh:  # the rule's first sentence says in English what the original words decide
                line.append(re.split(r"(?<=[a-z)])(?:\. (?=[A-Z])|; )", str(found.get("rule", "")))[0] + ": ")
            line.append(f"“{found['quote']}”", style="green")
        elif found.get("rule"):
            line.append(("解读: " if zh else "reading: ") + str(found["rule"]), style="dim")
        else:
            line.append("未收录" if zh else "not in the bundled source list", style="red")
        lines.append(line)
    return lines
