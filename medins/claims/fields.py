"""The claim fields: one registry for the bill JSON, the claims table, CSV headers and policy expressions.

Why: the same fact (say the hospital's zone) appears as ``visit.hospital.zone`` in a bill, as the
column ``hospital_zone`` in a claims table, as ``医院区域`` in a Chinese export, and as the name
``hospital_zone`` in a policy expression. Declaring each field once keeps those four views from
drifting apart. Money columns hold integer fen; dates are ``datetime.date``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from medins.claims.vocabulary import VOCABULARIES

Kind = Literal["str", "date", "bool", "int", "money", "list"]


@dataclass(frozen=True)
class Field:
    """One claim-level fact.

    name: canonical column name (claims table, CSV header, expression variable).
    kind: value type; ``money`` is integer fen in the table, yuan text/number at the edges.
    path: where it sits in the bill JSON (DESIGN.md §3).
    required: a claims-table row without it is rejected.
    default: value used when the column or cell is absent (``None`` = unknown, never checked). A fact the
        engine fills in when absent (visit type, cause, discharge date) has no default here: the engine
        fills it and lists it as ``assumed`` on the settlement, so the guess is never silent.
    zh/en: labels for people; aliases: other headers that map to this column (Chinese exports).
    """

    name: str
    kind: Kind
    path: tuple[str, ...]
    zh: str
    en: str
    required: bool = False
    default: object = None
    aliases: tuple[str, ...] = field(default_factory=tuple)
    choices: tuple[str, ...] = field(default_factory=tuple)
    #: Smallest whole number allowed (``int`` fields): 0 for counts, 1 for an ordinal such as ``admission_no``.
    minimum: int = 0


#: The closed vocabularies (``vocabulary.py``) under the names the registry has always used.
PERSON_CATEGORIES: dict[str, tuple[str, str]] = {c.code: (c.zh, c.en) for c in VOCABULARIES["person_categories"].codes}
VISIT_TYPES = VOCABULARIES["visit_types"].names
ZONES = VOCABULARIES["zones"].names
CAUSES = VOCABULARIES["causes"].names
HOSPITAL_KINDS = VOCABULARIES["hospital_kinds"].names
ITEM_CATEGORIES = VOCABULARIES["item_categories"].names
#: 医疗救助对象 (medical-assistance classes, ``vocabulary.py``): code → (zh, en). A person without one is not an
#: assisted person; policies test it in a payer's ``when``.
ASSISTANCE_CLASSES: dict[str, tuple[str, str]] = {
    c.code: (c.zh, c.en) for c in VOCABULARIES["assistance_classes"].codes}

#: Fund fields of the payer chain (DESIGN.md §4): the basic fund, then the further payers (docs/payers.md).
PAYER_FIELDS: dict[str, tuple[str, str]] = {
    "hifp_pay": ("基本医保统筹基金", "basic pooled fund"),
    "hifob_pay": ("职工大额医疗费用补助", "large-expense subsidy (大额)"),
    "hifmi_pay": ("居民大病保险", "critical-illness insurance (大病)"),
    "maf_pay": ("医疗救助", "medical assistance (医疗救助)"),
    "hifes_pay": ("企业补充医疗保险", "enterprise supplementary insurance"),
    "cvlserv_pay": ("公务员医疗补助", "civil-servant medical subsidy"),
    "oth_pay": ("其他支付", "other payers (incl. commercial supplements)"),
}

CLAIM_FIELDS: tuple[Field, ...] = (
    Field("claim_id", "str", ("id",), "结算单号", "claim id", required=True,
          aliases=("就诊流水号", "结算流水号", "单据号", "住院号", "结算ID", "claim")),
    Field("person_id", "str", ("person", "id"), "个人编号", "person id", required=True,
          aliases=("人员编号", "参保人编号", "身份证号", "医保编号", "个人编码", "person")),
    Field("person_category", "str", ("person", "category"), "人员类别", "person category",
          aliases=("人员类型", "参保类别", "人群类别"), choices=tuple(PERSON_CATEGORIES)),
    Field("birth_date", "date", ("person", "birth_date"), "出生日期", "birth date", aliases=("出生年月日",)),
    Field("age", "int", ("person", "age"), "年龄", "age (whole years on the service date)",
          aliases=("周岁", "年龄(岁)", "年龄（岁）", "患者年龄")),
    Field("sex", "str", ("person", "sex"), "性别", "sex", choices=("M", "F")),
    Field("enrolled_date", "date", ("person", "enrolled_date"), "参保缴费日期", "enrolment (payment) date",
          aliases=("参保日期", "缴费日期")),
    Field("newborn", "bool", ("person", "newborn"), "新生儿", "newborn"),
    Field("resumed", "bool", ("person", "resumed"), "中断后接续缴费", "resumed after interruption"),
    Field("arrears", "bool", ("person", "arrears"), "欠缴", "in arrears"),
    Field("arrears_since", "date", ("person", "arrears_since"), "欠缴起始月", "first unpaid month"),
    Field("disability_grade", "int", ("person", "disability_grade"), "残疾等级", "disability grade"),
    Field("insured_place", "str", ("person", "insured_place"), "参保地", "insured place"),
    Field("income", "money", ("person", "income"), "可支配收入", "disposable income",
          aliases=("家庭可支配收入", "年可支配收入")),
    Field("assistance_class", "str", ("person", "assistance_class"), "救助类别", "medical-assistance class",
          aliases=("救助对象类别", "医疗救助类别", "救助对象类型"), choices=tuple(ASSISTANCE_CLASSES)),
    Field("visit_type", "str", ("visit", "type"), "就诊类型", "visit type",
          aliases=("医疗类别", "就医类别", "就诊类别"), choices=VISIT_TYPES),
    Field("admit_date", "date", ("visit", "admit_date"), "入院日期", "admission / visit date", required=True,
          aliases=("就诊日期", "入院时间", "就医日期", "费用发生日期")),
    Field("admission_no", "int", ("visit", "admission_no"), "第几次住院", "admission ordinal this benefit year",
          aliases=("住院次数", "本年住院次数", "年度住院次数", "住院次序"), minimum=1),
    Field("discharge_date", "date", ("visit", "discharge_date"), "出院日期", "discharge date",
          aliases=("出院时间",)),
    Field("hospital_name", "str", ("visit", "hospital", "name"), "医院名称", "hospital",
          aliases=("定点医疗机构名称", "医疗机构名称", "就诊医院", "医院")),
    Field("hospital_level", "int", ("visit", "hospital", "level"), "医院等级", "hospital level",
          aliases=("医疗机构等级", "医院级别")),
    Field("hospital_zone", "str", ("visit", "hospital", "zone"), "医院区域", "hospital zone",
          aliases=("就医地类型", "就医区域"), choices=ZONES),
    Field("hospital_kind", "str", ("visit", "hospital", "kind"), "医疗机构类型", "facility kind",
          choices=HOSPITAL_KINDS),
    Field("hospital_designated", "bool", ("visit", "hospital", "designated"), "定点", "designated facility",
          aliases=("是否定点",)),
    Field("cause", "str", ("visit", "cause"), "病因", "cause", aliases=("致病原因",),
          choices=CAUSES),
    Field("preapproved", "bool", ("visit", "preapproved"), "登记批准", "pre-approved", aliases=("是否备案",)),
    Field("emergency", "bool", ("visit", "emergency"), "急诊", "emergency", aliases=("是否急诊",)),
    Field("registered_date", "date", ("visit", "registered_date"), "登记批准日期", "registration date",
          aliases=("备案日期",)),
    Field("claim_date", "date", ("visit", "claim_date"), "申报日期", "claim submission date",
          aliases=("报销申请日期", "结算日期")),
    Field("receipt_date", "date", ("visit", "receipt_date"), "收据日期", "receipt date"),
    Field("voucher_date", "date", ("visit", "voucher_date"), "凭证开具日期", "voucher issue date"),
    Field("recognised_date", "date", ("visit", "recognised_date"), "认定日期", "special-disease recognition date"),
    Field("referral", "bool", ("visit", "referral"), "转诊", "referred", aliases=("是否转诊",)),
    Field("referral_id", "str", ("visit", "referral_id"), "转诊单号", "referral id"),
    Field("observation", "bool", ("visit", "observation"), "急诊留观", "emergency observation stay"),
    Field("vacation", "bool", ("visit", "vacation"), "假期就医", "vacation care"),
    Field("filed", "bool", ("visit", "filed"), "异地就医备案", "cross-region filing"),
    Field("infusion_by_township_doctor", "bool", ("visit", "infusion_by_township_doctor"),
          "卫生院医生临时补液", "temporary infusion by a township doctor"),
    Field("diagnosis", "list", ("visit", "diagnosis"), "诊断", "diagnosis", aliases=("诊断名称", "病种")),
    Field("total", "money", ("amounts", "total"), "医疗费总额", "total", required=True,
          aliases=("医疗费用总额", "总费用", "费用总额", "住院总费用", "总金额", "medfee_sumamt")),
    Field("self_pay", "money", ("amounts", "self_pay"), "全自费金额", "out of catalogue (self-paid)",
          default=0, aliases=("自费金额", "全自费", "自费", "丙类金额", "fulamt_ownpay_amt")),
    Field("class_b", "money", ("amounts", "class_b"), "乙类金额", "class B (乙类) amount", default=0,
          aliases=("乙类自付", "乙类药品金额", "乙类费用")),
    *(Field(f"paid_{name}", "money", ("amounts", "paid", name), f"已支付{zh}", f"already paid: {en}",
            aliases=(f"已付{zh}",)) for name, (zh, en) in PAYER_FIELDS.items()),
    Field("preselfpay", "money", ("amounts", "preselfpay"), "先行自付金额", "self-pay-first amount (as given)",
          aliases=("先行自付", "乙类先行自付", "先行自付费用", "preselfpay_amt")),
    Field("deposit", "money", ("amounts", "deposit"), "预交金额", "deposit paid at admission",
          aliases=("预交金", "押金", "预交款", "住院押金", "预缴金额")),
    Field("hist_fund_paid", "money", ("history", "fund_paid"), "年内基金已支付", "fund paid this year",
          default=0),
    Field("hist_admissions", "int", ("history", "admissions"), "年内住院次数", "admissions this year", default=0),
    Field("hist_inscope", "money", ("history", "inscope"), "年内政策范围内累计", "in-scope this year", default=0),
    Field("hist_deductible_paid", "money", ("history", "deductible_paid"), "年内已付起付线",
          "deductible paid this year", default=0),
    Field("hist_deductible_standard", "money", ("history", "deductible_standard"), "年内最高起付标准",
          "highest deductible standard this year", default=0),
    Field("hist_account_balance", "money", ("history", "account_balance"), "个人账户余额", "account balance"),
    Field("hist_layer2_paid", "money", ("history", "layer2_paid"), "年内大额已支付", "large-expense layer paid this year",
          default=0),
    # A payer's year-to-date state before the bill, by its field (docs/payers.md): paid, its own deductible
    # paid, and its base so far (the cumulative axis). Where two payers share a field, the first one's.
    *(Field(f"hist_{name}_{what}", "money", ("history", "payers", name, what), f"年内{zh}{what_zh}",
            f"{en}: {what_en} this year")
      for name, (zh, en) in PAYER_FIELDS.items() if name != "hifp_pay"
      for what, what_zh, what_en in (("paid", "已支付", "paid"), ("deductible_paid", "已付起付线", "deductible paid"),
                                     ("base", "累计基数", "base so far"))),
)

FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in CLAIM_FIELDS}

#: Line-item fields (bill ``items[]``; line-item exports).
ITEM_FIELDS: tuple[Field, ...] = (
    Field("item_name", "str", ("name",), "项目名称", "item", aliases=("收费项目名称", "药品名称", "项目")),
    Field("item_category", "str", ("category",), "费用类别", "category", aliases=("收费类别", "项目类别"),
          choices=ITEM_CATEGORIES),
    Field("item_class", "str", ("class",), "甲乙类", "class (A/B/C)", aliases=("药品类别", "目录类别"),
          choices=("A", "B", "C")),
    Field("item_amount", "money", ("amount",), "金额", "amount", required=True,
          aliases=("明细金额", "费用金额", "项目金额")),
    Field("item_doses", "int", ("doses",), "剂数(帖)", "doses"),
    Field("item_approved", "bool", ("approved",), "已审批", "approved"),
    Field("item_days_supply", "int", ("days_supply",), "用药天数", "days supplied"),
    Field("item_acute", "bool", ("acute",), "急性病处方", "acute prescription"),
    Field("item_code", "str", ("code",), "目录编码", "catalogue code"),
    Field("item_in_catalogue", "bool", ("in_catalogue",), "目录内", "in catalogue"),
)

ITEM_FIELDS_BY_NAME: dict[str, Field] = {f.name: f for f in ITEM_FIELDS}

MONEY_COLUMNS = tuple(f.name for f in CLAIM_FIELDS if f.kind == "money")


def _recorded(name: str, zh: str, en: str, *aliases: str) -> Field:
    """A settled amount as an export records it: column ``recorded_<national name>``, read for ``medins audit``."""
    return Field(f"recorded_{name}", "money", ("recorded", name), zh, en, aliases=(name, *aliases))


#: Settlement amounts an export already carries (national platform names and common Chinese headers).
#: Why separate columns: they are what someone else computed, compared with — never fed into — the
#: engine; ``total`` (medfee_sumamt), ``self_pay`` (fulamt_ownpay_amt, 全自费) and ``preselfpay``
#: (preselfpay_amt, 先行自付) are inputs the engine settles on, so they are not compared.
RECORDED_FIELDS: tuple[Field, ...] = (
    _recorded("overlmt_selfpay", "超限价自付", "recorded over-limit self-pay", "超限价自付金额", "超限价自费",
              "超限价金额"),
    _recorded("inscp_scp_amt", "符合范围金额", "recorded in-scope amount", "符合范围", "符合政策范围金额",
              "符合政策范围", "政策范围内金额", "政策范围内费用"),
    _recorded("act_pay_dedc", "起付线", "recorded deductible", "起付标准", "本次起付线", "实际支付起付线",
              "起付金额", "本次起付标准"),
    _recorded("hifp_pay", "统筹基金支付", "recorded pooled fund", "基本医疗保险统筹基金支出", "统筹基金支出",
              "统筹支付", "统筹基金"),
    _recorded("hifob_pay", "大额医疗", "recorded large-expense layer", "大额医疗补助", "大额医疗费用补助",
              "职工大额医疗费用补助基金支出", "大额医疗支付"),
    _recorded("hifmi_pay", "大病保险", "recorded critical-illness insurance", "大病保险支付", "大病保险资金支出",
              "居民大病保险资金支出"),
    _recorded("maf_pay", "医疗救助", "recorded medical assistance", "医疗救助支付", "医疗救助基金支出"),
    _recorded("hifes_pay", "企业补充医疗保险", "recorded enterprise supplementary insurance", "企业补充医疗保险支付",
              "企业补充医疗保险基金支出"),
    _recorded("cvlserv_pay", "公务员医疗补助", "recorded civil-servant subsidy", "公务员医疗补助支付",
              "公务员医疗补助资金支出"),
    _recorded("oth_pay", "其他支付", "recorded other payers", "其他基金支付", "其他支出"),
    _recorded("fund_pay_sumamt", "基金支付总额", "recorded fund total", "基金支付合计", "基金支付"),
    _recorded("psn_part_amt", "个人负担", "recorded patient share", "个人负担总金额", "个人负担金额", "个人自付",
              "个人支付"),
    _recorded("acct_pay", "个人账户支付", "recorded account payment", "个人账户支出", "个人帐户支付", "账户支付"),
    _recorded("psn_cash_pay", "个人现金支付", "recorded cash payment", "个人现金支出", "现金支付"),
)

RECORDED_BY_NAME: dict[str, Field] = {f.name: f for f in RECORDED_FIELDS}

