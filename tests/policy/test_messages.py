"""Tests of pydantic errors → located, bilingual issues (medins.policy.messages), with golden texts."""

from __future__ import annotations

import textwrap
from datetime import date
from decimal import Decimal
from typing import Annotated, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from medins.errors import PolicyError, PolicyIssue
from medins.policy.messages import PolicyValueError, allowed_keys, dictionary, load_model


class Label(BaseModel):
    model_config = ConfigDict(extra="forbid")
    zh: str
    en: str


class Band(BaseModel):
    model_config = ConfigDict(extra="forbid")
    upto: Decimal | None = Field(None, ge=0)
    rate: Decimal = Field(ge=0, le=1)


class Rule(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    label: Label | None = None
    per: Literal["admission", "year"] = "admission"
    bands: list[Band] = Field(min_length=1)
    enabled: bool = True
    valid_from: date | None = None
    level: int | None = None
    note: str | None = Field(None, alias="备注")

    @field_validator("id")
    @classmethod
    def _lower_case(cls, value: str) -> str:
        if value != value.lower():
            raise ValueError("a rule id is lower case || 规则 id 必须小写 || write r1, not R1 || 请写 r1")
        return value

    @model_validator(mode="after")
    def _bands_ascend(self) -> Rule:
        previous = Decimal(-1)
        for i, band in enumerate(self.bands):
            if band.upto is None:
                continue
            if band.upto <= previous:
                raise PolicyValueError(
                    f"band {i + 1} ends at {band.upto}, not above the previous band's {previous}",
                    f"第 {i + 1} 段上限 {band.upto} 不高于上一段的 {previous}",
                    hint_en="list the bands in ascending order of upto",
                    hint_zh="请按 upto 从小到大排列各段",
                    code="bands_unordered",
                    loc=("bands", i, "upto"),
                )
            previous = band.upto
        return self


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    name: Label
    rules: list[Rule]
    parameters: dict[str, Band] = {}

    @field_validator("id")
    @classmethod
    def _no_spaces(cls, value: str) -> str:
        if " " in value:
            raise ValueError("a policy id has no spaces")
        return value


class Fixed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["fixed"]
    amount: Decimal


class Scaled(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["scaled"]
    rate: Decimal = Field(ge=0, le=1)


class Cap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limit: Annotated[Fixed | Scaled, Field(discriminator="kind")]
    fallback: Fixed | Scaled | None = None
    max: Decimal | Literal["unlimited"] = "unlimited"


HEAD = "id: demo\nname: {zh: 演示, en: demo}\n"


def _issues(body: str, model: type[BaseModel] = Policy, head: str = HEAD) -> list[PolicyIssue]:
    with pytest.raises(PolicyError) as caught:
        load_model(head + textwrap.dedent(body).lstrip("\n"), "p.yaml", model)
    return caught.value.issues


def _where(issue: PolicyIssue) -> tuple[str, int | None, int | None, str]:
    return issue.code, issue.line, issue.column, issue.key_path


def test_valid_policy_loads_with_exact_decimals() -> None:
    """A float-looking rate stays text in YAML and becomes an exact Decimal in the model."""
    policy = load_model(
        HEAD + "rules:\n  - id: r1\n    bands: [{upto: 500, rate: 0.55}, {rate: 0.1}]\n", "p.yaml", Policy
    )
    assert policy.rules[0].bands[0].rate == Decimal("0.55")
    assert policy.rules[0].bands[1].rate + Decimal("0.2") == Decimal("0.3")


def test_unknown_key_lists_allowed_keys_and_did_you_mean() -> None:
    """An unknown key is located at the key, lists the keys allowed there and suggests the closest."""
    issues = _issues("""
        rules:
          - id: r1
            bands:
              - upto: 500
                rat: 0.55
        """)
    missing, unknown = issues
    assert _where(unknown) == ("unknown_key", 7, 9, "rules[0].bands[0].rat")
    assert (unknown.found, unknown.allowed) == ("'rat'", "upto, rate")
    assert (unknown.message_en, unknown.message_zh) == ("unknown key 'rat'", "未知的键「rat」")
    assert (unknown.hint_en, unknown.hint_zh) == ("did you mean 'rate'?", "是不是想写「rate」？")
    assert _where(missing) == ("missing_key", 6, 9, "rules[0].bands[0].rate")
    assert (missing.found, missing.message_en) == (None, "required key 'rate' is missing")
    assert missing.hint_en == "add 'rate: …' to rules[0].bands[0]"
    assert missing.hint_zh == "请在 rules[0].bands[0] 中添加「rate: …」"


def test_unknown_key_without_close_match_and_aliases() -> None:
    """Without a close match the hint says to check the spelling; aliases are the allowed keys."""
    (issue,) = _issues("rules:\n  - id: r1\n    bands: [{rate: 1}]\n    zzz: 1\n")
    assert _where(issue) == ("unknown_key", 6, 5, "rules[0].zzz")
    assert issue.allowed == "id, label, per, bands, enabled, valid_from, level, 备注"
    assert issue.hint_en == "check the spelling or remove the key; the allowed keys are listed"
    assert allowed_keys(Label) == ["zh", "en"]


def test_every_value_error_kind_at_once() -> None:
    """Bad choice, bool, date, integer, number and range errors all come at once, each located."""
    issues = _issues("""
        rules:
          - id: r1
            per: yearly
            enabled: maybe
            valid_from: 2007-7-1
            level: 1.5
            bands:
              - upto: 5oo
                rate: 1.5
        """)
    assert [_where(i) for i in issues] == [
        ("bad_choice", 5, 10, "rules[0].per"),
        ("bad_bool", 6, 14, "rules[0].enabled"),
        ("bad_date", 7, 17, "rules[0].valid_from"),
        ("bad_number", 8, 12, "rules[0].level"),
        ("bad_number", 10, 15, "rules[0].bands[0].upto"),
        ("out_of_range", 11, 15, "rules[0].bands[0].rate"),
    ]
    choice, boolean, when, level, upto, rate = issues
    assert (choice.found, choice.allowed) == ("'yearly'", "admission, year")
    assert choice.hint_en == "did you mean 'year'?"
    assert choice.message_zh == "'yearly' 不是允许的取值"
    assert (boolean.allowed, boolean.hint_en) == ("true, false", "write true or false")
    assert when.message_en == "expected a date (input is too short)"
    assert when.hint_en == "write the date as YYYY-MM-DD with two-digit month and day, e.g. 2024-01-01"
    assert (level.message_en, level.found) == ("expected a whole number", "'1.5'")
    assert (upto.message_en, upto.message_zh, upto.found) == ("expected a number", "应为数字", "'5oo'")
    assert upto.hint_en == (
        "write a plain number such as 1500 or 0.55, without units, spaces or thousands separators"
    )
    assert (rate.message_en, rate.message_zh) == ("must be at most 1", "不能大于 1")
    assert (rate.found, rate.allowed) == ("'1.5'", "0 ≤ x ≤ 1")
    assert rate.hint_en == "a rate is a fraction of 1: write 55% or 0.55, not 55"


def test_lower_bound_shows_the_range() -> None:
    """A value under `ge` names the bound and the allowed range."""
    (issue,) = _issues("rules:\n  - id: r1\n    bands: [{upto: -5, rate: 0.5}]\n")
    assert _where(issue) == ("out_of_range", 5, 20, "rules[0].bands[0].upto")
    assert (issue.message_en, issue.found, issue.allowed) == ("must be at least 0", "'-5'", "0 ≤ x")
    assert (issue.hint_en, issue.hint_zh) == ("use a value in the range 0 ≤ x", "请使用 0 ≤ x 范围内的取值")


def test_wrong_container_types_and_too_short() -> None:
    """A scalar for a list or mapping, an empty list and a bool for text are wrong_type/too_short."""
    issues = _issues("rules:\n  - id: true\n    label: demo\n    bands: []\n", head="id: demo\nname: demo\n")
    assert [_where(i) for i in issues] == [
        ("wrong_type", 2, 7, "name"),
        ("wrong_type", 4, 9, "rules[0].id"),
        ("wrong_type", 5, 12, "rules[0].label"),
        ("too_short", 6, 12, "rules[0].bands"),
    ]
    name, rule_id, _, bands = issues
    assert (name.message_en, name.allowed) == ("expected a mapping of keys", "mapping")
    assert (rule_id.message_en, rule_id.found) == ("expected text", "true")
    assert bands.message_en == "needs at least 1 item(s), found 0"
    assert bands.message_zh == "至少需要 1 项，实际只有 0 项"
    (listing,) = _issues("rules: r1\n")
    assert listing.message_en == "expected a list"
    assert listing.hint_en == "write one item per line starting with '- ', or [a, b]"


def test_dict_of_models_is_walked() -> None:
    """Errors inside `dict[str, Model]` keep the user's key in the path."""
    (issue,) = _issues("rules: [{id: r1, bands: [{rate: 1}]}]\nparameters:\n  ceiling: {rate: x}\n")
    assert _where(issue) == ("bad_number", 5, 19, "parameters.ceiling.rate")


def test_policy_value_error_points_below_the_model() -> None:
    """A model validator's PolicyValueError keeps its code, texts and sub-location (bands_unordered)."""
    (issue,) = _issues("""
        rules:
          - id: r1
            bands:
              - {upto: 500, rate: 0.5}
              - {upto: 400, rate: 0.6}
        """)
    assert _where(issue) == ("bands_unordered", 7, 16, "rules[0].bands[1].upto")
    assert issue.found == "'400'"
    assert issue.message_en == "band 2 ends at 400, not above the previous band's 500"
    assert issue.message_zh == "第 2 段上限 400 不高于上一段的 500"
    assert issue.hint_en == "list the bands in ascending order of upto"
    assert issue.hint_zh == "请按 upto 从小到大排列各段"


def test_plain_value_errors_bilingual_convention_and_fallback() -> None:
    """`ValueError("en || zh || hint en || hint zh")` is split; an English-only one gets a zh prefix."""
    head = "id: my demo\nname: {zh: a, en: b}\n"
    issues = _issues("rules:\n  - id: R1\n    bands: [{rate: 1}]\n", head=head)
    policy_id, rule_id = issues
    assert _where(policy_id) == ("invalid_value", 1, 5, "id")
    assert policy_id.message_en == "a policy id has no spaces"
    assert policy_id.message_zh == "取值无效：a policy id has no spaces"
    assert _where(rule_id) == ("invalid_value", 4, 9, "rules[0].id")
    assert (rule_id.message_en, rule_id.message_zh) == ("a rule id is lower case", "规则 id 必须小写")
    assert (rule_id.hint_en, rule_id.hint_zh) == ("write r1, not R1", "请写 r1")


def test_yaml_issues_and_validation_issues_come_together_in_file_order() -> None:
    """Duplicate keys and schema errors are reported in one PolicyError, sorted by line."""
    issues = _issues("rules:\n  - id: r1\n    bands: [{rate: 2}]\nid: again\n")
    assert [_where(i) for i in issues] == [
        ("out_of_range", 5, 20, "rules[0].bands[0].rate"),
        ("duplicate_key", 6, 1, "id"),
    ]


def test_discriminated_union_tag_is_a_bad_choice_at_the_tag() -> None:
    """An unknown discriminator value points at the tag key and suggests the closest kind."""
    (issue,) = _issues("limit: {kind: fixd, amount: 5}\n", model=Cap, head="")
    assert _where(issue) == ("bad_choice", 1, 15, "limit.kind")
    assert (issue.found, issue.allowed, issue.hint_en) == ("'fixd'", "fixed, scaled", "did you mean 'fixed'?")
    (inside,) = _issues("limit: {kind: scaled, rate: 3}\n", model=Cap, head="")
    assert _where(inside) == ("out_of_range", 1, 29, "limit.rate")  # the tag is dropped from the path


def test_plain_union_keeps_only_the_branch_that_was_meant() -> None:
    """Of a plain union's branches only the likeliest is reported; a scalar union lists every option."""
    text = "limit: {kind: fixed, amount: 1}\nfallback: {kind: fixed, amount: x}\nmax: lots\n"
    issues = _issues(text, model=Cap, head="")
    assert [_where(i) for i in issues] == [
        ("bad_number", 2, 33, "fallback.amount"),  # the Scaled branch's errors are dropped
        ("bad_value", 3, 6, "max"),
    ]
    assert (issues[1].allowed, issues[1].message_en) == ("number | unlimited", "'lots' is not accepted here")


def test_dictionary_covers_the_documented_error_types() -> None:
    """Every pydantic error type the brief names has an entry with both languages."""
    table = dictionary()
    kinds = [
        *("extra_forbidden", "missing", "decimal_parsing", "decimal_type", "float_parsing", "int_parsing"),
        *("int_type", "int_from_float", "bool_parsing", "bool_type", "date_parsing", "date_type"),
        *("date_from_datetime_parsing", "literal_error", "enum", "greater_than_equal", "less_than_equal"),
        *("greater_than", "less_than", "string_type", "list_type", "dict_type", "model_type", "too_short"),
        *("value_error", "*"),
    ]
    for kind in kinds:
        assert table[kind]["en"] and table[kind]["zh"], kind
