"""Tables that stay whole at any terminal width: money, ids and names are never cut with "…".

Why: Rich fits a wide table to the terminal by shrinking every column, which turns ``171,192.34`` into
``171,…`` at 80 columns — a number a reader can no longer use. A :class:`SplitTable` measures its cells
when it is printed and, when they do not fit side by side, prints the table in several parts, each
repeating the key columns (policy, group, field) with as many value columns as fit. Cells of "whole"
columns are never wrapped; text columns wrap between words only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rich import box as boxes
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

Cell = str | Text


@dataclass(frozen=True)
class Column:
    """A column of a :class:`SplitTable`: ``key`` columns repeat in every part; ``whole`` cells never wrap."""

    header: str
    justify: str = "left"
    key: bool = False
    whole: bool = True
    style: str | None = None


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _width(column: Column, cells: Sequence[Cell]) -> int:
    """The narrowest width showing every cell whole: the longest line (whole) or longest word (text)."""
    words = [w for w in column.header.split() if w] or [""]
    widths = [cell_len(w) for w in words]
    for cell in cells:
        for line in _plain(cell).splitlines() or [""]:
            widths.extend([cell_len(line)] if column.whole else [cell_len(w) for w in line.split()] or [0])
    return max(widths)


def _wrap_header(header: str, width: int) -> str:
    """The header broken between words into lines of at most ``width`` cells (a whole column never wraps)."""
    lines: list[str] = []
    for word in header.split():
        if lines and cell_len(lines[-1]) + 1 + cell_len(word) <= width:
            lines[-1] += " " + word
        else:
            lines.append(word)
    return "\n".join(lines)


class SplitTable:
    """A table printed in as many parts as the width needs, key columns repeated, nothing cut."""

    PAD = 3  # one space each side of a cell (padding (0, 1)) and the divider between columns

    def __init__(self, title: str | None, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], *,
                 box: boxes.Box | None = boxes.SIMPLE, continued: str = "(continued)") -> None:
        self.title, self.columns, self.rows, self.box, self.continued = title, list(columns), list(rows), box, continued

    def parts(self, width: int) -> list[list[int]]:
        """Indices of the columns of each part (key columns first in each) for a console ``width`` wide."""
        widths = [_width(c, [row[i] for row in self.rows]) + self.PAD for i, c in enumerate(self.columns)]
        keys = [i for i, c in enumerate(self.columns) if c.key]
        values = [i for i, c in enumerate(self.columns) if not c.key]
        base = sum(widths[i] for i in keys) + 2
        parts: list[list[int]] = []
        current: list[int] = []
        used = base
        for i in values:
            if current and used + widths[i] > width:
                parts.append(current)
                current, used = [], base
            current.append(i)
            used += widths[i]
        parts.append(current)
        return [sorted(keys + part) for part in parts]

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        parts = self.parts(options.max_width)
        for n, indices in enumerate(parts):
            title = self.title if n == 0 or not self.title else f"{self.title} {self.continued}"
            table = Table(title=title, box=self.box, title_justify="left")
            for i in indices:
                column = self.columns[i]
                cells = [row[i] for row in self.rows]
                width = _width(column, cells)
                table.add_column(_wrap_header(column.header, width), justify=column.justify,  # type: ignore[arg-type]
                                 style=column.style, no_wrap=column.whole, min_width=width, overflow="fold")
            for row in self.rows:
                table.add_row(*[row[i] for i in indices])
            yield table
