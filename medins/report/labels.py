"""Every label people read, in Chinese and English, from one catalogue.

Why one place: a clerk reads 统筹基金支付, an auditor abroad reads "pooled fund"; both must see the
same field under the same name everywhere (tables, explain, compare, errors), and a new reason code
must get its words once.
"""

from __future__ import annotations

import locale
import os
from typing import Literal

from medins.claims.vocabulary import VOCABULARIES

Lang = Literal["zh", "en"]

FIELDS: dict[str, tuple[str, str]] = {
    "medfee_sumamt": ("医疗费总额", "Total"),
    "fulamt_ownpay_amt": ("全自费金额", "Fully self-paid (out of catalogue)"),
    "overlmt_selfpay": ("超限价自费", "Over-limit self-paid"),
    "preselfpay_amt": ("先行自付", "Self-pay first"),
    "inscp_scp_amt": ("符合政策范围金额", "In scope"),
    "act_pay_dedc": ("起付线", "Deductible"),
    "hifp_pay": ("统筹基金支付", "Pooled fund"),
    "hifob_pay": ("大额医疗支付", "Large-expense layer (大额)"),
    "hifmi_pay": ("大病保险支付", "Critical-illness insurance (大病)"),
    "maf_pay": ("医疗救助支付", "Medical assistance"),
    "hifes_pay": ("企业补充医疗保险支付", "Enterprise supplementary insurance"),
    "cvlserv_pay": ("公务员医疗补助支付", "Civil-servant medical subsidy"),
    "oth_pay": ("其他支付", "Other payers"),
    "fund_pay_sumamt": ("基金支付合计", "Fund total"),
    "psn_part_amt": ("个人负担", "Patient share"),
    "acct_pay": ("个人账户支付", "Individual account"),
    "psn_cash_pay": ("个人现金支付", "Patient cash"),
    "deposit_amt": ("预交金额", "Deposit"),
    "refund_amt": ("应退金额", "To refund (应退)"),
    "due_amt": ("应补金额", "Still to pay (应补)"),
    "claim_id": ("结算单号", "Claim"),
    "person_id": ("个人编号", "Person"),
    "policy": ("政策", "Policy"),
    "status": ("状态", "Status"),
    "reasons": ("原因", "Reasons"),
    "unchecked": ("未核查条件", "Unchecked conditions"),
    "assumed": ("假定", "Assumed"),
}

STATUS: dict[str, tuple[str, str]] = {
    "settled": ("已结算", "settled"),
    "rejected": ("不予支付", "rejected"),
}

REASONS: dict[str, tuple[str, str]] = {
    "not_covered": ("不属参保范围", "person not covered by this scheme"),
    "waiting_period": ("在等待期内", "within the waiting period"),
    "arrears": ("欠缴保险费,停止享受待遇", "contributions in arrears: benefits stopped"),
    "not_designated": ("非定点医疗机构", "not a designated facility"),
    "not_own_designated": ("非本人定点医院", "not one of the person's own designated hospitals"),
    "no_preapproval": ("未办理登记批准手续", "not registered / pre-approved before admission"),
    "late_registration": ("急诊住院未在规定期限内补办登记", "emergency admission registered too late"),
    "no_referral": ("未办理转诊", "no referral"),
    "late_claim": ("超过报销申请期限", "claim submitted after the deadline"),
    "voucher_expired": ("凭证已过有效期", "voucher expired"),
    "overseas": ("境外(含港澳台)就医不予报销", "care abroad (incl. Hong Kong, Macau, Taiwan) is not covered"),
    "excluded_cause": ("属不予支付的病因", "excluded cause"),
    "date_overlap_inpatient": ("住院日期重叠", "overlapping inpatient dates"),
    "policy_not_in_force": ("就医日期不在政策有效期内", "no policy version in force on the service date"),
    "no_rule": ("政策对此情形没有规定", "the policy gives no rule for this case"),
    "missing_parameter": ("政策缺少参数,请用 --set 提供", "the policy lacks a number: supply it with --set"),
    "missing_fact": ("账单缺少计算所需信息", "the bill lacks a fact the calculation needs"),
    "unknown_category": ("政策不区分此人员类别", "the policy does not know this person category"),
    "hospital_mismatch": ("医院信息与政策定点名单不符", "hospital zone/level contradicts the policy's list"),
    "age_mismatch": ("年龄与出生日期不符", "the stated age disagrees with the birth date on the service date"),
    "admission_no_differs": ("第几次住院与本人住院顺序不符", "stated admission ordinal differs from the sequence"),
    "not_listed_disease": ("不属本政策的门诊大病病种", "not one of the scheme's listed outpatient major illnesses"),
    "inconsistent_history": ("年内累计信息(history)自相矛盾", "the bill's history (year-to-date facts) contradicts itself"),
    "paid_above_cap": ("账单给出的已支付金额超过封顶线剩余额度",
                       "the payment the bill gives as made is above what the cap leaves"),
    "level_not_settled": ("本政策不结算该级别医疗机构的费用(政策未给出该级别的标准)",
                          "this scheme does not settle care at that hospital level (it gives no figures for it)"),
    "visit_type_not_settled": ("本政策不结算该类就诊(政策未给出该类别的标准)",
                               "this scheme does not settle that kind of visit (it gives no figures for it)"),
    "kind_not_settled": ("本政策不结算该类医疗机构的费用(政策未给出该类机构的标准)",
                         "this scheme does not settle care at that kind of facility (it gives no figures for it)"),
    "zone_not_settled": ("本政策不结算该就医地的费用,请按异地就医规定(参保地备案)办理,或用适用于该地的政策计算",
                         "this scheme does not settle care in that zone: claim it under the cross-region (异地就医) "
                         "rules of the insured place, or settle it with the policy that covers that place"),
    "policy_error": ("政策表达式无法对此账单求值", "a policy expression cannot be evaluated for this bill"),
    "self_pay_first_overlap": ("多条先行自付规则作用于同一明细,政策未声明组合方式",
                               "several self-pay-first rules match one line and the policy declares no combination"),
    "self_pay_first_fund_rate_conflict": ("作用于同一明细的先行自付规则给出不同的基金支付比例",
                                          "self-pay-first rules on one line give different fund rates"),
    "preselfpay_above_in_scope": ("先行自付金额大于政策范围内金额",
                                  "the self-pay-first amount is more than the in-scope amount"),
}

#: Cause labels come from the one vocabulary registry (``medins/claims/vocabulary.py``).
CAUSES: dict[str, tuple[str, str]] = {c.code: (c.zh, c.en) for c in VOCABULARIES["causes"].codes}

STEPS: dict[str, tuple[str, str]] = {
    "total": ("医疗费总额", "total"),
    "fulamt": ("减:全自费(目录外、除外项目)", "less fully self-paid (out of catalogue, excluded items)"),
    "overlmt": ("减:超限价部分", "less over-limit parts"),
    "presp": ("减:先行自付", "less self-pay-first"),
    "presp_given": ("减:先行自付(账单给出的金额)", "less self-pay-first (amount given by the bill)"),
    "direct_base": ("其中按专项比例直付的部分", "of which the rest the fund pays directly at its own rate"),
    "inscope_bands": ("进入起付线和分段计算的金额", "amount the deductible and bands work on"),
    "direct_pay": ("基金直接支付(先行自付后的余额)", "fund pays directly (the rest after self-pay-first)"),
    "inscope": ("政策范围内金额", "in-scope amount"),
    "ceiling": ("年度费用上限", "yearly eligible-expense ceiling"),
    "deductible": ("起付线(个人负担)", "deductible (patient)"),
    "band": ("分段", "band"),
    "class_b": ("乙类药品降低比例", "class-B reduction"),
    "fund_raw": ("基金应付(四舍五入到分)", "fund before cap (rounded half up to the fen)"),
    "allowance": ("补助", "allowance"),
    "cap": ("最高支付限额", "fund cap"),
    "hifp_pay": ("统筹基金支付", "pooled fund pays"),
    "layer": ("后续支付层", "further payer"),
    "payer_base": ("基数", "base"),
    "payer_ceiling": ("费用上限", "its eligible-expense ceiling"),
    "payer_deductible": ("起付线", "its deductible"),
    "payer_raw": ("应付(四舍五入到分)", "before cap (rounded half up to the fen)"),
    "payer_cap": ("支付限额", "its cap"),
    "account_balance": ("个人账户余额", "individual account balance"),
    "item_limit": ("单项限价", "item limit"),
    "visit_limit": ("单次就诊限额", "visit limit"),
    "payer": ("支付", "pays"),
    "given": ("已支付(账单给出)", "already paid (given by the bill)"),
    "not_eligible": ("不符合条件", "not eligible"),
    "fund": ("基金支付合计", "fund total"),
    "patient": ("个人负担", "patient share"),
    "account": ("个人账户支付", "individual account pays"),
    "cash": ("个人现金支付", "patient pays in cash"),
    "deposit": ("预交金额", "deposit paid"),
    "refund": ("应退金额", "to refund (应退)"),
    "due": ("应补金额", "still to pay (应补)"),
    "rejected": ("不予支付", "rejected"),
    "unchecked": ("未核查(账单缺少信息)", "not checked (the bill lacks the fact)"),
    "assumed": ("假定(账单未给出)", "assumed (absent from the bill)"),
    "rule": ("适用规则", "rule applied"),
}

#: Words of the explain view about limits, band axes and where values came from (``report/explain_text.py``).
EXPLAIN: dict[str, tuple[str, str]] = {
    "binding": ("限额起作用", "binding"),
    "not_binding": ("限额未起作用", "not binding"),
    "limit_state": ("之前已用 {before},本次 {used},剩余 {left}", "used before {before}, this claim {used}, left {left}"),
    "limit_claim": ("本次 {used},剩余 {left}", "this claim {used}, left {left}"),
    "balance_state": ("本次前余额 {balance},本次支付 {used},剩余 {left}",
                      "balance before {balance}, this claim {used}, left {left}"),
    "per_year": ("每年", "a year"), "per_claim": ("每次", "a claim"), "per_admission": ("每次住院", "an admission"),
    "per_balance": ("累计划入", "credited so far"), "per_line": ("每项,共 {n} 项", "per line, {n} selected"),
    "shared_with": ("与 {names} 共用", "shared with {names}"),
    "measure_above_deductible": ("按起付线以上部分计", "measured above the deductible"),
    "standard": ("标准", "standard"),
    "paid_before": ("之前已付 {before},剩余 {left}", "paid before {before}, left {left}"),
    "standard_met_before": ("此前已付标准 {met}", "standard met before {met}"),
    "axis_absolute": ("本次住院或就诊内,从0起", "within this stay or visit, from 0"),
    "axis_above_deductible": ("起付线以上部分", "above the deductible"),
    "axis_cumulative": ("年度累计", "year to date"),
    "this_claim_range": ("即本次费用 {range}", "= this claim's {range}"),
    "listed": ("表列 {edges}", "listed {edges}"),
    "position_below": ("表列 {edges}:已由起付线或之前的费用占用",
                       "listed {edges}: taken by the deductible or earlier claims"),
    "position_above": ("表列 {edges}:本次未达到", "listed {edges}: not reached"),
    "origins": ("数值来源", "Where the values came from"),
    "band_rates": ("分段比例", "band rates"),
    "origin_bill": ("账单给出", "given by the bill"),
    "origin_assumed": ("账单未给出,按默认值", "absent from the bill, default taken"),
    "origin_counted": ("账单未给出:此前住院 {n} 次 + 1", "not stated: admissions before it ({n}) + 1"),
    "origin_birth_date": ("由出生日期 {birth} 计至 {on}", "from birth_date {birth} on {on}"),
    "origin_derived": ("推算", "derived"),
    "origin_absent": ("账单未给出", "absent from the bill"),
    "override": ("已改为 {source}", "replaced: {source}"),
}


#: Words of the batch summary (``medins batch``), headings and columns.
SUMMARY: dict[str, tuple[str, str]] = {
    "rows_read": ("读取", "rows read"),
    "settled": ("结算", "settled"),
    "rejected": ("拒收", "rejected"),
    "rows": ("行", "rows"),
    "claims": ("笔数", "claims"),
    "group": ("分组", "group"),
    "all": ("合计", "All claims"),
    "visit_type": ("按就诊类型", "By visit type"),
    "hospital_zone": ("按就医地", "By zone"),
    "hospital_level": ("按医院等级", "By hospital level"),
    "total": ("医疗费\n总额", "total"),
    "fund": ("基金\n支付", "fund\nshare"),
    "patient": ("个人\n负担", "patient\nshare"),
    "rate": ("实际\n报销比例", "effective\nrate"),
    "rate_note": ("实际报销比例 = 基金支付 ÷ 医疗费总额", "effective rate = fund share ÷ total"),
    "not_paid": ("不予\n支付", "not\npaid"),
    "not_paid_by_reason": ("不予支付的结算单(按原因)", "Claims not paid, by reason"),
    "rejected_rows": ("拒收的输入行(按原因)", "Rejected input rows, by reason"),
    "reason": ("原因", "reason"),
    "rejects_file": ("拒收明细", "Rejects written to"),
    "output_file": ("结算结果", "Settlements written to"),
    "unknown": ("未知", "unknown"),
    "level": ("级", "level "),
}

#: Claim facts shown as summary groups.
VALUES: dict[str, dict[str, tuple[str, str]]] = {
    "visit_type": {"inpatient": ("住院", "inpatient"), "outpatient": ("普通门诊", "outpatient"),
                   "outpatient_special": ("门诊大病", "outpatient special"), "emergency": ("急诊", "emergency")},
    "hospital_zone": {"in_district": ("区内", "in district"), "in_city": ("区外市内", "in city"),
                      "out_of_city": ("市外", "out of city"), "out_of_province": ("省外", "out of province"),
                      "overseas": ("境外", "overseas")},
}

#: Why an audited claim differs from its record (``medins audit``), and the verdicts.
AUDIT_REASONS: dict[str, tuple[str, str]] = {
    "scope_differs": ("政策范围内金额不符", "in-scope amount differs"),
    "not_payable_paid": ("不予支付的费用被支付", "not payable, but paid"),
    "deductible_differs": ("起付线不符", "deductible differs"),
    "cap_exceeded": ("超过封顶线支付", "paid beyond the cap"),
    "class_b_reduction_missed": ("乙类未降低比例", "class-B reduction missed"),
    "band_differs": ("统筹基金分段支付不符", "pooled fund (bands) differs"),
    "layer_differs": ("大额/大病/救助等后续支付不符", "a further payer (大额, 大病, assistance …) differs"),
    "fund_total_differs": ("基金支付合计不符", "fund total differs"),
    "patient_share_differs": ("个人负担不符", "patient share differs"),
    "account_differs": ("个人账户支付不符", "account payment differs"),
    "cash_differs": ("个人现金支付不符", "cash payment differs"),
    "agree": ("一致", "agrees"),
    "differ": ("不一致", "differs"),
    "not_settleable": ("无法结算", "not settleable"),
}


#: Why an input row was refused (reader codes, ``code:column``).
INPUT_REJECTS: dict[str, tuple[str, str]] = {
    "missing_field": ("缺少必填字段", "missing required field"),
    "bad_date": ("日期无效", "invalid date"),
    "not_a_bool": ("不是“是/否”", "not yes/no"),
    "negative_amount": ("金额为负", "negative amount"),
    "negative_number": ("数值为负", "negative number"),
    "not_a_number": ("不是数字", "not a number"),
    "sub_fen": ("金额小于一分", "finer than one fen"),
    "too_large": ("金额过大", "amount too large"),
    "unknown_code": ("未知代码", "unknown code"),
    "self_pay_above_total": ("自费高于总额", "self-pay above total"),
    "class_b_above_in_scope": ("乙类高于范围内金额", "class B above the in-scope amount"),
    "paid_above_total": ("已支付金额高于总额", "already-paid amounts above the total"),
    "preselfpay_above_in_scope": ("先行自付高于范围内金额", "self-pay-first above the in-scope amount"),
    "field_count": ("列数不符", "wrong number of fields"),
    "discharge_before_admit": ("出院早于入院", "discharge before admission"),
    "conflicting_claim_fields": ("同一结算单的信息不一致", "conflicting claim fields"),
    "claim_has_bad_line": ("同一结算单有错误明细", "another line of the claim is bad"),
}


def pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "zh" else pair[1]


def field_label(name: str, lang: Lang) -> str:
    return pick(FIELDS.get(name, (name, name)), lang)


def reason_label(code: str, lang: Lang) -> str:
    """Words for a reason code; ``excluded_cause:maternity`` → 属不予支付的病因:生育."""
    head, _, arg = code.partition(":")
    words = pick(REASONS.get(head, (head, head)), lang)
    if arg:
        detail = arg
        if head == "excluded_cause" and arg in CAUSES:
            detail = pick(CAUSES[arg], lang)
        elif head == "zone_not_settled" and arg in VALUES["hospital_zone"]:
            detail = pick(VALUES["hospital_zone"][arg], lang)
        words = f"{words}:{detail}" if lang == "zh" else f"{words}: {detail}"
    return words


def default_lang() -> Lang:
    """Chinese when the locale says so (LANG/LC_ALL zh_*), else English."""
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    try:
        loc = locale.getlocale()[0] or ""
    except ValueError:  # pragma: no cover - exotic locales
        loc = ""
    return "zh" if loc.lower().startswith("zh") else "en"
