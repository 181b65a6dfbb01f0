"""Contribution shares as a table: one row per person, one column per payer, totals at the foot."""

from __future__ import annotations

from rich import box
from rich.table import Table

from medins.money import format_yuan
from medins.report.labels import Lang

PAYERS = {
    "individual": ("个人", "individual"), "government": ("财政补助", "government"), "employee": ("职工", "employee"),
    "employer": ("用人单位", "employer"), "township": ("乡(镇)", "township"), "village": ("村", "village"),
    "province_city": ("省、市财政", "province + city"), "county": ("县级财政", "county"),
    "civil_affairs": ("民政代缴", "civil affairs"),
}


def premium_table(policy, results, lang: Lang) -> Table:
    zh = lang == "zh"
    period = {"year": ("每年", "a year"), "month": ("每月", "a month")}[results[0].period]
    table = Table(title=f"{policy.id} · {'缴费' if zh else 'contributions'} ({period[0] if zh else period[1]})",
                  box=box.SIMPLE_HEAVY, title_justify="left", show_footer=len(results) > 1)
    payers = list(dict.fromkeys(p for r in results for p in r.shares))
    table.add_column("类别" if zh else "group", footer="合计" if zh else "total")
    for payer in payers:
        words = PAYERS.get(payer, (payer, payer))
        table.add_column(words[0] if zh else words[1], justify="right", no_wrap=True,
                         footer=format_yuan(sum(r.shares.get(payer, 0) for r in results)))
    table.add_column("合计" if zh else "total", justify="right", no_wrap=True,
                     footer=format_yuan(sum(r.total for r in results)))
    for r in results:
        label = (r.label[0] if zh else r.label[1]) if r.label else r.group
        table.add_row(label, *[format_yuan(r.shares.get(p, 0)) for p in payers], format_yuan(r.total))
    table.caption = results[0].source
    return table
