"""Policies as readable tables: ``medins policy list`` and ``medins policy show``.

Why: a policy is reviewed by people who know the regulation, not YAML. ``show`` lays out each
number with its citation, each rule with its conditions, and what the source leaves missing.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from medins.policy.compiled import CompiledPolicy, ScaleBand
from medins.report.labels import Lang


def _years(policy) -> str:
    spans = []
    for v in policy.versions:
        start = v.valid_from or ""
        end = v.valid_to or ""
        spans.append(f"{v.id}: {start}…{end}" if (start or end) else v.id)
    return "; ".join(spans) or "—"


def policy_list_table(lang: Lang) -> RenderableType:
    """The built-in policies; the id is never cut (``policy show ID`` needs it whole), names wrap."""
    from medins.policy.loader import builtin_policies, check_policy_file
    from medins.report.layout import Column, SplitTable

    zh = lang == "zh"
    heads = (("编号", "id"), ("名称", "name"), ("地区", "region"), ("类型", "scheme"), ("版本", "versions"))
    columns = [Column(h[0] if zh else h[1], key=i == 0, whole=i in (0, 3)) for i, h in enumerate(heads)]
    rows = []
    for name, path in builtin_policies().items():
        model = check_policy_file(str(path))
        pick = (lambda t: t.zh) if zh else (lambda t: t.en)
        rows.append([name, pick(model.name), pick(model.region), model.scheme,
                     _years(model) if model.versions else ("未注明" if zh else "undated")])
    return SplitTable("内置政策" if zh else "Built-in policies", columns, rows, box=box.SIMPLE_HEAVY,
                      continued="(续)" if zh else "(continued)")


def _value_text(value: object, unit: str | None = None, *, nested: bool = False) -> str:
    from datetime import date
    from decimal import Decimal

    if isinstance(value, dict):
        inner = ", ".join(f"{k}: {_value_text(v, unit, nested=True)}" for k, v in value.items())
        return f"{{{inner}}}" if nested else inner
    if isinstance(value, Decimal):
        if unit == "rate":
            return f"{format((value * 100).normalize(), 'f')}%"
        return format(value.normalize(), "f")
    if isinstance(value, date):
        return value.isoformat()
    from medins.policy.expr import MissingEntry

    if isinstance(value, MissingEntry):
        return "MISSING (--set)"  # an entry the source does not give: --set NAME.ENTRY=VALUE
    return str(value)


def _scale_text(scale: list[ScaleBand]) -> str:
    parts = []
    for band in scale:
        hi = f"{band.hi / 100:,.0f}" if band.hi is not None else "∞"
        parts.append(f"({band.lo / 100:,.0f}, {hi}] {format((band.rate * 100).normalize(), 'f')}%")
    return "; ".join(parts)


def policy_view(policy: CompiledPolicy, lang: Lang) -> RenderableType:
    """Header, parameters (per version), admissibility, rules, account."""
    zh = lang == "zh"
    model = policy.model
    pick = (lambda t: t.zh) if zh else (lambda t: t.en)
    parts: list[RenderableType] = [
        Text(f"{model.id} — {pick(model.name)}", style="bold"),
        Text(f"{'地区' if zh else 'Region'}: {pick(model.region)}   {'来源' if zh else 'Source'}: {model.source}"),
    ]
    if model.summary:
        parts.append(Text(pick(model.summary)))
    parts.append(Text(("引用条款原文: " if zh else "The clauses cited, quoted: ") + f"medins policy sources {model.id}",
                      style="dim"))
    for version in policy.versions:
        table = Table(title=f"{'参数' if zh else 'Parameters'} · {version.id}", box=box.SIMPLE, title_justify="left")
        longest = max((len(name) for name in model.parameters), default=8)  # a name is never folded
        for i, head in enumerate((("参数", "parameter"), ("值", "value"), ("依据", "source"))):
            table.add_column(head[0] if zh else head[1], overflow="fold", min_width=longest if i == 0 else None)
        params = version.params
        for name, param in model.parameters.items():
            if name in params.missing:
                value = Text("缺失 —— 需 --set" if zh else "MISSING — needs --set", style="red")
            elif name in params.scales and param.scale is not None:
                value = Text(_scale_text(params.scales[name]))
            else:
                value = Text(_value_text(params.constants.get(name), param.unit))
            label = f"{name}" + (f"\n{pick(param.label)}" if param.label else "")
            table.add_row(label, value, params.sources.get(name, ""))
        parts.append(table)
    adm = model.admission
    adm_table = Table(title="受理条件" if zh else "Admissibility", box=box.SIMPLE, title_justify="left")
    adm_table.add_column("原因代码" if zh else "reason", min_width=max(
        [len(c.code) + 6 for c in adm.checks] + [len("excluded_cause"), len("not_designated")]))
    adm_table.add_column("条件" if zh else "rejected if", overflow="fold")
    adm_table.add_column("依据" if zh else "source", overflow="fold")
    if adm.excluded_causes:
        adm_table.add_row("excluded_cause", ", ".join(adm.excluded_causes), adm.excluded_causes_source or "")
    if adm.excluded_zones:
        adm_table.add_row(", ".join(adm.excluded_zones), "hospital_zone", adm.excluded_zones_source or "")
    if adm.hospitals:
        names = ", ".join(f"{h.name} ({h.zone or h.kind or h.level})" for h in adm.hospitals)
        adm_table.add_row("not_designated" if adm.unlisted_hospitals == "not_designated" else "—", names,
                          adm.hospitals_source or "")
    for check in adm.checks:
        cond = check.reject_if if not check.when else f"{check.when} ⇒ {check.reject_if}"
        adm_table.add_row(check.code + ("" if check.enabled else " (off)"), " ".join(cond.split()), check.source)
    for item in adm.not_checkable:  # no bill shows these: every settlement lists them as unchecked
        words = "账单无法核查,列为未核查" if zh else "not on a bill: listed as unchecked"
        adm_table.add_row(item.code, f"{item.when} ⇒ {words}" if item.when else words, item.source)
    parts.append(adm_table)
    rules = Table(title="待遇规则" if zh else "Benefit rules", box=box.SIMPLE, title_justify="left")
    for i, head in enumerate((("规则", "rule"), ("适用", "when"), ("计算", "computation"), ("依据", "source"))):
        rules.add_column(head[0] if zh else head[1], overflow="fold",
                         min_width=max((len(r.id) for r in model.rules), default=4) if i == 0 else None)
    for rule in model.rules:
        lines = []
        if rule.deductible:
            lines.append(f"{'起付线' if zh else 'deductible'}: {rule.deductible.standard} / {rule.deductible.per}"
                         + (" top-up" if rule.deductible.topup else ""))
        if rule.ceiling:
            lines.append(f"{'费用上限' if zh else 'ceiling'}: {rule.ceiling.amount}")
        if rule.bands:
            lines.append(f"{'分段' if zh else 'bands'}: {rule.bands.scale or '—'} ({rule.bands.axis})"
                         + (f", rate = {rule.bands.rate}" if rule.bands.rate else "")
                         + (f", class B −{rule.bands.class_b_offset}" if rule.bands.class_b_offset else ""))
        for allowance in rule.allowances:
            lines.append(f"{'补助' if zh else 'allowance'} {allowance.id}: {allowance.amount}")
        if rule.cap:
            lines.append(f"{'封顶' if zh else 'cap'}: {rule.cap.amount} / {rule.cap.per}")
        for layer in rule.layers:
            lines.append(f"{layer.id} → {layer.field}: base = {layer.base}"
                         + (f" when {layer.when}" if layer.when else "")
                         + (f"; {'起付线' if zh else 'deductible'} {layer.deductible.standard} / {layer.deductible.per}"
                            if layer.deductible else "")
                         + (f"; {'费用上限' if zh else 'ceiling'} {layer.ceiling.amount} / {layer.ceiling.per}"
                            if layer.ceiling else "")
                         + f"; {'分段' if zh else 'bands'} {layer.bands.scale or layer.bands.rate} ({layer.bands.axis})"
                         + (f"; {'封顶' if zh else 'cap'} {layer.cap.amount} / {layer.cap.per}"
                            + (f" {'与' if zh else 'with'} {', '.join(layer.cap.shared_with)}"
                               if layer.cap.shared_with else "") if layer.cap else ""))
        if not lines:
            lines.append("基金不支付" if zh else "no fund payment")
        rules.add_row(f"{rule.id}\n{pick(rule.label)}", " ".join(rule.when.split()), "\n".join(lines), rule.source)
    parts.append(rules)
    if model.account:
        parts.append(Text(f"{'个人账户' if zh else 'Account'}: {model.account.credit} "
                          f"{'每年' if zh else 'a year'}; {'支付' if zh else 'pays'} {model.account.pays} "
                          f"({model.account.source})"))
    for note in model.notes:
        parts.append(Text(f"• {note}", style="dim"))
    return Group(*parts)


def sources_view(model, lang: Lang) -> RenderableType:
    """``medins policy sources ID``: the bundled document the policy encodes and every clause it cites, quoted."""
    from medins.sources import clause, policy_citations, source_list

    zh = lang == "zh"
    listing = source_list()
    parts: list[RenderableType] = [Text(f"{model.id} — {model.name.zh if zh else model.name.en}", style="bold")]
    entry = listing["policies"].get(model.id)
    if entry:
        document = listing["documents"].get(entry["document"], {})
        head = Table(box=None, show_header=False, padding=(0, 1))
        head.add_column(style="dim", no_wrap=True)
        head.add_column(overflow="fold")
        head.add_row("文件" if zh else "document", f"{entry['document']} {document.get('title', '')} "
                     f"({document.get('file', '')})")
        head.add_row("部分" if zh else "part", f"{entry.get('part') or entry.get('title', '')}, {entry['lines']}")
        head.add_row("年份" if zh else "year", str(entry.get("date") or ("未注明" if zh else "not stated")))
        head.add_row("开头" if zh else "opening", str(entry.get("opening", "")))
        parts.append(head)
    else:
        parts.append(Text(("来源" if zh else "source") + f": {model.source}"))
    parts.append(Text("引用的条款" if zh else "Clauses cited", style="bold"))
    for code in policy_citations(model):  # stacked, not a table: whole at any width
        found = clause(code)
        head = Text(code, style="bold cyan")
        if found is None:
            parts.append(head.append("  " + ("未收录" if zh else "not in the bundled list"), style="red"))
            continue
        if found.get("cites"):
            head.append(f"  {found['cites']}", style="dim")
        if not zh or "quote" not in found:
            head.append(f"  {found.get('rule', '')}")
        parts.append(head)
        if "quote" in found:
            parts.append(Padding(Text(f"“{found['quote']}”", style="green"), (0, 0, 0, 4)))
        if "reading" in found:
            parts.append(Padding(Text(("解读: " if zh else "reading: ") + str(found["reading"]), style="dim"),
                                 (0, 0, 0, 4)))
    return Group(*parts)


def diff_table(a: str, b: str, rows: list[dict], lang: Lang) -> RenderableType:
    """``policy diff``: parameter, each side's value and citations; the key is never cut, values wrap."""
    from medins.report.layout import Column, SplitTable
    from medins.report.tables import short_source

    zh = lang == "zh"
    columns = [Column("参数" if zh else "parameter", key=True), Column(a, whole=False), Column(b, whole=False),
               Column("依据" if zh else "sources", whole=False, style="dim")]
    cells = [[row["key"], row["a"], row["b"],
              " | ".join(short_source(s) for s in (row["a_source"], row["b_source"]) if s)] for row in rows]
    return SplitTable(f"{a} ↔ {b}", columns, cells, continued="(续)" if zh else "(continued)")
