"""Tests of the safe, line-aware YAML layer (medins.policy.yamlsource)."""

from __future__ import annotations

import textwrap

import pytest

from medins.errors import PolicyError
from medins.policy.yamlsource import SYNTAX_HINT_EN, SYNTAX_HINT_ZH, Position, Positions, load_yaml


def _yaml(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def test_scalars_stay_text_except_null_and_booleans() -> None:
    """Numbers, rates, dates, yes/no and octal-looking codes stay exactly as written; no YAML float."""
    data, _ = load_yaml(
        _yaml("""
            amount: 500
            rate: 0.55
            percent: 55%
            date: 2007-07-01
            answer: yes
            code: 010
            exp: 1e3
            quoted_true: "true"
            quoted_number: '0.1'
            explicit: !!str true
            flags: [true, FALSE, True]
            nothing: [null, ~, Null, NULL]
            empty:
            block: |
              line one
            """),
        "t.yaml",
    )
    assert data == {
        "amount": "500",
        "rate": "0.55",
        "percent": "55%",
        "date": "2007-07-01",
        "answer": "yes",
        "code": "010",
        "exp": "1e3",
        "quoted_true": "true",
        "quoted_number": "0.1",
        "explicit": "true",
        "flags": [True, False, True],
        "nothing": [None, None, None, None],
        "empty": None,
        "block": "line one\n",
    }
    assert isinstance(data, dict)
    assert not any(isinstance(v, float) for v in data.values())


def test_non_string_keys_become_text() -> None:
    """`3: 650` is the key "3", and `true: x` the key "true": keys are always text as written."""
    data, _ = load_yaml("levels:\n  3: 650\n  1.5: x\n  true: y\n", "t.yaml")
    assert data == {"levels": {"3": "650", "1.5": "x", "true": "y"}}


def test_positions_are_one_based_for_keys_and_values() -> None:
    """Every key and value gets a 1-based position; `locate` prefers the key only when asked."""
    _, pos = load_yaml(
        _yaml("""
            # a comment line
            rules:
              - id: r1
                bands:
                  - upto: 500
                    rate: 0.55
            """),
        "t.yaml",
    )
    assert pos[("rules", 0, "bands", 0, "rate")] == Position(line=6, column=15, key_line=6, key_column=9)
    assert pos.locate(("rules", 0, "bands", 0, "rate")) == (6, 15)
    assert pos.locate(("rules", 0, "bands", 0, "rate"), prefer="key") == (6, 9)
    assert pos.locate(("rules", 0)) == (3, 5)  # a list item: where its mapping starts
    assert pos.locate(("rules", 0, "bands", 0, "missing")) == (5, 9)  # deepest known prefix
    assert pos.locate(("rules", 0, "bands", 0, "missing"), prefer="key") == (5, 9)
    assert pos.locate(()) == (2, 1)  # the document starts after the comment


def test_empty_value_points_at_its_key() -> None:
    """An empty value has no text of its own, so its position is its key's."""
    _, pos = load_yaml("a:\n  rate:\n  b: 1\n", "t.yaml")
    assert pos.locate(("a", "rate")) == (2, 3)


def test_empty_document_is_none_at_line_one() -> None:
    """An empty file (or comments only) loads as None, located at 1:1 for the "expected a mapping" error."""
    data, pos = load_yaml("# nothing here\n", "t.yaml")
    assert data is None
    assert pos.locate(("anything",)) == (1, 1)
    assert Positions().locate(("a",)) == (None, None)


def test_duplicate_keys_are_all_reported_with_both_lines() -> None:
    """Each repeated key is reported at its second occurrence, naming the line of the first."""
    text = _yaml("""
        id: a
        rules:
          - id: r1
            id: r2
        id: b
        """)
    with pytest.raises(PolicyError) as caught:
        load_yaml(text, "dup.yaml")
    issues = caught.value.issues
    assert [(i.code, i.line, i.column, i.key_path) for i in issues] == [
        ("duplicate_key", 4, 5, "rules[0].id"),
        ("duplicate_key", 5, 1, "id"),
    ]
    assert issues[0].message_en == "key 'id' appears again (first at line 3)"
    assert issues[0].message_zh == "键「id」重复出现（第一次在第 3 行）"
    assert issues[1].message_en == "key 'id' appears again (first at line 1)"
    assert issues[1].hint_en == "keep one 'id'; the first one is used, this one is ignored"
    assert issues[1].found == "'id'"

    data, pos = load_yaml(text, "dup.yaml", strict=False)
    assert data == {"id": "a", "rules": [{"id": "r1"}]}  # the first occurrence wins
    assert len(pos.issues) == 2


def test_syntax_error_is_located_with_the_quoting_hint() -> None:
    """A YAML syntax error stops loading with one issue at the problem mark, 1-based."""
    with pytest.raises(PolicyError) as caught:
        load_yaml("name: demo\nnote: see: clause 3\n", "bad.yaml")
    (issue,) = caught.value.issues
    assert (issue.code, issue.line, issue.column, issue.key_path) == ("yaml_syntax", 2, 10, "")
    assert issue.message_en == "YAML syntax error: mapping values are not allowed here"
    assert issue.message_zh == (
        "YAML 语法错误：这里不能出现「: 」（值中的冒号需要加引号）（mapping values are not allowed here）"
    )
    assert issue.hint_en == SYNTAX_HINT_EN
    assert SYNTAX_HINT_EN == "check indentation and quoting; a value containing ': ' or '#' must be quoted"
    assert issue.hint_zh == SYNTAX_HINT_ZH
    assert str(caught.value) == (
        "bad.yaml:2:10: YAML syntax error: mapping values are not allowed here "
        "Hint: check indentation and quoting; a value containing ': ' or '#' must be quoted"
    )


def test_tab_indentation_and_control_characters_are_located() -> None:
    """Tabs and unprintable characters are syntax errors with a position, never a traceback."""
    with pytest.raises(PolicyError) as caught:
        load_yaml("a:\n\tb: 1\n", "tab.yaml")
    assert caught.value.issues[0].location() == "tab.yaml:2:1"
    assert caught.value.issues[0].message_zh.startswith("YAML 语法错误：不能用 Tab 缩进")
    with pytest.raises(PolicyError) as caught:
        load_yaml("a: 1\nb: x\x07y\n", "bell.yaml")
    assert caught.value.issues[0].location() == "bell.yaml:2:5"
    assert caught.value.issues[0].message_en == "YAML syntax error: special character U+0007 is not allowed"


def test_python_tags_are_refused_and_never_constructed() -> None:
    """`!!python/object` and friends are rejected as issues; the safe loader never builds objects."""
    text = _yaml("""
        run: !!python/object/apply:os.system ["echo pwned"]
        obj: !!python/object:collections.OrderedDict {a: 1}
        custom: !include other.yaml
        """)
    with pytest.raises(PolicyError) as caught:
        load_yaml(text, "evil.yaml")
    issues = caught.value.issues
    assert [(i.code, i.line, i.column, i.key_path, i.found) for i in issues] == [
        ("yaml_tag", 1, 6, "run", "!!python/object/apply:os.system"),
        ("yaml_tag", 2, 6, "obj", "!!python/object:collections.OrderedDict"),
        ("yaml_tag", 3, 9, "custom", "!include"),
    ]
    assert issues[0].message_en == "YAML tag !!python/object/apply:os.system is not allowed"
    data, _ = load_yaml(text, "evil.yaml", strict=False)
    assert data == {"run": ["echo pwned"], "obj": {"a": "1"}, "custom": "other.yaml"}  # plain data only


def test_aliases_and_merge_keys_are_refused() -> None:
    """Anchors may exist but aliases (*x) and merge keys (<<) are reported: a policy reads top to bottom."""
    text = _yaml("""
        base: &b {rate: 0.5}
        copy: *b
        merged:
          <<: {rate: 0.6}
          upto: 100
        """)
    with pytest.raises(PolicyError) as caught:
        load_yaml(text, "alias.yaml")
    issues = caught.value.issues
    assert [(i.code, i.line, i.column, i.key_path) for i in issues] == [
        ("yaml_alias", 2, 7, "copy"),
        ("yaml_merge", 4, 3, "merged"),
    ]
    assert issues[0].message_en == "YAML aliases (*b) are not supported"
    assert issues[1].hint_zh == "请把各个键完整写出，使策略可以从上到下直接阅读"
    data, _ = load_yaml(text, "alias.yaml", strict=False)
    assert data == {"base": {"rate": "0.5"}, "copy": None, "merged": {"upto": "100"}}


def test_self_referencing_alias_cannot_loop() -> None:
    """A recursive alias is reported instead of being expanded (no infinite structure, no billion laughs)."""
    with pytest.raises(PolicyError) as caught:
        load_yaml("a: &x [*x]\n", "loop.yaml")
    assert caught.value.issues[0].code == "yaml_alias"
