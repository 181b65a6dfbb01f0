"""The policy language: pydantic models of a policy YAML file.

Why: a policy is code that pays money, so it is validated like code. Every model forbids unknown
keys, every number is read from text into :class:`~decimal.Decimal` (never a YAML float), rates are
checked to lie in 0–100 %, bands must ascend, and every expression is parsed (never ``eval``-ed)
when the file loads, so a typo fails at ``medins policy check`` rather than on the millionth claim.

Shape of a policy (see ``policies/suqian-2007.yaml`` for a complete, cited example):

* ``parameters`` — every number of the scheme with its ``source`` citation: a scalar ``value``, a
  table of ``values`` keyed by a claim attribute (zone, level, category …), or a ``scale`` of bands.
  ``missing: true`` declares a number the source document does not give; settling a claim that
  needs it stops with an error naming ``--set NAME=…``.
* ``versions`` — dated parameter overrides; the version in force on the service date applies.
* ``admission`` — who and what is covered: categories, designated hospitals, excluded causes and
  zones, and ``checks`` (a reason code and a ``reject_if`` expression each).
* ``scope`` — how a bill splits into fully self-paid, over-limit, self-pay-first and in-scope parts.
* ``rules`` — benefit rules, the first whose ``when`` holds settles the claim: deductible, ceiling,
  bands, allowances, cap, and further payer ``layers`` (docs/payers.md).
* ``account`` — an individual account paying part of the patient share.
* ``premiums`` — contributions by person group.
* ``vocabulary`` — codes of its own the policy adds to the closed vocabularies (``claims/vocabulary.py``).

Checks that need the whole policy (codes, names by stage, table entries, constant ranges, idle keys)
live in ``checks.py``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from types import UnionType
from typing import Annotated, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from medins.money import MoneyError, to_fen, to_ppm
from medins.policy.messages import PolicyValueError as PVE
from medins.policy.plan import PAYER_FIELDS, PayerOrderError, payer_order, self_pay_first_name
from medins.textnorm import nfkc

_NAME = r"^[a-z][a-z0-9_]*$"
Name = Annotated[str, Field(pattern=_NAME)]


class ExprMark:
    """Marks a field as an expression, so the loader parses and checks every one of them."""


#: An expression in the policy expression language (see ``medins/policy/expr.py``); checked on load.
ExprText = Annotated[str, Field(min_length=1), ExprMark()]
#: An optional expression, marked as a whole so that the loader checks it too when it is given.
OptionalExprText = Annotated[str | None, Field(min_length=1), ExprMark()]

UNITS = ("yuan", "rate", "number", "date", "text", "scale")


def _decimal_text(value: object) -> object:
    """YAML scalars arrive as text; turn ``"55%"`` into Decimal("0.55") and ``"5000"`` into Decimal."""
    if isinstance(value, str):
        text = value.strip().replace(",", "")
        if text.endswith("%"):
            try:
                return Decimal(to_ppm(text)) / 1_000_000
            except MoneyError as exc:
                raise ValueError(str(exc)) from None
        return text
    return value


Number = Annotated[Decimal, BeforeValidator(_decimal_text)]


class Model(BaseModel):
    """Base of every policy model: unknown keys are errors, values are not coerced silently.

    ``defer_build``: the validators are built when a policy is first validated, not on import, so a command
    that takes its compiled policy from the cache (``medins.policy.cache``) never builds them."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class Text(Model):
    """A label in both languages."""

    zh: str
    en: str


class Band(Model):
    """One band of a scale: the part of the amount in (previous ``upto``, ``upto``] is paid at ``rate``.

    The last band may omit ``upto`` (no upper edge). Edges are yuan on the axis the rule names.
    """

    upto: Number | None = Field(None, ge=0, description="Upper edge in yuan, inclusive (above 0); omit on the last band.")
    rate: Number = Field(ge=0, le=1, description="Fund rate for the part in this band, e.g. 55%.")
    source: str | None = None


class Parameter(Model):
    """A number (or table of numbers, or scale) of the scheme, with the clause it comes from."""

    unit: Literal["yuan", "rate", "number", "date", "text", "scale"] | None = Field(
        None,
        description="How to read value(s): yuan, rate (e.g. 55%), number, date (YYYY-MM-DD), text; scale for bands.",
    )
    value: str | None = Field(None, description="A scalar value.")
    values: dict[str, object] | None = Field(None, description="A table keyed by a claim attribute; may nest.")
    scale: list[Band] | None = Field(None, description="Bands (lo, hi] with rates, ascending.")
    missing: bool = Field(False, description="The source gives no number: settling needs --set NAME=VALUE.")
    source: str = Field(description="Where the number comes from: rule id and seed line, e.g. 'SQ-12 001:L99'.")
    label: Text | None = None
    note: str | None = None

    @model_validator(mode="after")
    def _one_shape(self) -> Parameter:
        shapes = [s for s in ("value", "values", "scale") if getattr(self, s) is not None]
        if self.missing and shapes:
            raise PVE("a parameter marked missing: true must not also give value, values or scale",
                      "标记为 missing: true 的参数不能再给出 value、values 或 scale", code="missing_with_value")
        if self.missing and self.unit is None:
            raise PVE("a missing parameter needs a unit, so that --set NAME=VALUE can be checked",
                      "缺失参数需要 unit,以便检查 --set 名称=值", code="missing_unit",
                      hint_en="add unit: yuan | rate | number | date | text | scale",
                      hint_zh="加上 unit: yuan | rate | number | date | text | scale")
        if not self.missing and len(shapes) != 1:
            raise PVE("give exactly one of value, values or scale (or missing: true)",
                      "value、values、scale 只能给出其中一个(或 missing: true)", code="parameter_shape")
        if (self.value is not None or self.values is not None) and self.unit is None:
            raise PVE("value and values need a unit: yuan, rate, number, date or text",
                      "value 和 values 需要 unit:yuan、rate、number、date 或 text", code="missing_unit",
                      hint_en="add unit: yuan (amounts), rate (e.g. 55%), number, date or text",
                      hint_zh="加上 unit:yuan(金额)、rate(如 55%)、number、date 或 text")
        if self.value is not None:
            try:
                check_scalar(self.value, self.unit)
            except PVE as exc:
                raise PVE(exc.message_en, exc.message_zh, hint_en=exc.hint_en, hint_zh=exc.hint_zh, code=exc.code,
                          loc=("value",), found=exc.found, allowed=exc.allowed) from None
        if self.values is not None:
            _check_table(self.values, self.unit)
        if self.scale is not None:
            check_scale(self.scale)
        return self


_MONEY_CODES = {"negative_amount": "out_of_range", "too_large": "out_of_range", "sub_fen": "sub_fen"}


def check_scalar(text: object, unit: str | None) -> object:
    """Validate and convert one scalar of the given unit; raise a bilingual PolicyValueError."""
    if text is None:
        raise PVE("a table entry is empty", "表中有空值", code="bad_value")
    if isinstance(text, bool):
        raise PVE(f"{text!r} is a boolean, expected a {unit}", f"{text!r} 是布尔值,应为 {unit}", code="wrong_type")
    raw = str(text).strip()
    if unit == "text":
        return raw
    if unit == "date":
        try:
            return date.fromisoformat(raw)
        except ValueError:
            raise PVE(f"{raw!r} is not a date YYYY-MM-DD", f"{raw!r} 不是日期 YYYY-MM-DD", code="bad_date",
                      found=raw, allowed="YYYY-MM-DD") from None
    if unit == "rate":
        try:
            ppm = to_ppm(raw)
        except MoneyError as exc:
            raise PVE(f"{raw!r} is not a rate such as 55% or 0.55 ({exc})", f"{raw!r} 不是比例(如 55% 或 0.55)",
                      code="bad_number", found=raw, allowed="0%–100%") from None
        if not 0 <= ppm <= 1_000_000:
            raise PVE(f"rate {raw!r} is outside 0–100%", f"比例 {raw!r} 不在 0–100% 之间", code="out_of_range",
                      found=raw, allowed="0%–100%",
                      hint_en="a rate is a fraction of 1: write 55% or 0.55, not 55",
                      hint_zh="比例是小于等于 1 的小数:写 55% 或 0.55,不要写 55")
        return Decimal(ppm) / 1_000_000
    if unit == "yuan":  # the one money grammar of medins.money, as a bill, a batch cell and --set read it
        try:
            to_fen(raw)
        except MoneyError as exc:
            zh = {"negative_amount": "为负数", "sub_fen": "超过两位小数(小于一分)"}.get(exc.code, "不是有效金额")
            raise PVE(str(exc), f"金额 {raw!r} {zh}", code=_MONEY_CODES.get(exc.code, "bad_number"), found=raw,
                      allowed=">= 0, at most two decimals, e.g. 1200.50") from None
        raw = nfkc(raw).replace(",", "").replace("¥", "").replace("元", "").strip()  # the digits as written
    try:
        dec = Decimal(raw.replace(",", ""))
    except ArithmeticError:
        raise PVE(f"{raw!r} is not a number", f"{raw!r} 不是数字", code="bad_number", found=raw) from None
    if not dec.is_finite():
        raise PVE(f"{raw!r} is not a finite number", f"{raw!r} 不是有限数字", code="bad_number", found=raw)
    if unit == "yuan":
        if dec < 0:
            raise PVE(f"amount {raw!r} is negative", f"金额 {raw!r} 为负数", code="out_of_range", found=raw,
                      allowed=">= 0")
        if dec != dec.quantize(Decimal("0.01")):
            raise PVE(f"amount {raw!r} has more than two decimals (finer than one fen)",
                      f"金额 {raw!r} 超过两位小数(小于一分)", code="sub_fen", found=raw)
    return dec


#: An open last key of a numeric table: ``"3+"`` is the entry for 3 and every later number (第三次及以后).
OPEN_KEY = re.compile(r"^(\d+)\+$")


def is_missing_entry(value: object) -> bool:
    """A table entry the source does not give: ``{missing: true}`` (optionally with a ``source``)."""
    return isinstance(value, dict) and "missing" in value


def _check_table(values: dict[str, object], unit: str | None, path: tuple = ()) -> None:
    _check_open_key(values, path)
    for key, val in values.items():
        if is_missing_entry(val):
            extra = sorted(str(k) for k in val if k not in ("missing", "source"))  # type: ignore[union-attr]
            if val["missing"] is not True or extra:  # type: ignore[index]
                raise PVE("a missing table entry is written {missing: true} (optionally with source)",
                          "缺失的表项写作 {missing: true}（可加 source）", code="parameter_shape",
                          loc=("values", *path, key), found=str(val), allowed="{missing: true, source: …}")
            continue
        if isinstance(val, dict):
            _check_table(val, unit, (*path, key))
        else:
            try:
                check_scalar(val, unit)
            except PVE as exc:
                raise PVE(exc.message_en, exc.message_zh, hint_en=exc.hint_en, hint_zh=exc.hint_zh, code=exc.code,
                          loc=("values", *path, key), found=exc.found, allowed=exc.allowed) from None


def _check_open_key(values: dict[str, object], path: tuple) -> None:
    """At most one open key (``"3+"``) per table level, above every other key, which must all be numbers."""
    opens = [k for k in values if OPEN_KEY.match(str(k))]
    if not opens:
        return
    loc = ("values", *path, opens[-1])
    if len(opens) > 1:
        raise PVE(f"a table has one open last key at most, found {', '.join(map(str, opens))}",
                  f"一张表最多一个“及以后”的键，实际有 {'、'.join(map(str, opens))}", code="open_key",
                  loc=loc, found=", ".join(map(str, opens)), allowed="one key N+")
    start = int(OPEN_KEY.match(str(opens[0])).group(1))  # type: ignore[union-attr]
    for key in values:
        if key == opens[0]:
            continue
        text = str(key)
        if not text.isdigit() or int(text) >= start:
            raise PVE(f"key {text!r} does not fit the open key {opens[0]!r}: the other keys must be whole "
                      f"numbers below {start}", f"键 {text!r} 与“及以后”的键 {opens[0]!r} 不相容：其他键须为小于 "
                      f"{start} 的整数", code="open_key", loc=("values", *path, key), found=text,
                      allowed=f"0…{start - 1}", hint_en=f"{opens[0]!r} already covers {start} and every later number",
                      hint_zh=f"{opens[0]!r} 已包括 {start} 及以后的所有数")


def check_scale(scale: list[Band]) -> None:
    """Bands ascend strictly; only the last may be open-ended."""
    if not scale:
        raise PVE("a scale needs at least one band", "分段表至少需要一段", code="too_short")
    previous = Decimal(-1)
    for i, band in enumerate(scale):
        if band.upto is None:
            if i != len(scale) - 1:
                raise PVE(f"band {i + 1} has no upto but is not the last band", f"第 {i + 1} 段没有 upto,但不是最后一段",
                          code="bands_unordered", loc=("scale", i),
                          hint_en="only the last band may be open-ended", hint_zh="只有最后一段可以没有上限")
            continue
        if band.upto <= 0:
            raise PVE(f"band {i + 1} ends at {band.upto}: a band edge must be above 0",
                      f"第 {i + 1} 段上限为 {band.upto}：分段上限必须大于 0", code="band_edge",
                      loc=("scale", i, "upto"), found=str(band.upto), allowed="> 0",
                      hint_en="edges are yuan on the rule's axis; the first band starts at 0 by itself "
                      "(with axis: above_deductible, at the deductible)",
                      hint_zh="上限是规则所用轴上的金额（元）；第一段自动从 0 开始（above_deductible 轴从起付线开始）")
        if band.upto <= previous:
            raise PVE(f"band {i + 1} upto {band.upto} is not above the previous edge {previous}",
                      f"第 {i + 1} 段上限 {band.upto} 不高于上一段 {previous}", code="bands_unordered",
                      loc=("scale", i, "upto"), found=str(band.upto), allowed=f"> {previous}",
                      hint_en="bands must ascend: list them from the lowest edge up",
                      hint_zh="分段必须递增:从最低的上限开始排列")
        previous = band.upto


class Version(Model):
    """Parameters in force from ``valid_from`` to ``valid_to`` (inclusive); overrides by name."""

    id: str
    valid_from: str | None = Field(None, description="YYYY-MM-DD, or the name of a date parameter.")
    valid_to: str | None = Field(None, description="YYYY-MM-DD (inclusive), or the name of a date parameter.")
    parameters: dict[Name, Parameter] = Field(default_factory=dict)
    source: str | None = None
    note: str | None = None


class Hospital(Model):
    """A designated facility named by the policy; its zone/level/kind are filled into bills naming it."""

    name: str
    zone: str | None = None
    level: int | None = Field(None, ge=0, le=3)
    kind: str | None = None
    source: str | None = None


class Categories(Model):
    """Person categories the policy distinguishes.

    A bill with another category is settled as ``default`` (so one bill compares across regions);
    without a default such a bill is rejected ``unknown_category``, naming the known categories.
    """

    known: list[str]
    default: str | None = None
    source: str | None = None


class Check(Model):
    """An admissibility rule: a claim for which ``reject_if`` is true is rejected with ``code``.

    An unknown fact makes the expression unknown: the check is then reported as unchecked, never a
    rejection (docs/bill.md). ``enabled: false`` switches it off for what-if runs.
    """

    code: str = Field(pattern=r"^[a-z_]+(:[a-z_0-9]+)?$")
    reject_if: ExprText
    when: ExprText | None = None
    enabled: bool = True
    source: str
    label: Text | None = None


class NotCheckable(Model):
    """A condition of the source document no bill can show (enrolment, contributions paid, documents).

    Why listed at all: a settlement that silently assumes such a condition holds looks more certain
    than it is. Each one is named in the ``unchecked`` list of every claim it concerns (``when``),
    with its citation, so a clerk knows what remains to be verified by hand.
    """

    code: str = Field(pattern=r"^[a-z_]+$")
    when: ExprText | None = None
    source: str
    label: Text | None = None


class Admission(Model):
    """Who and what is covered, in order: version in force, category, hospital list, causes, checks."""

    categories: Categories | None = None
    hospitals: list[Hospital] = Field(default_factory=list)
    unlisted_hospitals: Literal["allow", "not_designated"] = "allow"
    hospitals_when: ExprText | None = Field(None, description=(
        "Which claims the hospital list binds (e.g. stays only, when outpatient care is free to choose); default: all."))
    hospitals_source: str | None = None
    excluded_causes: list[str] = Field(default_factory=list)
    excluded_causes_source: str | None = None
    excluded_zones: list[str] = Field(default_factory=list)
    excluded_zones_source: str | None = None
    checks: list[Check] = Field(default_factory=list)
    not_checkable: list[NotCheckable] = Field(default_factory=list, description=(
        "Conditions no bill shows (enrolment, contributions paid …): listed as unchecked, with their source."))


class ItemSelector(Model):
    """Which line items a scope rule touches: by category and/or drug class, on claims where ``when`` holds."""

    categories: list[str] | None = None
    classes: list[Literal["A", "B", "C"]] | None = None
    when: ExprText | None = None
    source: str


class ItemLimit(ItemSelector):
    """Counted amount per line: at most ``max`` yuan, or ``max_per_dose`` × doses (TCM)."""

    max: ExprText | None = None
    max_per_dose: ExprText | None = None

    @model_validator(mode="after")
    def _one(self) -> ItemLimit:
        if (self.max is None) == (self.max_per_dose is None):
            raise PVE("give exactly one of max or max_per_dose", "max 与 max_per_dose 只能给出其中一个",
                      code="parameter_shape")
        return self


class VisitLimit(ItemSelector):
    """Counted amount per claim for a group of items together (e.g. drugs ≤ 10 per village visit)."""

    max: ExprText


class Approval(ItemSelector):
    """Single items of at least ``min_amount`` need ``approved: true``, else fully self-paid, unless ``waived_if``."""

    min_amount: ExprText
    waived_if: ExprText | None = None


class SelfPayFirst(ItemSelector):
    """A share of the selected items (e.g. class B 10 %) is paid by the patient first (先行自付).

    ``fund_rate``: the fund pays this share of what is left of the line after the 先行自付 directly,
    outside the deductible and the bands (e.g. imported implants: 50 % first, the rest at 100 %);
    the patient pays the remainder. That payment is rounded half up to the fen once per claim, on its
    own, then added to the basic fund's payment before the cap (so caps still apply).
    ``id`` names the rule in reason codes and ``--explain`` (default ``self_pay_first[i]``).
    """

    id: Name | None = None
    rate: ExprText
    fund_rate: OptionalExprText = Field(
        None, description="Fund rate on the rest of the line after the share, paid directly (no deductible/bands).")


class Scope(Model):
    """How a bill splits into fully self-paid, over-limit, self-pay-first and in-scope amounts."""

    excluded: list[ItemSelector] = Field(default_factory=list, description="Fully self-paid items.")
    in_scope_only: ItemSelector | None = Field(None, description="A positive list: other items are self-paid.")
    approvals: list[Approval] = Field(default_factory=list)
    item_limits: list[ItemLimit] = Field(default_factory=list)
    visit_limits: list[VisitLimit] = Field(default_factory=list)
    self_pay_first: list[SelfPayFirst] = Field(default_factory=list)
    self_pay_first_combine: Literal["max", "sequential"] | None = Field(
        None, description="Several self_pay_first rules on one line: max (the largest share) or sequential (each on "
        "what the previous left, in listed order, each share rounded half up to the fen). Without it such a claim "
        "is rejected self_pay_first_overlap.")
    days_supply_limit: ExprText | None = Field(
        None, description="Max days of a drug line (e.g. '3 if item_acute else 7'); the excess share is over-limit."
    )
    days_supply_source: str | None = None

    @model_validator(mode="after")
    def _unique_self_pay_first_ids(self) -> Scope:
        seen: set[str] = set()
        for i, rule in enumerate(self.self_pay_first):
            if rule.id is not None and rule.id in seen:
                raise PVE(f"self_pay_first id {rule.id!r} is used twice", f"先行自付规则编号 {rule.id!r} 重复",
                          code="duplicate_rule", loc=("self_pay_first", i, "id"), found=rule.id,
                          hint_en="give each self_pay_first rule its own id", hint_zh="每条先行自付规则的编号须不同")
            if rule.id is not None:
                seen.add(rule.id)
        return self

    def self_pay_first_name(self, index: int) -> str:
        """The name of rule ``index`` in reason codes and explanations: its ``id`` or its position."""
        return self_pay_first_name(self, index)


class Deductible(Model):
    """起付线. ``per: admission`` charges ``standard`` on each claim (``topup``: only what exceeds the
    highest standard already applied this year); ``per: year`` charges it once over the year's claims."""

    standard: ExprText
    per: Literal["admission", "year"] = "admission"
    topup: bool = False
    bucket: Name | None = None
    source: str


class Ceiling(Model):
    """Eligible-expense ceiling: only this much in-scope expense per year (bucket) enters the calculation.

    ``measure: expense`` counts the in-scope expense from 0 (the deductible inside it);
    ``above_deductible`` counts only the expense above the deductible (镇江: "门诊费用限额 1 万元" is the
    expense the fund pays its rate on, after the 800 yearly deductible).
    """

    amount: ExprText
    measure: Literal["expense", "above_deductible"] = "expense"
    bucket: Name | None = None
    source: str


class Bands(Model):
    """The fund's rates: a scale parameter on an explicit axis.

    axis ``absolute``: edges on the claim's in-scope amount from 0, the deductible at the bottom;
    ``above_deductible``: edges on the amount above the deductible; ``cumulative``: the claim sits
    after the year's earlier in-scope amount (bucket). ``rate`` may transform each band's listed
    rate (name ``rate``), e.g. ``rate - zone_offset[hospital_zone]``. ``class_b_offset`` lowers the
    rate on the class-B share of the amount, pro rata (A-SQ-4).
    """

    scale: Name | None = Field(None, description="Name of a scale (or rate) parameter; omit to use `rate` alone.")
    axis: Literal["absolute", "above_deductible", "cumulative"] = "absolute"
    bucket: Name | None = None
    rate: ExprText | None = None
    class_b_offset: ExprText | None = None
    source: str

    @model_validator(mode="after")
    def _scale_or_rate(self) -> Bands:
        if self.scale is None and self.rate is None:
            raise PVE("bands need a scale parameter, a rate expression, or both", "bands 需要 scale 参数或 rate 表达式",
                      code="missing_key")
        return self


class Allowance(Model):
    """A fixed compensation added to the fund's payment (e.g. NCMS 60+ township allowance)."""

    id: Name
    when: ExprText | None = None
    amount: ExprText
    source: str
    label: Text | None = None


class Cap(Model):
    """Fund payment cap: per claim, or per person and benefit year within a bucket.

    ``shared_with`` (payers only): the cap holds for this payer's payments together with those of the
    named earlier payers (``basic`` = the rule's own fund payment, ``hifp_pay``), e.g. basic + 大额 at most
    900,000 a year: ``cap: {amount: 900000, per: year, shared_with: [basic]}`` on the 大额 payer.
    """

    amount: ExprText
    per: Literal["claim", "year"] = "year"
    bucket: Name | None = None
    shared_with: list[Name] = Field(default_factory=list)
    source: str


#: Payer fields a layer may write: the registry's fund fields after ``hifp_pay`` (the basic rule's own).
PayerField = Literal["hifob_pay", "hifmi_pay", "maf_pay", "hifes_pay", "cvlserv_pay", "oth_pay"]
assert get_args(PayerField) == PAYER_FIELDS, "schema.PayerField must list the registry's payer fields"


class PayerDeductible(Model):
    """A payer's own 起付线 on its base: charged on each claim (``claim`` / ``admission``: the same here,
    every claim the payer settles is one stay or visit) or once a year over the person's claims."""

    standard: ExprText
    per: Literal["claim", "admission", "year"] = "year"
    source: str


class PayerCeiling(Model):
    """A payer's eligible-expense ceiling on its base, per claim or per year (see ``Ceiling.measure``)."""

    amount: ExprText
    per: Literal["claim", "year"] = "year"
    measure: Literal["expense", "above_deductible"] = "expense"
    source: str


class Layer(Model):
    """A further payer of the chain (大额 / 大病 / 医疗救助 / 倾斜救助 / 企业补充 / 公务员补助 / 商业补充).

    Why a full benefit definition: each payer of a region's 一站式结算 has its own eligibility, base,
    deductible, bands, ceiling and cap, and its own year-to-date state per person, benefit year and
    payer ``id`` (payers with the same id in several rules share that state). ``base`` is an
    expression over the named amounts of docs/payers.md (``inscope``, ``paid``, ``basic_deductible``,
    ``out_of_catalogue``, ``above_ceiling`` …): which money enters the payer is data, never a formula
    fixed in the engine. ``when`` that cannot be decided (an absent fact) means the payer does not pay.
    """

    id: Name
    field: PayerField
    when: ExprText | None = None
    base: ExprText
    deductible: PayerDeductible | None = None
    ceiling: PayerCeiling | None = None
    bands: Bands
    cap: Cap | None = None
    source: str
    label: Text | None = None

    @model_validator(mode="after")
    def _applicable(self) -> Layer:
        if self.bands.bucket is not None:
            raise PVE("a payer's bands keep their state under the payer's id: bucket does not apply here",
                      "付款方的分段按其 id 记录累计状态:此处不适用 bucket", code="not_applicable",
                      loc=("bands", "bucket"), found=self.bands.bucket,
                      hint_en="remove bucket; give two payers the same id to share their state",
                      hint_zh="删除 bucket;要共享状态请让两个付款方使用同一 id")
        if self.bands.class_b_offset is not None:
            raise PVE("class_b_offset applies to the basic rule's bands only, not to a payer",
                      "class_b_offset 只适用于基本规则的分段,不适用于付款方", code="not_applicable",
                      loc=("bands", "class_b_offset"), found=self.bands.class_b_offset,
                      hint_en="write the payer's rates in its scale or rate expression",
                      hint_zh="请在付款方的 scale 或 rate 表达式中写出比例")
        if self.cap is not None and self.cap.bucket is not None:
            raise PVE("a payer's cap counts under the payer's id: bucket does not apply here",
                      "付款方的封顶按其 id 累计:此处不适用 bucket", code="not_applicable",
                      loc=("cap", "bucket"), found=self.cap.bucket,
                      hint_en="remove bucket; use shared_with to cap several payers together",
                      hint_zh="删除 bucket;多个付款方共同封顶请用 shared_with")
        return self


class Rule(Model):
    """A benefit rule. The first rule whose ``when`` holds settles the claim; none → ``no_rule``."""

    id: Name
    label: Text
    when: ExprText
    source: str
    bucket: Name | None = Field(None, description="Default state bucket (year-to-date counters); default: id.")
    admission: bool = Field(False, description="Counts as an admission (ordinal for deductibles).")
    deductible: Deductible | None = None
    ceiling: Ceiling | None = None
    bands: Bands | None = None
    allowances: list[Allowance] = Field(default_factory=list)
    cap: Cap | None = None
    layers: list[Layer] = Field(default_factory=list)
    note: str | None = None

    @model_validator(mode="after")
    def _payers_consistent(self) -> Rule:
        if self.cap is not None and self.cap.shared_with:
            raise PVE("shared_with applies to a payer's cap, not to the basic rule's (the basic fund pays first)",
                      "shared_with 只适用于付款方的封顶,不适用于基本规则(基本医保最先支付)", code="not_applicable",
                      loc=("cap", "shared_with"), found=", ".join(self.cap.shared_with),
                      hint_en="put the shared cap on the later payer: shared_with: [basic]",
                      hint_zh="把共同封顶写在后面的付款方上:shared_with: [basic]")
        seen = ["basic"]
        for j, layer in enumerate(self.layers):
            if layer.id in seen:
                raise PVE(f"payer id {layer.id!r} is used twice in one rule", f"同一规则中付款方编号 {layer.id!r} 重复",
                          code="duplicate_payer", loc=("layers", j, "id"), found=layer.id,
                          allowed="a new id (basic names the rule's own fund payment)",
                          hint_en="give each payer of a rule its own id", hint_zh="同一规则中每个付款方须有自己的编号")
            for other in (layer.cap.shared_with if layer.cap else []):
                if other not in seen:
                    raise PVE(f"shared_with names {other!r}, which is not an earlier payer of this rule",
                              f"shared_with 中的 {other!r} 不是本规则中排在前面的付款方", code="unknown_payer",
                              loc=("layers", j, "cap", "shared_with"), found=other, allowed=", ".join(seen),
                              hint_en="name basic or the id of a payer listed above this one",
                              hint_zh="请写 basic 或排在本付款方之前的付款方编号")
            seen.append(layer.id)
        return self


class Account(Model):
    """Individual (outpatient) account: ``credit`` a year, balance carried over, pays where ``pays`` holds."""

    credit: ExprText
    pays: ExprText
    source: str


class PremiumGroup(Model):
    """Contribution shares of one group of persons (expressions in yuan; may use wage/base inputs)."""

    id: Name
    label: Text | None = None
    when: ExprText
    shares: dict[Name, ExprText]
    source: str


class Premiums(Model):
    period: Literal["year", "month"] = "year"
    inputs: list[Name] = Field(default_factory=list, description="Extra inputs, e.g. wage, base.")
    choose: Literal["first", "lowest"] = "first"
    lowest_of: Name | None = Field(None, description="With choose: lowest, the share compared.")
    groups: list[PremiumGroup]
    source: str


class BenefitYear(Model):
    start: str | None = Field("01-01", pattern=r"^\d{2}-\d{2}$")
    missing: bool = False
    source: str | None = None


VocabularyName = Literal["causes", "item_categories", "person_categories", "visit_types", "zones", "hospital_kinds",
                         "diagnoses"]


class ExtraCode(Model):
    """A code a policy adds to a closed vocabulary (``medins/claims/vocabulary.py``), with its labels.

    Why explicit: a code the registry does not know is a typo unless the author says otherwise; a
    declared code is accepted in this policy and in the bills and claims files settled under it.
    """

    code: Name
    label: Text
    aliases: list[str] = Field(default_factory=list, description="Chinese words of exports meaning this code.")
    source: str | None = None


class Policy(Model):
    """A whole policy file."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    name: Text
    region: Text
    scheme: str
    summary: Text | None = None
    source: str
    benefit_year: BenefitYear = BenefitYear.model_construct()  # not validated: no schema build on import
    parameters: dict[Name, Parameter] = Field(default_factory=dict)
    versions: list[Version] = Field(default_factory=list)
    admission: Admission = Admission.model_construct()
    scope: Scope = Scope.model_construct()
    rules: list[Rule]
    account: Account | None = None
    premiums: Premiums | None = None
    vocabulary: dict[VocabularyName, list[ExtraCode]] = Field(
        default_factory=dict, description="Extra codes this policy uses, by vocabulary (README: Vocabularies).")
    notes: list[str] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique_rules(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.id in seen:
                raise PVE(f"rule id {rule.id!r} is used twice", f"规则编号 {rule.id!r} 重复", code="duplicate_rule")
            seen.add(rule.id)
        return rules

    @model_validator(mode="after")
    def _one_payer_order(self) -> Policy:
        try:
            payer_order(self)
        except PayerOrderError as exc:
            raise PVE(f"{exc}: payers are settled in one chain order for every rule",
                      f"{exc}(各规则中付款方的先后顺序不一致):所有规则的付款方须按同一顺序排列", code="payer_order",
                      loc=("rules",), hint_en="list shared payers in the same order in every rule",
                      hint_zh="各规则中共有的付款方请按相同顺序排列") from None
        return self

    @model_validator(mode="after")
    def _versions_override_known(self) -> Policy:
        for version in self.versions:
            for name in version.parameters:
                if name not in self.parameters:
                    raise PVE(f"version {version.id!r} overrides unknown parameter {name!r}",
                              f"版本 {version.id!r} 覆盖了不存在的参数 {name!r}", code="unknown_parameter",
                              hint_en="declare it under parameters first", hint_zh="请先在 parameters 中声明")
        return self


IDENT = re.compile(_NAME)


def is_expression(info: object) -> bool:
    """True when a model field holds an expression, optional ones (``ExprText | None``) included.

    Why look inside the annotation: pydantic lifts ``Annotated`` metadata onto the field only when
    the field is not optional, so ``when: ExprText | None`` (a check's ``when``, a band's ``rate``)
    carries its mark in the union member — and was once skipped by ``policy check``.
    """
    if any(isinstance(m, ExprMark) for m in getattr(info, "metadata", ())):
        return True
    stack = [getattr(info, "annotation", None)]
    while stack:
        tp = stack.pop()
        if get_origin(tp) is Annotated:
            if any(isinstance(m, ExprMark) for m in tp.__metadata__):
                return True
            stack.append(get_args(tp)[0])
        elif get_origin(tp) in (Union, UnionType):
            stack.extend(get_args(tp))
    return False


def iter_expressions(model: BaseModel, loc: tuple = ()) -> Iterator[tuple[tuple, str, BaseModel]]:
    """Every expression in a policy model with its key path and the model that holds it."""
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if value is None:
            continue
        if isinstance(value, str) and is_expression(info):
            yield (*loc, name), value, model
        elif isinstance(value, BaseModel):
            yield from iter_expressions(value, (*loc, name))
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, BaseModel):
                    yield from iter_expressions(item, (*loc, name, i))
        elif isinstance(value, dict):
            for key, item in value.items():
                if isinstance(item, BaseModel):
                    yield from iter_expressions(item, (*loc, name, key))
                elif isinstance(item, str) and name == "shares":
                    yield (*loc, name, key), item, model
