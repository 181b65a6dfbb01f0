"""Charts: a terminal chart (block characters) and a PNG (matplotlib) of fund share against the bill total.

Why the font search: a PNG with Chinese labels must not show boxes (tofu) on a machine without CJK
fonts. medins looks for a CJK font matplotlib knows, then for the Noto Sans CJK font that the
optional ``medins[cjk]`` extra installs; if none covers the labels, the chart is drawn with English
labels instead.
"""

from __future__ import annotations

import importlib.util
import os
from functools import cache
from pathlib import Path

import polars as pl

from medins.atomic import atomic_path

_LABELS = {
    "zh": {"title": "基金支付占医疗费总额的比例", "x": "医疗费总额(元)", "y": "基金支付占比(%)"},
    "en": {"title": "Fund share of the bill total", "x": "bill total (yuan)", "y": "fund share (%)"},
}
_SAMPLE = "基金支付占医疗费总额的比例元"
_HINTS = ("CJK", "Hei", "Song", "WenQuanYi", "Han Sans", "Han Serif", "Ming", "Kai", "Noto Sans SC", "Noto Sans TC",
          "Source Han", "Droid Sans Fallback", "LXGW")


def _covers(path: str) -> bool:
    from matplotlib.ft2font import FT2Font

    try:
        font = FT2Font(path)
    except (OSError, RuntimeError):
        return False
    return all(font.get_char_index(ord(ch)) for ch in _SAMPLE)


@cache
def find_cjk_font() -> str | None:
    """Path of a font covering the Chinese labels, or None. ``MEDINS_NO_CJK=1`` forces None (tests)."""
    if os.environ.get("MEDINS_NO_CJK"):
        return None
    from matplotlib import font_manager

    for entry in font_manager.fontManager.ttflist:
        if any(h.lower() in entry.name.lower() for h in _HINTS) and _covers(entry.fname):
            return entry.fname
    spec = importlib.util.find_spec("cvttf_NotoSansCJK_Regular")
    if spec and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            for path in Path(folder).glob("*.otf"):
                if _covers(str(path)):
                    return str(path)
    return None


def curve_png(data: pl.DataFrame, path: Path, lang: str = "zh") -> str:
    """Draw fund share against total per policy to ``path`` (atomically); returns the label language used."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager
    from matplotlib import pyplot as plt

    font = find_cjk_font() if lang == "zh" else None
    used = "zh" if font else "en"
    labels = _LABELS[used]
    props = None
    if font:
        font_manager.fontManager.addfont(font)
        props = font_manager.FontProperties(fname=font)
    fig, ax = plt.subplots(figsize=(8, 5), dpi=110)
    for policy in data["policy"].unique(maintain_order=True).to_list():
        part = data.filter(pl.col("policy") == policy)
        ax.plot([t / 100 for t in part["total"].to_list()],
                [(s or 0) * 100 for s in part["fund_share"].to_list()], label=policy, linewidth=2)
    ax.set_title(labels["title"], fontproperties=props)
    ax.set_xlabel(labels["x"], fontproperties=props)
    ax.set_ylabel(labels["y"], fontproperties=props)
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    try:
        with atomic_path(path, ".png") as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return used


def terminal_chart(data: pl.DataFrame, lang: str = "en") -> str:
    """The same curve as text: one line of blocks per policy (height = fund share), with the x range."""
    blocks = " ▁▂▃▄▅▆▇█"
    title = "基金支付占比(每格一个金额点)" if lang == "zh" else "Fund share by bill total (one cell per total)"
    lines = [title]
    policies = data["policy"].unique(maintain_order=True).to_list()
    width = max(len(p) for p in policies)
    for policy in policies:
        part = data.filter(pl.col("policy") == policy)
        shares = [(s or 0.0) for s in part["fund_share"].to_list()]
        cells = "".join(blocks[min(8, round(s * 8))] for s in shares)
        peak = max(shares) if shares else 0.0
        lines.append(f"{policy:<{width}} │{cells}│ max {peak * 100:.1f}%")
    totals = data.filter(pl.col("policy") == policies[0])["total"].to_list()
    lines.append(f"{'':<{width}}  {totals[0] / 100:,.0f} … {totals[-1] / 100:,.0f} {'元' if lang == 'zh' else 'yuan'}")
    return "\n".join(lines)


def curve_table(data: pl.DataFrame, lang: str = "en"):
    """The curve as a table: policy, total, fund, patient (yuan) and the fund share (exact, one decimal)."""
    from medins.money import format_yuan
    from medins.report.compare import percent_text
    from medins.report.layout import Column, SplitTable

    zh = lang == "zh"
    shares = data.select(percent_text(pl.col("fund"), pl.col("total"), 1).alias("share"))["share"].to_list()
    headings = ("政策", "医疗费总额", "基金支付", "个人负担", "基金占比") if zh else (
        "policy", "total", "fund", "patient", "fund share")
    columns = [Column(h, key=i == 0, justify="left" if i == 0 else "right") for i, h in enumerate(headings)]
    rows = [[row["policy"], format_yuan(row["total"]), format_yuan(row["fund"]), format_yuan(row["patient"]),
             share or "—"] for row, share in zip(data.iter_rows(named=True), shares, strict=True)]
    return SplitTable("基金支付占比" if zh else "Fund share by bill total", columns, rows,
                      continued="(续)" if zh else "(continued)")
