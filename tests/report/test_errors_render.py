"""Tests of error rendering (medins.report.errors) and of the error classes' plain-text form."""

from __future__ import annotations

import io

import pytest
from rich.console import Console, RenderableType

from medins.errors import InputError, MedinsError, PolicyError, PolicyIssue, UsageError, format_key_path
from medins.report.errors import render_error, render_issues, render_warnings

RATE = PolicyIssue(
    file="policies/suqian.yaml", line=12, column=15, key_path="rules[1].bands[0].rate", found="'1.5'",
    allowed="0 ≤ x ≤ 1", message_en="must be at most 1", message_zh="不能大于 1",
    hint_en="a rate is a fraction of 1", hint_zh="比例是 1 的分数", code="out_of_range",
)  # fmt: skip
KEY = PolicyIssue(
    file="policies/suqian.yaml", line=3, column=1, key_path="[key]", found="'nmae'", allowed="id, name",
    message_en="unknown key 'nmae'", message_zh="未知的键「nmae」", hint_en="did you mean 'name'?",
    hint_zh="是不是想写「name」？", code="unknown_key",
)  # fmt: skip


def _render(renderable: RenderableType) -> str:
    console = Console(file=io.StringIO(), width=120, color_system=None)
    console.print(renderable)
    output = console.file.getvalue()  # type: ignore[attr-defined]
    assert isinstance(output, str)
    return output


def test_issue_table_in_english_names_every_location() -> None:
    """The English table is titled with the count and file, and shows file:line:col, key and texts."""
    out = _render(render_issues([RATE, KEY], "en"))
    assert "2 problems in suqian.yaml" in out
    assert "policies/suqian.yaml:12:15" in out
    assert "policies/suqian.yaml:3:1" in out
    assert "rules[1].bands[0].rate" in out
    assert "must be at most 1" in out
    assert "found: '1.5'" in out
    assert "allowed: 0 ≤ x ≤ 1" in out
    assert "did you mean 'name'?" in out


def test_warnings_are_the_same_located_blocks_without_a_title_or_found_allowed() -> None:
    """``policy check`` warnings (the file is valid): a ⚠ block per issue with location, key, message and
    hint, in either language; no error count title and no found/allowed lines (a warning is advice)."""
    out = _render(render_warnings([RATE, KEY], "en"))
    assert "⚠ policies/suqian.yaml:12:15  rules[1].bands[0].rate" in out
    assert "⚠ policies/suqian.yaml:3:1" in out
    assert "must be at most 1" in out and "hint: a rate is a fraction of 1" in out
    assert "✗" not in out and "problems in" not in out and "found:" not in out
    zh = _render(render_warnings([RATE], "zh"))
    assert "不能大于 1" in zh and "比例是 1 的分数" in zh


def test_issue_table_in_chinese_has_the_chinese_title_and_texts() -> None:
    """With lang="zh" the title, headers, messages and hints are Chinese; locations are unchanged."""
    out = _render(render_issues([RATE, KEY], "zh"))
    assert "suqian.yaml 中有 2 处错误" in out
    assert "policies/suqian.yaml:12:15" in out
    assert "提示" in out
    assert "不能大于 1" in out
    assert "实际：'1.5'" in out
    assert "是不是想写「name」？" in out


def test_user_text_is_never_rich_markup() -> None:
    """A key path like `[key]` is shown literally, not swallowed as a Rich style tag."""
    out = _render(render_issues([KEY], "en"))
    assert "[key]" in out
    assert "1 problem in suqian.yaml" in out


def test_usage_and_input_errors_render_as_panels() -> None:
    """UsageError and InputError render as a panel with message, file/key and hint in the chosen language."""
    usage = UsageError("unknown policy 'x'", "找不到政策「x」", "see medins policy list", "见 policy list")
    out = _render(render_error(usage, "en"))
    assert "usage error" in out and "unknown policy 'x'" in out and "Hint: see medins policy list" in out
    out = _render(render_error(usage, "zh"))
    assert "用法错误" in out and "找不到政策「x」" in out and "提示：见 policy list" in out
    bad = InputError("no header row", "没有表头行", file="bill.csv", key_path="[row 3]")
    out = _render(render_error(bad, "zh"))
    assert "输入错误" in out and "bill.csv: [row 3]" in out and "没有表头行" in out
    assert "suqian.yaml 中有 1 处错误" in _render(render_error(PolicyError([KEY]), "zh"))


def test_plain_text_forms_and_exit_codes() -> None:
    """str() of the errors is the one-line English form; every user error exits with code 2."""
    assert RATE.location() == "policies/suqian.yaml:12:15"
    assert PolicyIssue(file="a.yaml", line=None, column=None, key_path="", message_en="m", message_zh="m",
                       code="yaml_syntax").location() == "a.yaml"  # fmt: skip
    assert str(PolicyError([RATE, KEY])) == (
        "policies/suqian.yaml:12:15: rules[1].bands[0].rate: must be at most 1"
        " (found '1.5'; allowed 0 ≤ x ≤ 1) Hint: a rate is a fraction of 1\n"
        "policies/suqian.yaml:3:1: [key]: unknown key 'nmae' (found 'nmae'; allowed id, name)"
        " Hint: did you mean 'name'?"
    )
    assert RATE.format("zh") == (
        "policies/suqian.yaml:12:15: rules[1].bands[0].rate: 不能大于 1（实际 '1.5'；允许 0 ≤ x ≤ 1）"
        " 提示：比例是 1 的分数"
    )
    assert str(UsageError("en text", "中文")) == "en text"
    assert str(InputError("bad", "坏", file="bill.csv", key_path="rows")) == "bill.csv: rows: bad"
    for err in (UsageError("a", "b"), InputError("a", "b"), PolicyError([RATE])):
        assert isinstance(err, MedinsError) and err.exit_code == 2
    with pytest.raises(MedinsError):
        raise PolicyError([KEY])


def test_key_paths_are_dotted_with_indices() -> None:
    """Key paths read `rules[1].bands[0].rate`; keys that would be ambiguous are bracketed."""
    assert format_key_path(("rules", 1, "bands", 0, "rate")) == "rules[1].bands[0].rate"
    assert format_key_path(("levels", "3", "起付线")) == "levels.3.起付线"
    assert format_key_path(("values", "a.b", "x y")) == 'values["a.b"]["x y"]'
    assert format_key_path(()) == ""
