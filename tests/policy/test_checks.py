"""Each whole-policy check (``medins/policy/checks.py``) on a one-mistake variant of a tiny policy.

The golden fixtures in ``invalid/`` fix the wording of one case per kind; these cover the other
branches of each check (where it looks, which key it names) and that a correct variant passes.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from medins.errors import PolicyError
from medins.policy.loader import check_policy_file

TINY = (Path(__file__).parent / "invalid" / "unknown_name.yaml").read_text(encoding="utf-8").replace(
    "visit_typ ==", "visit_type ==")
RULE_BANDS = 'bands: {scale: bands, axis: absolute, source: "A-2"}'
DEDUCTIBLE = 'deductible: {standard: deductible, per: admission, source: "A-1"}'


def _with(*pairs: tuple[str, str], extra: str = "") -> str:
    text = TINY
    for old, new in pairs:
        assert old in text
        text = text.replace(old, new)
    return text + extra


PREMIUMS = ('premiums:\n  choose: {choose}\n  {lowest}groups:\n    - {{id: all, when: "True", shares: {{individual: "10"}}, '
            'source: "P"}}\n  source: "P"\n')

CASES = {
    "cap_bucket_per_claim": (_with((RULE_BANDS, RULE_BANDS + '\n    cap: {amount: "1000", per: claim, bucket: x, '
                                    'source: "A-3"}')), "idle_key", "rules[0].cap.bucket"),
    "deductible_bucket_per_admission": (_with((DEDUCTIBLE, DEDUCTIBLE.replace("per: admission,",
                                                                               "per: admission, bucket: x,"))),
                                        "idle_key", "rules[0].deductible.bucket"),
    "topup_of_yearly_deductible": (_with((DEDUCTIBLE, DEDUCTIBLE.replace("per: admission,", "per: year, topup: true,"))),
                                   "idle_key", "rules[0].deductible.topup"),
    "lowest_of_without_choose_lowest": (_with(extra=PREMIUMS.format(choose="first", lowest="lowest_of: individual\n  ")),
                                        "idle_key", "premiums.lowest_of"),
    "choose_lowest_without_lowest_of": (_with(extra=PREMIUMS.format(choose="lowest", lowest="")),
                                        "idle_key", "premiums.choose"),
    "source_of_absent_list": (_with(("rules:\n", 'admission:\n  excluded_causes_source: "A-4"\nrules:\n')),
                              "idle_key", "admission.excluded_causes_source"),
    "unknown_excluded_zone": (_with(("rules:\n", 'admission:\n  excluded_zones: [oversea]\nrules:\n')),
                              "unknown_code", "admission.excluded_zones[0]"),
    "unknown_hospital_kind": (_with(("rules:\n", 'admission:\n  hospitals:\n    - {name: X, kind: villag_station, '
                                               'source: "A"}\nrules:\n')), "unknown_code", "admission.hospitals[0].kind"),
    "unknown_default_category": (_with(("rules:\n", 'admission:\n  categories: {known: [retired], default: retird, '
                                                  'source: "A"}\nrules:\n')),
                                 "unknown_code", "admission.categories.default"),
    "literal_in_tuple": (_with(("visit_type == 'inpatient'", "visit_type in ('inpatient', 'emergncy')")),
                         "unknown_code", "rules[0].when"),
    "literal_on_the_left": (_with(("visit_type == 'inpatient'", "'inpatiant' == visit_type")),
                            "unknown_code", "rules[0].when"),
    "fixed_choice_literal": (_with(("visit_type == 'inpatient'", "visit_type == 'inpatient' and sex == 'W'")),
                             "unknown_code", "rules[0].when"),
    "undeclared_diagnosis": (_with(("visit_type == 'inpatient'", "'dialysys' in diagnosis")),
                             "unknown_code", "rules[0].when"),
    "shadowing_in_a_version": (_with(("  bands:\n    source", '  age: {unit: number, value: "2", source: "V"}\n'
                                                         '  bands:\n    source'),
                                      ("rules:\n", 'versions:\n  - id: v\n    parameters:\n      age: '
                                                  '{unit: number, value: "3", source: "V"}\nrules:\n')),
                               "shadowed_name", "versions[0].parameters.age"),
    "eligible_in_a_rule_when": (_with(("visit_type == 'inpatient'", "eligible > 0")),
                                "name_not_yet_known", "rules[0].when"),
    "rate_outside_a_band": (_with((DEDUCTIBLE, DEDUCTIBLE.replace("standard: deductible", 'standard: "rate * 100"'))),
                            "name_not_yet_known", "rules[0].deductible.standard"),
    "unknown_function": (_with(("visit_type == 'inpatient'", "is_knwn(visit_type)")),
                         "bad_expression", "rules[0].when"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_mistake_is_located(case: str, tmp_path: Path) -> None:
    text, code, key_path = CASES[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as info:
        check_policy_file(str(path))
    pairs = [(i.code, i.key_path) for i in info.value.issues]
    assert (code, key_path) in pairs and {c for c, _ in pairs} <= {code, "idle_key"}
    issue = info.value.issues[pairs.index((code, key_path))]
    assert issue.line and issue.column and issue.message_zh and issue.hint_en and issue.hint_zh


@pytest.mark.parametrize("text", [
    _with((RULE_BANDS, RULE_BANDS.replace("axis: absolute", "axis: cumulative, bucket: x"))),
    _with((DEDUCTIBLE, DEDUCTIBLE.replace("per: admission,", "per: admission, topup: true, bucket: x,"))),
    _with(extra=PREMIUMS.format(choose="lowest", lowest="lowest_of: individual\n  ")),
    _with(("visit_type == 'inpatient'", "'dialysis' in diagnosis and sex == 'F'")),
    _with(("rules:\n", 'vocabulary:\n  diagnoses:\n    - {code: gout, label: {zh: 痛风, en: gout}}\nrules:\n'),
          ("visit_type == 'inpatient'", "'gout' in diagnosis")),
], ids=["cumulative_bucket", "topup_bucket", "choose_lowest", "known_literals", "declared_diagnosis"])
def test_the_same_keys_where_they_do_something_pass(text: str, tmp_path: Path) -> None:
    path = tmp_path / f"ok-{abs(hash(text))}.yaml"
    path.write_text(text, encoding="utf-8")
    check_policy_file(str(path))
