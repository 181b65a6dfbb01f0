"""Rendering user-facing errors with Rich, in Chinese or English.

Why: a policy with ten mistakes should read like a compiler's error list — one row per problem
with its ``file:line:col`` — not like a traceback. These functions only *build* renderables; the
command line decides where to print them (stderr, a pager, a test's ``StringIO``). All user text
is wrapped in :class:`rich.text.Text`, so brackets in key paths (``rules[1]``) or values are never
taken for Rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import PurePath

from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from medins.errors import (
    InputError,
    Lang,
    MedinsError,
    OutputError,
    OutputLocked,
    PolicyError,
    PolicyIssue,
    UsageError,
    _MessageError,
)

_HEADERS = {
    "en": ("location", "key", "problem", "found / allowed", "hint"),
    "zh": ("位置", "键", "问题", "实际值 / 允许值", "提示"),
}
_ROOT = {"en": "(top level)", "zh": "（顶层）"}


def _title(issues: Sequence[PolicyIssue], lang: Lang) -> str:
    files = ", ".join(dict.fromkeys(PurePath(issue.file).name for issue in issues)) or "?"
    count = len(issues)
    if lang == "zh":
        return f"{files} 中有 {count} 处错误"
    return f"{count} problem{'' if count == 1 else 's'} in {files}"


def _found_allowed(issue: PolicyIssue, lang: Lang) -> Text:
    labels = ("实际：", "允许：") if lang == "zh" else ("found: ", "allowed: ")
    text = Text()
    for label, value in zip(labels, (issue.found, issue.allowed), strict=True):
        if value is not None:
            if text:
                text.append("\n")
            text.append(label, style="dim")
            text.append(value)
    return text


def render_issues(issues: Sequence[PolicyIssue], lang: Lang = "en") -> RenderableType:
    """Every issue as a compiler-style block, titled with the count; readable at any terminal width.

    ``file:line:col  key`` on the first line (one clickable location, never wrapped), then the
    problem, what was found and what is allowed, and the hint.
    """
    parts: list[RenderableType] = [Text(_title(issues, lang), style="bold red")]
    for issue in issues:
        parts += _issue_block(issue, lang, mark="✗", colour="red", details=True)
    return Group(*parts)


def render_warnings(issues: Sequence[PolicyIssue], lang: Lang = "en") -> RenderableType:
    """Warnings of ``policy check`` (the file is valid): the same located blocks as errors, in yellow."""
    return Group(*(part for issue in issues for part in _issue_block(issue, lang, mark="⚠", colour="yellow",
                                                                      details=False)))


def _issue_block(issue: PolicyIssue, lang: Lang, *, mark: str, colour: str, details: bool) -> list[RenderableType]:
    """One located block: ``mark file:line:col  key``, the problem, found/allowed (with ``details``), the hint."""
    head = Text(f"{mark} ", style=f"bold {colour}")
    head.append(issue.location(), style="bold")
    head.append("  ")
    head.append(issue.key_path or _ROOT.get(lang, _ROOT["en"]), style="cyan")
    parts: list[RenderableType] = [head, Text.assemble("  ", (issue.message(lang), colour))]
    found = _found_allowed(issue, lang) if details else None
    if found:
        indented = Text("  ")
        indented.append_text(found)
        parts.append(Text(str(indented).replace("\n", "\n  ")))
    if issue.hint(lang):
        hint = _HEADERS.get(lang, _HEADERS["en"])[4]
        parts.append(Text.assemble("  ", (f"{hint}{'：' if lang == 'zh' else ': '}", "bold green"),
                                   (issue.hint(lang) or "", "green")))
    return parts


def render_issue_table(issues: Sequence[PolicyIssue], lang: Lang = "en") -> RenderableType:
    """The same issues as a table (location, key, problem, found / allowed, hint), for wide reports."""
    table = Table(title=_title(issues, lang), title_style="bold red", show_lines=True, expand=False)
    location, key, problem, found, hint = _HEADERS.get(lang, _HEADERS["en"])
    table.add_column(location, no_wrap=True, style="bold")  # must stay one clickable file:line:col
    key_width = min(max((cell_len(issue.key_path) for issue in issues), default=8), 28)  # keep paths whole
    table.add_column(key, overflow="fold", style="cyan", width=max(key_width, cell_len(key)))
    table.add_column(problem, overflow="fold", ratio=3)
    table.add_column(found, overflow="fold", ratio=2)
    table.add_column(hint, overflow="fold", style="green", ratio=3)
    for issue in issues:
        table.add_row(
            Text(issue.location()),
            Text(issue.key_path or _ROOT.get(lang, _ROOT["en"])),
            Text(issue.message(lang), style="red"),
            _found_allowed(issue, lang),
            Text(issue.hint(lang) or ""),
        )
    return table


_TITLES = {
    UsageError: {"en": "usage error", "zh": "用法错误"},
    InputError: {"en": "input error", "zh": "输入错误"},
    OutputLocked: {"en": "output in use", "zh": "输出文件正被占用"},
    OutputError: {"en": "output error", "zh": "输出错误"},
}


def render_error(err: MedinsError, lang: Lang = "en") -> RenderableType:
    """A panel with the message (and file, key and hint when known) of a usage or input error.

    A :class:`~medins.errors.PolicyError` is rendered as its table of issues; any other
    :class:`~medins.errors.MedinsError` as its text.
    """
    if isinstance(err, PolicyError):
        return render_issues(err.issues, lang)
    titles = next((t for cls, t in _TITLES.items() if isinstance(err, cls)), {"en": "error", "zh": "错误"})
    title = titles.get(lang, titles["en"])
    parts: list[RenderableType] = []
    if isinstance(err, InputError) and (err.file or err.key_path):
        where = ": ".join(part for part in (err.file, err.key_path) if part)
        parts.append(Text(where, style="bold"))
    message = err.message(lang) if isinstance(err, _MessageError) else str(err)
    parts.append(Text(message, style="red"))
    hint = err.hint(lang) if isinstance(err, _MessageError) else None
    if hint:
        parts.append(Text.assemble(("提示：" if lang == "zh" else "Hint: ", "bold"), hint))
    title_text = Text(title, style="bold red")
    return Panel(Group(*parts), title=title_text, title_align="left", border_style="red", expand=False)
