"""The monotonicity check (`medins policy check --monotone`) as Rich renderables, in Chinese or English.

Why its own room: the finding is a list of places a policy author must look at — the facts of the
bill, the two totals one grid step apart, and what the fund and the patient pay at each — money
right-justified as everywhere else.
"""

from __future__ import annotations

import polars as pl
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from medins.money import fen_to_yuan
from medins.report.labels import Lang

#: At most this many places are shown (the count says how many there are).
SHOWN = 20

_HEAD = {
    "facts": ("账单条件", "bill facts"), "day": ("就医日期", "service day"), "total": ("医疗费总额", "total"),
    "fund": ("基金支付", "fund"), "patient": ("个人负担", "patient"),
}


def monotone_renderable(name: str, result: dict, lang: Lang) -> RenderableType:
    """✓ with the grid's size, or the places where a bigger bill gets less from the fund or costs the patient less."""
    zh = lang == "zh"
    falls: pl.DataFrame = result["falls"]
    if not falls.height:
        text = (f"✓ {name}: 单调 — 网格上 {result['settled']:,} 笔已结算、{result['pairs']:,} 对相邻金额,"
                "没有金额越高基金支付越少(或个人负担越少)的情况" if zh else
                f"✓ {name}: monotone — {result['settled']:,} settled bills, {result['pairs']:,} adjacent pairs on "
                "the grid, nowhere does a bigger bill get less from the fund (or cost the patient less)")
        return Text(text, style="green")
    title = (f"✗ {name}: {falls.height:,} 处金额越高基金支付越少或个人负担越少(显示前 {min(SHOWN, falls.height)} 处)"
             if zh else f"✗ {name}: {falls.height:,} places where a bigger bill gets less from the fund or costs the "
             f"patient less (first {min(SHOWN, falls.height)} shown)")
    table = Table(title=title, box=box.SIMPLE, title_justify="left", title_style="bold red")
    pick = 0 if zh else 1
    table.add_column(_HEAD["facts"][pick])
    table.add_column(_HEAD["day"][pick])
    for key in ("total", "fund", "patient"):
        table.add_column(_HEAD[key][pick], justify="right")
    for row in falls.head(SHOWN).iter_rows(named=True):
        facts = ", ".join(str(row[k]) for k in ("visit_type", "hospital_zone", "hospital_level", "person_category",
                                                 "hospital_kind") if row[k] is not None)
        table.add_row(facts, str(row["admit_date"]),
                      *(f"{fen_to_yuan(row[f'{k}_before'])} → {fen_to_yuan(row[f'{k}_after'])}"
                        for k in ("total", "fund", "patient")))
    return Group(table)
