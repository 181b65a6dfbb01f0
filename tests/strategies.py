"""Hypothesis strategies: random bills and random valid policies (kept apart from the tests, as attrs does)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from medins.policy.compiled import CompiledPolicy, compile_policy
from medins.policy.schema import Policy

ZONES = ("in_district", "in_city", "out_of_city")

fen = st.integers(min_value=0, max_value=20_000_000)  # up to 200,000.00 yuan


def yuan(n: int) -> str:
    return f"{n // 100}.{n % 100:02d}"


@st.composite
def policies(draw) -> CompiledPolicy:
    """A random but valid policy: zone deductibles, 1-4 ascending bands, zone offsets, optional cap and class B."""
    n_bands = draw(st.integers(1, 4))
    edges = sorted(draw(st.sets(st.integers(1, 60_000), min_size=n_bands - 1, max_size=n_bands - 1)))
    rates = [draw(st.integers(0, 100)) for _ in range(n_bands)]
    scale = [{"upto": str(e), "rate": f"{r}%"} for e, r in zip(edges, rates, strict=False)]
    scale.append({"rate": f"{rates[-1]}%"})
    deductibles = {z: str(draw(st.integers(0, 3000))) for z in ZONES}
    offsets = {z: f"{draw(st.integers(0, 30))}%" for z in ZONES}
    cap = draw(st.one_of(st.none(), st.integers(1000, 80_000)))
    class_b = draw(st.integers(0, 20))
    per = draw(st.sampled_from(["admission", "year"]))
    axis = draw(st.sampled_from(["absolute", "above_deductible", "cumulative"]))
    rule = {
        "id": "inpatient", "label": {"zh": "住院", "en": "inpatient"}, "when": "visit_type == 'inpatient'",
        "source": "test", "admission": True,
        "deductible": {"standard": "deductible[hospital_zone]", "per": per, "source": "test"},
        "bands": {"scale": "bands", "axis": axis, "rate": "max(0, rate - zone_offset[hospital_zone])",
                  "class_b_offset": "class_b_offset", "source": "test"},
    }
    if cap is not None:
        rule["cap"] = {"amount": "fund_cap", "per": "year", "source": "test"}
    data = {
        "id": "random", "name": {"zh": "随机", "en": "random"}, "region": {"zh": "测试", "en": "test"},
        "scheme": "test", "source": "hypothesis",
        "parameters": {
            "deductible": {"unit": "yuan", "values": deductibles, "source": "t"},
            "zone_offset": {"unit": "rate", "values": offsets, "source": "t"},
            "bands": {"scale": scale, "source": "t"},
            "class_b_offset": {"unit": "rate", "value": f"{class_b}%", "source": "t"},
            "fund_cap": {"unit": "yuan", "value": str(cap or 1), "source": "t"},
        },
        "admission": {"excluded_causes": ["traffic_accident", "maternity"]},
        "rules": [rule, {"id": "outpatient", "label": {"zh": "门诊", "en": "outpatient"},
                         "when": "visit_type == 'outpatient'", "source": "t"}],
    }
    return compile_policy(Policy.model_validate(data), "random.yaml")


@st.composite
def bills(draw, *, total: int | None = None, cause: str | None = None) -> dict:
    """A random inpatient bill with claim-level amounts (self-pay and class B within the total)."""
    amount = draw(fen) if total is None else total
    self_pay = draw(st.integers(0, amount))
    class_b = draw(st.integers(0, amount - self_pay))
    return {
        "id": "H",
        "person": {"id": "P", "category": "resident"},
        "visit": {
            "type": "inpatient", "admit_date": "2008-04-02", "discharge_date": "2008-04-09",
            "hospital": {"level": 2, "zone": draw(st.sampled_from(ZONES))},
            "cause": cause or draw(st.sampled_from(["illness", "illness", "traffic_accident"])),
            "preapproved": True,
        },
        "amounts": {"total": yuan(amount), "self_pay": yuan(self_pay), "class_b": yuan(class_b)},
        "history": {"fund_paid": yuan(draw(st.integers(0, 5_000_000))),
                    "inscope": yuan(draw(st.integers(0, 5_000_000)))},
    }


def dec(text: str) -> Decimal:
    return Decimal(text)


#: Bases a random payer may take (docs/payers.md): what the earlier payers left of the in-scope amount, of
#: everything, above the basic deductible, or only the basic deductible and the expense above the basic ceiling.
PAYER_BASES = ("inscope - paid", "total - paid", "inscope - basic_deductible - paid", "basic_deductible + above_ceiling",
               "self_pay_first + out_of_catalogue")
ASSISTANCE = ("dibao", "dibao_margin", "extreme_poverty")


@st.composite
def payer_policies(draw) -> CompiledPolicy:
    """A basic rule (deductible, one rate, optional yearly cap and ceiling) and 1-3 random payers, each on its
    own field, with random base, eligibility, deductible, ceiling, bands axis and cap (shared or not)."""
    fields = draw(st.permutations(["hifob_pay", "hifmi_pay", "maf_pay", "oth_pay"]))[:draw(st.integers(1, 3))]
    rule: dict = {
        "id": "inpatient", "label": {"zh": "住院", "en": "inpatient"}, "when": "visit_type == 'inpatient'",
        "source": "t", "admission": True,
        "deductible": {"standard": str(draw(st.integers(0, 2000))), "per": "admission", "source": "t"},
        "bands": {"rate": f"{draw(st.integers(0, 100))}%", "source": "t"},
    }
    if draw(st.booleans()):
        rule["cap"] = {"amount": str(draw(st.integers(1000, 60_000))), "per": "year", "source": "t"}
    if draw(st.booleans()):
        rule["ceiling"] = {"amount": str(draw(st.integers(1000, 80_000))), "source": "t"}
    layers = []
    for n, field in enumerate(fields):
        edges = sorted(draw(st.sets(st.integers(1, 50_000), max_size=2)))
        rates = [draw(st.integers(0, 100)) for _ in range(len(edges) + 1)]
        layer: dict = {
            "id": f"p{n}", "field": field, "base": draw(st.sampled_from(PAYER_BASES)), "source": "t",
            "bands": {"axis": draw(st.sampled_from(["absolute", "above_deductible", "cumulative"])),
                      "scale": f"scale{n}", "source": "t"},
        }
        if draw(st.booleans()):
            layer["when"] = f"assistance_class == '{draw(st.sampled_from(ASSISTANCE))}'"
        if draw(st.booleans()):
            layer["deductible"] = {"standard": str(draw(st.integers(0, 20_000))),
                                   "per": draw(st.sampled_from(["claim", "year"])), "source": "t"}
        if draw(st.booleans()):
            layer["ceiling"] = {"amount": str(draw(st.integers(100, 60_000))),
                                "per": draw(st.sampled_from(["claim", "year"])),
                                "measure": draw(st.sampled_from(["expense", "above_deductible"])), "source": "t"}
        if draw(st.booleans()):
            shared = draw(st.sampled_from([[], ["basic"], ["basic", *[f"p{k}" for k in range(n)]]]))
            layer["cap"] = {"amount": str(draw(st.integers(100, 120_000))), "per": draw(st.sampled_from(["claim", "year"])),
                            "shared_with": shared, "source": "t"}
        layer["_scale"] = [{"upto": str(e), "rate": f"{r}%"} for e, r in zip(edges, rates, strict=False)] + [
            {"rate": f"{rates[-1]}%"}]
        layers.append(layer)
    params = {f"scale{n}": {"scale": layer.pop("_scale"), "source": "t"} for n, layer in enumerate(layers)}
    rule["layers"] = layers
    data = {"id": "random-payers", "name": {"zh": "随机", "en": "random"}, "region": {"zh": "测试", "en": "test"},
            "scheme": "test", "source": "hypothesis", "parameters": params, "rules": [rule]}
    return compile_policy(Policy.model_validate(data), "random-payers.yaml")


@st.composite
def payer_claims(draw) -> list[dict]:
    """1-6 inpatient bills of 1-2 persons over two years, some assisted, some with out-of-catalogue money,
    some with the basic payment given as already paid."""
    out = []
    for i in range(draw(st.integers(1, 6))):
        total = draw(st.integers(0, 15_000_000))
        self_pay = draw(st.integers(0, total))
        person = {"id": draw(st.sampled_from(["A", "B"]))}
        assisted = draw(st.sampled_from([None, *ASSISTANCE]))
        if assisted:
            person["assistance_class"] = assisted
        amounts = {"total": yuan(total), "self_pay": yuan(self_pay)}
        if draw(st.integers(0, 4)) == 0:  # the basic fund settled elsewhere: its payment is given
            amounts["paid"] = {"hifp_pay": yuan(draw(st.integers(0, total)))}
        out.append({"id": f"C{i}", "person": person,
                    "visit": {"type": "inpatient", "admit_date": f"{draw(st.sampled_from([2023, 2024]))}-"
                                                                 f"{draw(st.integers(1, 12)):02d}-10"},
                    "amounts": amounts})
    return out
