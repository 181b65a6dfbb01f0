"""The words of the explain table for limits, band ranges and the origins of values, in zh and en.

Why apart from ``tables.py``: these texts are built from the structured fields of a step (``limit``,
``used_before``, ``range``, ``axis``, ``from`` …, see ``explain.py``); the JSON carries the same fields, so
the table says nothing the machine form does not.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from rich.console import RenderableType
from rich.text import Text

from medins.report.labels import EXPLAIN, STEPS, Lang, pick

_NUMBER = re.compile(r"-?\d+\.\d\d\b")
LIMITS = frozenset({"ceiling", "cap", "payer_ceiling", "payer_cap", "account_balance", "item_limit", "visit_limit"})


def words(key: str, lang: Lang, **values: object) -> str:
    return pick(EXPLAIN[key], lang).format(**values)


def money(text: object) -> str:
    """Yuan text → grouped thousands (``1,000.00``) wherever it occurs in ``text``."""
    def group(m: re.Match) -> str:
        whole, _, frac = m.group().partition(".")
        sign = "-" if whole.startswith("-") else ""
        return f"{sign}{int(whole.lstrip('-')):,}.{frac}"

    return _NUMBER.sub(group, str(text))


def limit_label(label: str, step: Mapping, lang: Lang) -> str:
    """``fund cap 40,000.00 a year: used before 0.00, this claim 15,170.00, left 24,830.00 — not binding``."""
    zh = lang == "zh"
    per = words(f"per_{step['per']}", lang, n=step.get("lines"))
    selected = [*step.get("categories", []), *step.get("classes", [])]
    if selected:  # an item or visit limit names the items it selects
        label = f"{label} [{', '.join(selected)}]"
    head = f"{label} {money(step['limit'])}" + (f"({per}" if zh else f" ({per}")
    if step.get("shared_with"):
        head += ("," if zh else ", ") + words("shared_with", lang, names=", ".join(step["shared_with"]))
    if step.get("measure") == "above_deductible":
        head += ("," if zh else ", ") + words("measure_above_deductible", lang)
    head += ")"
    if step["step"] == "account_balance":
        state = words("balance_state", lang, balance=money(step["balance_before"]), used=money(step["this_claim"]),
                      left=money(step["left_after"]))
    elif "used_before" in step:
        state = words("limit_state", lang, before=money(step["used_before"]), used=money(step["this_claim"]),
                      left=money(step["left_after"]))
    else:
        state = words("limit_claim", lang, used=money(step["this_claim"]), left=money(step["left_after"]))
    verdict = words("binding" if step["binding"] else "not_binding", lang)
    return f"{head}{':' if zh else ': '}{state} — {verdict}"


def band_label(label: str, step: Mapping, lang: Lang) -> str:
    """``band 1 (1,000.00, 5,000.00] within the stay, from 0, listed (0.00, 5,000.00]``: the range the band
    applied to on its axis, the axis named, the same range on the claim's own amount, the band as listed."""
    sep = "," if lang == "zh" else ", "
    edges = money(step["band_edges"])
    if step.get("range") is None:
        return f"{label} {step['band']} — {words('position_' + step.get('position', 'above'), lang, edges=edges)}"
    text = f"{label} {step['band']} {money(step['range'])} {words('axis_' + step['axis'], lang)}"
    if step.get("claim_range"):
        text += sep + words("this_claim_range", lang, range=money(step["claim_range"]))
    if step["band_edges"] != step["range"]:
        text += sep + words("listed", lang, edges=edges)
    return text


def deductible_label(label: str, step: Mapping, lang: Lang) -> str:
    """The deductible with its standard and, per year, what was paid before and is left."""
    zh = lang == "zh"
    parts = [f"{words('standard', lang)} {money(step['standard'])}"] if step.get("standard") else []
    if step.get("per") in ("claim", "admission", "year"):
        parts.append(words(f"per_{step['per']}", lang))
    if "paid_before" in step:
        parts.append(words("paid_before", lang, before=money(step["paid_before"]), left=money(step["left_after"])))
    if "standard_met_before" in step:
        parts.append(words("standard_met_before", lang, met=money(step["standard_met_before"])))
    return f"{label} ({(',' if zh else ', ').join(parts)})" if parts else label


def origin_lines(steps: Sequence[Mapping], lang: Lang, label_of) -> list[RenderableType]:
    """Below the table: each distinct ``from`` once — the expression, the table entry it selected, the facts
    it read and where each came from, and any parameter ``--set`` / ``--set-file`` replaced."""
    seen: set[str] = set()
    lines: list[RenderableType] = []
    for step in steps:
        found = step.get("from")
        if not found:
            continue
        key = json.dumps(found, sort_keys=True, ensure_ascii=False)
        if key in seen:
            continue
        seen.add(key)
        what = pick(EXPLAIN["band_rates"], lang) if step["step"] in ("band", "payer_band") else label_of(step)
        lines.append(Text(f"  • {what}: {origin_text(found, lang)}"))
    if lines:
        lines.insert(0, Text(words("origins", lang), style="bold"))
    return lines


def origin_text(found: Mapping, lang: Lang) -> str:
    """One origin as a sentence: ``deductible[hospital_zone] → deductible[out_of_city] = 1000; hospital_zone =
    out_of_city (absent from the bill, default taken)``."""
    zh = lang == "zh"
    parts = [str(found["expression"])]
    for entry in found.get("entries", []):
        chosen = f"{entry['table']}[{entry.get('entry', entry['key'])}]"
        parts[-1] += f" → {chosen}" + (f" = {entry['value']}" if "value" in entry else "")
    for fact in found.get("facts", []):
        parts.append(f"{fact['name']} = {fact['value'] if fact['value'] is not None else '?'} "
                     f"({_origin_words(fact, lang)})")
    for param in found.get("parameters", []):
        if param.get("override"):
            parts.append(f"{param['name']}: {words('override', lang, source=param['override'])}")
    return ("；" if zh else "; ").join(parts)


def _origin_words(fact: Mapping, lang: Lang) -> str:
    kind = fact.get("origin", "bill")
    if kind == "counted":
        return words("origin_counted", lang, n=fact.get("admissions_before"))
    if kind == "birth_date":
        return words("origin_birth_date", lang, birth=fact.get("birth_date"), on=fact.get("on"))
    return words(f"origin_{kind}", lang)


def step_words(key: str, lang: Lang) -> str:
    return pick(STEPS.get(key, (key, key)), lang)
