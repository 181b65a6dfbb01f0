"""Tests of medins.claims.bill: bill JSON ↔ one-row claims table, validated strictly against the registry."""

from __future__ import annotations

import copy
import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from medins.claims.bill import bill_to_tables, load_bill, tables_to_bill
from medins.claims.parse import CLAIMS_SCHEMA, ITEMS_SCHEMA
from medins.errors import InputError

BILL_TEXT = """{
  "id": "C-0001",
  "person": {"id": "P-001", "category": "resident", "birth_date": "1950-05-01", "sex": "F"},
  "visit": {
    "type": "inpatient",
    "admit_date": "2008-03-02", "discharge_date": "2008-03-12",
    "hospital": {"name": "宿迁市中医院", "level": 3, "zone": "in_district"},
    "cause": "illness", "preapproved": true, "emergency": false
  },
  "amounts": {"total": 12000.00, "self_pay": 1000.00, "class_b": 2000.00},
  "history": {"fund_paid": 0, "admissions": 0, "inscope": 0, "deductible_paid": 0}
}"""


@pytest.fixture
def bill(tmp_path: Path) -> dict:
    path = tmp_path / "bill.json"
    path.write_text(BILL_TEXT, encoding="utf-8")
    return load_bill(path)


def errors_of(bill: dict, source: str = "b.json") -> InputError:
    with pytest.raises(InputError) as info:
        bill_to_tables(bill, source=source)
    return info.value


def test_load_reads_numbers_as_decimal_and_allows_bom(tmp_path: Path) -> None:
    """JSON numbers with a point become Decimal (never float); a UTF-8 BOM is accepted."""
    path = tmp_path / "b.json"
    path.write_bytes(b"\xef\xbb\xbf" + BILL_TEXT.encode())
    doc = load_bill(path)
    assert doc["amounts"]["total"] == Decimal("12000.00") and isinstance(doc["amounts"]["total"], Decimal)


def test_json_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    """A syntax error is an InputError with its line and column."""
    path = tmp_path / "b.json"
    path.write_text('{\n  "id": "x",\n  "person" {}\n}', encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_bill(path)
    assert "line 3, column 12" in info.value.message_en and "第 3 行第 12 列" in info.value.message_zh
    assert info.value.file == str(path)


def test_example_bill_becomes_one_typed_row(bill: dict) -> None:
    """The DESIGN §3 example flattens to the canonical columns, money in fen."""
    claims, items = bill_to_tables(bill, source="bill.json")
    assert claims.schema == CLAIMS_SCHEMA and items.schema == ITEMS_SCHEMA and items.height == 0
    row = claims.row(0, named=True)
    assert (row["row"], row["claim_id"], row["person_id"], row["hospital_zone"]) == (1, "C-0001", "P-001",
                                                                                    "in_district")
    assert (row["total"], row["self_pay"], row["class_b"]) == (1_200_000, 100_000, 200_000)
    assert row["discharge_date"] == dt.date(2008, 3, 12) and row["preapproved"] is True
    assert row["hist_fund_paid"] == 0 and row["hist_account_balance"] is None and row["has_items"] is False


def test_defaults_for_id_person_and_discharge() -> None:
    """id defaults to the file stem, person.id to "person"; discharge date, visit type and cause stay absent
    (null): the engine fills them and lists each as ``assumed`` (tests/engine/test_assumed.py)."""
    claims, _ = bill_to_tables({"visit": {"admit_date": "2008-03-02"}, "amounts": {"total": "5"}},
                               source="/x/my-bill.json")
    row = claims.row(0, named=True)
    assert (row["claim_id"], row["person_id"]) == ("my-bill", "person")
    assert (row["discharge_date"], row["visit_type"], row["cause"]) == (None, None, None)
    claims, _ = bill_to_tables({"visit": {"admit_date": "2008-03-02"}, "amounts": {"total": 5}}, source="-")
    assert claims["claim_id"].item() == "bill"


def test_unknown_key_with_did_you_mean(bill: dict) -> None:
    """An unknown key names its path, the allowed keys and the closest one."""
    bill["visit"]["hospital"]["zonee"] = bill["visit"]["hospital"].pop("zone")
    err = errors_of(bill)
    assert err.key_path == "visit.hospital.zonee" and err.file == "b.json"
    assert "unknown key 'zonee'; allowed: name, level, zone" in err.message_en
    assert "did you mean 'zone'?" in (err.hint_en or "") and "是否应为“zone”" in (err.hint_zh or "")


def test_float_is_refused(bill: dict) -> None:
    """A Python float (not read with parse_float=Decimal) never reaches money."""
    bill["amounts"]["total"] = 12000.0
    err = errors_of(bill)
    assert err.key_path == "amounts.total" and "binary float" in err.message_en
    assert "二进制浮点数" in err.message_zh


def test_three_decimals_refused(tmp_path: Path) -> None:
    """12.345 (a JSON number, so a Decimal) is below one fen and refused; so is the string form."""
    path = tmp_path / "b.json"
    path.write_text(BILL_TEXT.replace("12000.00", "12000.345"), encoding="utf-8")
    err = errors_of(load_bill(path))
    assert err.key_path == "amounts.total" and "more than two decimals" in err.message_en
    assert "超过两位小数" in err.message_zh


def test_items_only_total_is_their_sum(bill: dict) -> None:
    """With items and no amounts the total is the sum of the items; self_pay/class_b stay 0."""
    del bill["amounts"]
    bill["items"] = [{"name": "头孢", "category": "drug", "class": "B", "amount": Decimal("300.00")},
                     {"name": "床位", "amount": "50.5", "doses": 2}]
    claims, items = bill_to_tables(bill, source="b.json")
    assert claims["total"].item() == 35050 and claims["self_pay"].item() == 0 and claims["has_items"].item()
    assert items["claim_row"].to_list() == [1, 1] and items["item_amount"].to_list() == [30000, 5050]
    assert items["item_doses"].to_list() == [None, 2]


def test_amounts_and_items_must_agree(bill: dict) -> None:
    """Both given: the items must add up to amounts.total."""
    bill["items"] = [{"amount": "11999.99"}]
    err = errors_of(bill)
    assert err.key_path == "amounts.total" and "differs from the sum of the items 11999.99" in err.message_en
    bill["items"] = [{"amount": "11999.99"}, {"amount": "0.01"}]
    assert bill_to_tables(bill, source="b.json")[0]["total"].item() == 1_200_000


def test_neither_amounts_nor_items() -> None:
    """A bill without amounts.total and without items cannot be settled."""
    err = errors_of({"visit": {"admit_date": "2008-03-02"}})
    assert err.key_path == "amounts.total" and "is required (or give items)" in err.message_en


@pytest.mark.parametrize(("path", "value", "fragment"), [
    (("visit", "admit_date"), "2008/03/02", 'expected a date as "YYYY-MM-DD"'),
    (("visit", "admit_date"), "2008-02-30", "a real calendar date"),
    (("visit", "hospital", "level"), 4, "expected 0, 1, 2 or 3"),
    (("visit", "hospital", "level"), True, "expected a whole number"),
    (("visit", "type"), "inpatent", "expected one of inpatient, outpatient"),
    (("person", "category"), "pensioner", "expected one of resident, resident_other"),
    (("visit", "preapproved"), "yes", "expected true or false"),
    (("person", "id"), 7, "expected text"),
    (("amounts", "self_pay"), "-1", "negative"),
    (("history", "admissions"), -1, "a whole number ≥ 0"),
    (("visit",), [], "must be an object"),
])
def test_wrong_values_name_path_found_and_allowed(bill: dict, path: tuple, value: object,
                                                  fragment: str) -> None:
    """Each wrong value is reported at its key path with what was found and what is allowed."""
    node = bill
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    err = errors_of(bill)
    assert err.key_path == ".".join(path) and fragment in err.message_en


def test_all_problems_reported_at_once(bill: dict) -> None:
    """Several mistakes give one error listing each of them."""
    bill["visit"]["type"] = "x"
    bill["person"]["sexx"] = "F"
    bill["amounts"]["total"] = "abc"
    err = errors_of(bill)
    assert err.message_en.count("\n") == 2 and err.key_path == "person.sexx"


def test_cross_field_checks(bill: dict) -> None:
    """self_pay above total, class_b above the in-scope amount and discharge before admission are refused."""
    for path, value, key in [(("amounts", "self_pay"), "12000.01", "amounts.self_pay"),
                             (("amounts", "class_b"), "11000.01", "amounts.class_b"),
                             (("visit", "discharge_date"), "2008-03-01", "visit.discharge_date")]:
        broken = copy.deepcopy(bill)
        broken[path[0]][path[1]] = value
        assert errors_of(broken).key_path == key


def test_diagnosis_text_or_list(bill: dict) -> None:
    """visit.diagnosis may be one text or a list of texts."""
    bill["visit"]["diagnosis"] = "高血压"
    assert bill_to_tables(bill, source="b")[0]["diagnosis"].to_list() == [["高血压"]]
    bill["visit"]["diagnosis"] = ["高血压", "糖尿病"]
    assert bill_to_tables(bill, source="b")[0]["diagnosis"].to_list() == [["高血压", "糖尿病"]]
    bill["visit"]["diagnosis"] = ["高血压", 3]
    assert errors_of(bill).key_path == "visit.diagnosis"


def test_history_keys(bill: dict) -> None:
    """All history keys of the contract are accepted and mapped to hist_* columns."""
    bill["history"] = {"fund_paid": "1.00", "admissions": 2, "inscope": "3", "deductible_paid": "4",
                       "deductible_standard": "5", "account_balance": "6", "layer2_paid": "7"}
    row = bill_to_tables(bill, source="b")[0].row(0, named=True)
    assert [row[k] for k in ("hist_fund_paid", "hist_admissions", "hist_inscope", "hist_deductible_paid",
                             "hist_deductible_standard", "hist_account_balance", "hist_layer2_paid")] == [
        100, 2, 300, 400, 500, 600, 700]


def test_tables_to_bill_round_trip(bill: dict) -> None:
    """Row → bill JSON (money as yuan text) → row gives the same table, with and without items."""
    claims, items = bill_to_tables(bill, source="b")
    back = tables_to_bill(claims.row(0, named=True), items.to_dicts())
    assert back["amounts"] == {"total": "12000.00", "self_pay": "1000.00", "class_b": "2000.00"}
    assert list(back)[:4] == ["id", "person", "visit", "amounts"]
    again = json.loads(json.dumps(back, ensure_ascii=False), parse_float=Decimal)
    assert bill_to_tables(again, source="b")[0].equals(claims)
    del bill["amounts"]
    bill["items"] = [{"name": "x", "amount": "1.50", "class": "A"}]
    claims, items = bill_to_tables(bill, source="b")
    back = tables_to_bill(claims.row(0, named=True), items.to_dicts())
    assert back["items"] == [{"name": "x", "class": "A", "amount": "1.50"}]
    assert back["amounts"]["total"] == "1.50"
    again_claims, again_items = bill_to_tables(back, source="b")
    assert again_claims.equals(claims) and again_items.equals(items)


def _acceptance_bills() -> list:
    import yaml

    here = Path(__file__).resolve().parents[1] / "acceptance"
    bills = [json.loads(p.read_text(encoding="utf-8"))
             for p in sorted((Path(__file__).resolve().parents[2] / "examples").glob("bill*.json"))]
    for path in sorted(here.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        bills += [case["bill"] for case in doc.get("cases") or []]
        bills += [claim for seq in doc.get("sequences") or [] for claim in seq["claims"]]
    return bills


def test_tables_built_from_rows_equal_tables_built_from_columns():
    """bill_to_tables builds its frames from rows (cheaper): every value and type as a column per field gives."""
    from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS

    bills = _acceptance_bills()
    assert len(bills) > 60
    with_items = 0
    for bill in bills:
        try:
            claims, items = bill_to_tables(copy.deepcopy(bill), source="case")
        except InputError:
            continue
        one = claims.row(0, named=True)
        by_column = pl.DataFrame({"row": [1], **{f.name: [one[f.name]] for f in CLAIM_FIELDS},
                                  "has_items": [one["has_items"]]}, schema=CLAIMS_SCHEMA)
        assert claims.equals(by_column, null_equal=True) and claims.schema == by_column.schema
        lines = items.rows(named=True)
        with_items += bool(lines)
        by_column = pl.DataFrame({"claim_row": [1] * len(lines), **{f.name: [line[f.name] for line in lines]
                                                                     for f in ITEM_FIELDS}}, schema=ITEMS_SCHEMA)
        assert items.equals(by_column, null_equal=True) and items.schema == by_column.schema
    assert with_items
