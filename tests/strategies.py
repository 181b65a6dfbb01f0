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
