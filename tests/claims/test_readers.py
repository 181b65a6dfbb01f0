"""Tests of medins.claims.readers: claims files → canonical tables, every row accounted for."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import hypothesis.strategies as st
import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings

from medins.claims.fields import CLAIM_FIELDS, FIELDS_BY_NAME, ITEM_FIELDS
from medins.claims.parse import CLAIMS_SCHEMA, ITEMS_SCHEMA, REJECTS_SCHEMA
from medins.claims.readers import read_claims
from medins.errors import InputError

HEADER = "claim_id,person_id,admit_date,discharge_date,total,self_pay,class_b,visit_type"
GOOD = {"claim_id": "C1", "person_id": "P1", "admit_date": "2008-03-02", "discharge_date": "2008-03-05",
        "total": "100.00", "self_pay": "10.00", "class_b": "20.00", "visit_type": "inpatient"}


def write(tmp_path: Path, text: str, name: str = "claims.csv", encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def line(**changes: str) -> str:
    return ",".join({**GOOD, **changes}.values())


def test_good_row_is_typed_with_defaults(tmp_path: Path) -> None:
    """A plain row becomes one claims row with every registry column, typed, defaults filled."""
    result = read_claims(write(tmp_path, f"{HEADER}\n{line()}\n"))
    assert result.claims.schema == CLAIMS_SCHEMA
    assert result.items.schema == ITEMS_SCHEMA and result.items.height == 0
    assert result.rejects.schema == REJECTS_SCHEMA and result.rejects.height == 0
    row = result.claims.row(0, named=True)
    assert row["row"] == 1 and row["total"] == 10000 and row["self_pay"] == 1000 and row["class_b"] == 2000
    assert row["admit_date"] == dt.date(2008, 3, 2) and row["cause"] is None  # the engine assumes (and lists) it
    assert row["hist_fund_paid"] == 0 and row["hospital_zone"] is None and row["has_items"] is False
    assert (result.rows_read, result.shape, result.encoding) == (1, "claims", "utf-8")


def test_discharge_defaults_to_admit_and_optional_money_to_zero(tmp_path: Path) -> None:
    """Absent optional money columns take 0; discharge date and visit type stay absent (assumed by the engine)."""
    result = read_claims(write(tmp_path, "claim_id,person_id,admit_date,total\nC1,P1,2008-03-02,5\n"))
    row = result.claims.row(0, named=True)
    assert row["discharge_date"] is None  # the engine takes admit_date and lists it as assumed
    assert (row["self_pay"], row["class_b"], row["visit_type"]) == (0, 0, None)


REASONS = [
    ({"person_id": ""}, "missing_field:person_id", 'Column "person_id" is empty', "为空"),
    ({"admit_date": "2008-13-45"}, "bad_date:admit_date", "'2008-13-45', which is not a date",
     "不是有效日期"),
    ({"total": "-5"}, "negative_amount:total", "'-5', which is negative", "为负数"),
    ({"total": "abc"}, "not_a_number:total", "'abc', which is not a number", "不是数字"),
    ({"total": "NaN"}, "not_a_number:total", "'NaN'", "不是数字"),
    ({"total": "inf"}, "not_a_number:total", "'inf'", "不是数字"),
    ({"total": "12.345"}, "sub_fen:total", "more than two decimals", "超过两位小数"),
    ({"total": "100000000000.01"}, "too_large:total", "more than 100000000000 yuan", "超过上限"),
    ({"visit_type": "spa"}, "unknown_code:visit_type", "allowed: inpatient, outpatient", "无法识别"),
    ({"self_pay": "200"}, "self_pay_above_total", "self-paid amount 200.00 is more than the total 100.00",
     "全自费金额 200.00 大于医疗费总额 100.00"),
    ({"class_b": "95"}, "class_b_above_in_scope", "class B amount 95.00 is more than the in-scope amount",
     "乙类金额 95.00 大于政策范围内金额"),
    ({"discharge_date": "2008-03-01"}, "discharge_before_admit", "discharge date 2008-03-01 is before",
     "早于入院日期"),
]


@pytest.mark.parametrize(("changes", "reason", "en", "zh"), REASONS, ids=[r[1] + str(r[0]) for r in REASONS])
def test_each_reject_reason_has_row_message_and_raw(tmp_path: Path, changes: dict, reason: str, en: str,
                                                    zh: str) -> None:
    """A bad cell rejects its row only, with a stable code, its row number, both messages and the line."""
    text = f"{HEADER}\n{line(claim_id='OK1')}\n{line(claim_id='BAD', **changes)}\n{line(claim_id='OK2')}\n"
    result = read_claims(write(tmp_path, text))
    assert result.claims["claim_id"].to_list() == ["OK1", "OK2"]
    assert result.claims["row"].to_list() == [1, 3]
    reject = result.rejects.row(0, named=True)
    assert (reject["row"], reject["claim_id"], reject["reason"]) == (2, "BAD", reason)
    assert en in reject["message_en"] and zh in reject["message_zh"]
    assert reject["raw"] == line(claim_id="BAD", **changes)


def test_several_problems_in_one_row_are_all_named(tmp_path: Path) -> None:
    """Codes are joined with ';' in registry order; the row is still one reject."""
    result = read_claims(write(tmp_path, f"{HEADER}\n{line(person_id='', total='x', visit_type='?')}\n"))
    expected = "missing_field:person_id;unknown_code:visit_type;not_a_number:total"
    assert result.rejects["reason"].to_list() == [expected]


def test_ragged_rows_and_quoted_separator_and_newline(tmp_path: Path) -> None:
    """Too many and too few fields are rejected as field_count; a quoted ',' and newline is one cell."""
    text = (f"{HEADER},hospital_name\n"
            f'{line(claim_id="Q")},"宿迁,中医院\n二部"\n'
            f"{line(claim_id='LONG')},x,extra\n"
            f"{line(claim_id='SHORT')}\n"
            f'{line(claim_id="AFTER")},"a ""quoted"" name"\n')
    result = read_claims(write(tmp_path, text))
    assert result.claims["claim_id"].to_list() == ["Q", "AFTER"]
    assert result.claims["hospital_name"].to_list() == ["宿迁,中医院\n二部", 'a "quoted" name']
    assert result.claims["row"].to_list() == [1, 4]
    rejects = result.rejects.rows_by_key("row", named=True, unique=True)
    assert rejects[2]["reason"] == rejects[3]["reason"] == "field_count"
    assert "has 10 fields but the header has 9" in rejects[2]["message_en"]
    assert "该行有 8 个字段，而表头有 9 个" in rejects[3]["message_zh"]
    assert rejects[2]["raw"] == f"{line(claim_id='LONG')},x,extra"
    assert result.rows_read == 4


def test_quoted_separators_on_one_line_records_are_not_field_breaks(tmp_path: Path) -> None:
    """No quoted cell spans lines (the fast count): commas inside quotes never count as field breaks,
    so a short row with a quoted comma and a long row with a quoted comma in its extra cell are both
    field_count with their true field counts, and the good rows keep their commas."""
    short = line(claim_id="SHORT", visit_type='"inpatient,x"')  # 8 fields, 9 commas
    text = (f'{HEADER},"hospital_name"\n'
            f'{line(claim_id="Q")},"宿迁,中医院,二部"\n'
            f"{short}\n"
            f'{line(claim_id="LONG")},x,"y,z"\n'
            f'{line(claim_id="E")},""\n')
    result = read_claims(write(tmp_path, text))
    assert result.claims["claim_id"].to_list() == ["Q", "E"]
    assert result.claims["hospital_name"].to_list() == ["宿迁,中医院,二部", None]
    rejects = result.rejects.rows_by_key("row", named=True, unique=True)
    assert rejects[2]["reason"] == rejects[3]["reason"] == "field_count"
    assert "has 8 fields but the header has 9" in rejects[2]["message_en"]
    assert "has 10 fields but the header has 9" in rejects[3]["message_en"]
    assert result.rows_read == 4


def test_stray_quote_falls_back_to_the_forgiving_reader(tmp_path: Path) -> None:
    """A quote inside an unquoted field (Polars refuses it) is read by the Python csv path, not lost."""
    text = f"{HEADER},hospital_name\n{line(claim_id='A')},12\" monitor\n{line(claim_id='B')},x,y\n"
    result = read_claims(write(tmp_path, text))
    assert result.claims["hospital_name"].to_list() == ['12" monitor']
    assert result.rejects["reason"].to_list() == ["field_count"]
    assert result.rows_read == 2


def test_blank_lines_are_not_data_rows(tmp_path: Path) -> None:
    """Blank lines (also at the end) are skipped but keep the row numbers of the lines after them."""
    result = read_claims(write(tmp_path, f"{HEADER}\r\n{line()}\r\n\r\n{line(claim_id='C3')}\r\n\r\n"))
    assert result.claims["row"].to_list() == [1, 3]
    assert result.rows_read == 2 and result.rejects.height == 0


def test_duplicate_claim_ids_are_both_kept(tmp_path: Path) -> None:
    """Claim-level files keep duplicate ids as separate rows (the caller decides)."""
    result = read_claims(write(tmp_path, f"{HEADER}\n{line()}\n{line()}\n"))
    assert result.claims["claim_id"].to_list() == ["C1", "C1"]


@pytest.mark.parametrize("sep", ["\t", ";"])
def test_tab_and_semicolon_separators(tmp_path: Path, sep: str) -> None:
    """The separator is taken from the header line."""
    text = HEADER.replace(",", sep) + "\n" + sep.join({**GOOD, "total": "1,234.50"}.values()) + "\n"
    result = read_claims(write(tmp_path, text, "claims.txt"))
    assert result.claims["total"].to_list() == [123450]


CHINESE = ("结算单号,个人编号,入院日期,出院日期,医疗费总额(元),全自费金额,医疗类别,医院等级,"
           "就医地类型,性别,是否急诊,病因,人员类别\n")
CHINESE_ROW = "Z1,P1,2008/03/02,20080312,\"1,234.50\",￥12元,住院,三级甲等,区外市内,女,是,车祸,退休人员\n"


@pytest.mark.parametrize(("encoding", "prefix", "expected"), [
    ("gbk", b"", "gb18030"), ("utf-8", b"\xef\xbb\xbf", "utf-8"), ("utf-8", b"", "utf-8"),
    ("gb18030", b"", "gb18030"),
])
def test_encodings_and_chinese_headers_and_values(tmp_path: Path, encoding: str, prefix: bytes,
                                                  expected: str) -> None:
    """GBK, GB18030 and UTF-8 (with or without BOM) Chinese exports map to canonical columns and codes."""
    path = tmp_path / "c.csv"
    path.write_bytes(prefix + (CHINESE + CHINESE_ROW).encode(encoding))
    result = read_claims(path)
    assert result.encoding == expected
    row = result.claims.row(0, named=True)
    assert row["admit_date"] == dt.date(2008, 3, 2) and row["discharge_date"] == dt.date(2008, 3, 12)
    assert (row["total"], row["self_pay"]) == (123450, 1200)
    assert (row["visit_type"], row["hospital_level"], row["hospital_zone"]) == ("inpatient", 3, "in_city")
    assert (row["sex"], row["emergency"]) == ("F", True)
    assert (row["cause"], row["person_category"]) == ("traffic_accident", "retired")
    assert result.header_map["医疗费总额(元)"] == "total" and result.header_map["医疗类别"] == "visit_type"


def test_gb18030_only_characters(tmp_path: Path) -> None:
    """Characters outside GBK (here 𠮷) are read from GB18030."""
    path = write(tmp_path, f"{HEADER},hospital_name\n{line()},𠮷医院\n", encoding="gb18030")
    assert read_claims(path).claims["hospital_name"].to_list() == ["𠮷医院"]


def test_explicit_encoding_is_honoured(tmp_path: Path) -> None:
    """--encoding gbk reads GBK; --encoding utf-8 on GBK bytes is a whole-file error naming the offset."""
    path = write(tmp_path, CHINESE + CHINESE_ROW, encoding="gbk")
    assert read_claims(path, encoding="gbk").encoding == "gbk"
    with pytest.raises(InputError, match="not valid utf-8"):
        read_claims(path, encoding="utf-8")
    with pytest.raises(InputError, match="unsupported encoding"):
        read_claims(path, encoding="latin-9")


def test_unmapped_headers_are_reported_and_ignored(tmp_path: Path) -> None:
    """An unknown header maps to None and does not stop the file."""
    result = read_claims(write(tmp_path, f"{HEADER},备注\n{line()},hello\n"))
    assert result.header_map["备注"] is None and result.claims.height == 1


def test_missing_required_column_is_a_file_error_with_hint(tmp_path: Path) -> None:
    """Without a total column the file is refused, naming the column, the headers found and a guess."""
    with pytest.raises(InputError) as info:
        read_claims(write(tmp_path, "claim_id,person_id,admit_date,医疗费总\nC1,P1,2008-03-02,5\n"))
    err = info.value
    assert "total (医疗费总额)" in err.message_en and "'医疗费总'" in err.message_en
    assert "医疗费总额" in err.message_zh and "'医疗费总' the total column" in err.hint_en


def test_two_headers_for_one_field_is_an_error_unless_mapped(tmp_path: Path) -> None:
    """总费用 and 医疗费用总额 are both aliases of total: refuse to guess; --map picks one."""
    text = "claim_id,person_id,admit_date,总费用,医疗费用总额\nC1,P1,2008-03-02,5,6\n"
    with pytest.raises(InputError, match="both map to 'total'") as info:
        read_claims(write(tmp_path, text))
    assert info.value.file == str(tmp_path / "claims.csv")
    result = read_claims(write(tmp_path, text), mapping={"columns": {"医疗费用总额": "total"}})
    assert result.claims["total"].to_list() == [600]
    assert result.header_map == {"claim_id": "claim_id", "person_id": "person_id", "admit_date": "admit_date",
                                 "总费用": None, "医疗费用总额": "total"}


def test_map_columns_and_values(tmp_path: Path) -> None:
    """--map renames any header and translates local codes before the built-in aliases."""
    text = "单号,人,日期,钱,地区,类型\nM1,P1,2008-03-02,7,本市,住院\n"
    mapping = {"columns": {"单号": "claim_id", "人": "person_id", "日期": "admit_date", "钱": "total",
                           "地区": "hospital_zone", "类型": "visit_type"},
               "values": {"hospital_zone": {"本市": "in_city"}, "visit_type": {"住院": "emergency"}}}
    row = read_claims(write(tmp_path, text), mapping=mapping).claims.row(0, named=True)
    assert (row["hospital_zone"], row["visit_type"], row["total"]) == ("in_city", "emergency", 700)


def test_bad_map_is_refused_with_did_you_mean(tmp_path: Path) -> None:
    """A map naming a field that does not exist says which field was probably meant."""
    with pytest.raises(InputError) as info:
        read_claims(write(tmp_path, f"{HEADER}\n{line()}\n"), mapping={"columns": {"x": "totl"}})
    assert info.value.key_path == "columns.x" and "'total'" in (info.value.hint_en or "")


def test_date_money_and_level_formats(tmp_path: Path) -> None:
    """Dates with slashes, compact or with a time; money with separators and signs; level words."""
    text = ("claim_id,person_id,admit_date,total,hospital_level\n"
            "A,P,2008-03-02 10:11:12,¥12,未定级\nB,P,20080302,12元,一级\nC,P,2008/3/2,\"1,000\",村卫生室\n"
            "D,P,2008-03-02 25:00:00,1,3\nE,P,2008032,1,2\n")
    result = read_claims(write(tmp_path, text))
    assert result.claims["admit_date"].to_list() == [dt.date(2008, 3, 2)] * 3
    assert result.claims["total"].to_list() == [1200, 1200, 100000]
    assert result.claims["hospital_level"].to_list() == [None, 1, 0]
    assert result.rejects["reason"].to_list() == ["bad_date:admit_date", "bad_date:admit_date"]


ITEMS = ("结算单号,个人编号,入院日期,医院名称,费用类别,项目名称,甲乙类,明细金额\n"
         "A1,P1,2008-03-02,宿迁市中医院,drug,头孢,乙,300.00\n"
         "B2,P2,2008-03-03,X医院,drug,y,甲,10\n"
         "A1,,,,exam,检查费,甲,200.50\n"
         "C3,P3,2008-03-04,X医院,drug,y,甲,10\n"
         "C3,P3,2008-03-04,X医院,drug,z,甲,1.234\n"
         "D4,P4,2008-03-05,X医院,drug,y,甲,10\n"
         "D4,P4,2008-03-05,Y医院,drug,y,甲,10\n"
         ",P9,2008-03-03,X,drug,y,A,10\n")


def test_line_items_grouped_into_claims(tmp_path: Path) -> None:
    """Item rows become claims in first-appearance order with total = sum; bad lines hold back their claim."""
    result = read_claims(write(tmp_path, ITEMS))
    assert result.shape == "items" and result.rows_read == 8
    claims = result.claims
    assert claims["claim_id"].to_list() == ["A1", "B2"] and claims["row"].to_list() == [1, 2]
    assert claims["total"].to_list() == [50050, 1000] and claims["has_items"].all()
    assert claims["hospital_name"].to_list() == ["宿迁市中医院", "X医院"]
    assert (claims["self_pay"].to_list(), claims["class_b"].to_list()) == ([0, 0], [0, 0])
    items = result.items
    assert items["claim_row"].to_list() == [1, 2, 1]
    assert items["item_class"].to_list() == ["B", "A", "A"]
    assert items["item_amount"].to_list() == [30000, 1000, 20050]
    reasons = dict(zip(result.rejects["row"], result.rejects["reason"], strict=True))
    assert reasons == {4: "claim_has_bad_line", 5: "sub_fen:item_amount", 6: "conflicting_claim_fields",
                       7: "conflicting_claim_fields", 8: "missing_field:claim_id"}
    messages = dict(zip(result.rejects["row"], result.rejects["message_en"], strict=True))
    assert "claim C3 is rejected" in messages[4] and "disagree on 医院名称" in messages[6]
    assert result.items.height + result.rejects.height == result.rows_read


def test_line_item_claim_level_checks(tmp_path: Path) -> None:
    """A claim-level problem (no person on any line) rejects every line of that claim with its code."""
    text = "claim_id,person_id,admit_date,item_amount\nA,,2008-03-02,1\nA,,2008-03-02,2\nB,P,2008-03-02,3\n"
    result = read_claims(write(tmp_path, text))
    assert result.rejects["reason"].to_list() == ["missing_field:person_id"] * 2
    assert result.claims["total"].to_list() == [300]


def test_line_item_ragged_line_holds_back_claim(tmp_path: Path) -> None:
    """A line with the wrong field count is a bad line of its claim."""
    text = ("claim_id,person_id,admit_date,item_amount\n"
            "A,P,2008-03-02,1\nA,P,2008-03-02,2,9\nB,P,2008-03-02,3\n")
    result = read_claims(write(tmp_path, text))
    assert result.rejects["reason"].to_list() == ["claim_has_bad_line", "field_count"]
    assert result.claims["claim_id"].to_list() == ["B"]


def test_xlsx_cells_read_as_text(tmp_path: Path) -> None:
    """An Excel sheet with numbers, dates and blanks is read like a CSV; rows are data rows."""
    import xlsxwriter

    path = tmp_path / "c.xlsx"
    book = xlsxwriter.Workbook(path)
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["结算单号", "个人编号", "入院日期", "医疗费总额", "医院等级", "是否急诊",
                           "全自费金额"])
    sheet.write_row(1, 0, ["X1", 12345, "2008-03-02", 12000.5, 3, True, 0.1])
    sheet.write_row(2, 0, ["X2", "P2"])
    sheet.write_datetime(2, 2, dt.datetime(2008, 3, 4), book.add_format({"num_format": "yyyy-mm-dd"}))
    sheet.write_string(2, 3, "=1+2")
    sheet.write_string(2, 4, "三级")
    sheet.write_row(4, 0, ["X3", "P3", "20080305", "1,234.567"])
    book.close()
    result = read_claims(path)
    assert result.claims["claim_id"].to_list() == ["X1"] and result.rows_read == 3
    row = result.claims.row(0, named=True)
    assert (row["person_id"], row["total"], row["hospital_level"], row["emergency"], row["self_pay"]) == (
        "12345", 1200050, 3, True, 10)
    reasons = dict(zip(result.rejects["row"], result.rejects["reason"], strict=True))
    assert reasons[4] == "sub_fen:total" and reasons[2].startswith("not_a_number:total")
    assert result.rejects.filter(pl.col("row") == 4)["raw"].item() == "X3,P3,20080305,\"1,234.567\",,,"


def test_parquet_typed_columns(tmp_path: Path) -> None:
    """Parquet with typed columns (dates, decimals, ints, lists) is read through the same text parsing."""
    from decimal import Decimal

    frame = pl.DataFrame({"claim_id": ["P1", "P2"], "person_id": ["a", "b"],
                          "admit_date": [dt.date(2008, 3, 2), None],
                          "total": [Decimal("12.30"), Decimal("1.00")], "hospital_level": [2, 9],
                          "diagnosis": [["高血压", "糖尿病"], None]},
                         schema_overrides={"total": pl.Decimal(18, 2)})
    path = tmp_path / "c.parquet"
    frame.write_parquet(path)
    result = read_claims(path)
    assert result.claims.row(0, named=True)["total"] == 1230
    assert result.claims["diagnosis"].to_list() == [["高血压", "糖尿病"]]
    assert result.rejects["reason"].to_list() == ["missing_field:admit_date;unknown_code:hospital_level"]


def test_unknown_suffix_and_empty_file(tmp_path: Path) -> None:
    """Files that cannot be claims are whole-file errors."""
    with pytest.raises(InputError, match="unknown claims file type"):
        read_claims(write(tmp_path, "x", "claims.json"))
    for blank in ("", " \r\n\t\n"):
        with pytest.raises(InputError, match="empty"):
            read_claims(write(tmp_path, blank))


def test_registry_drives_the_schema() -> None:
    """Every registry field is a column, in registry order, and no header alias is claimed twice."""
    assert list(CLAIMS_SCHEMA)[1:-1] == [f.name for f in CLAIM_FIELDS]
    assert list(ITEMS_SCHEMA)[1:] == [f.name for f in ITEM_FIELDS]
    from medins.claims.aliases import normalize_header

    seen: dict[str, str] = {}
    for f in (*CLAIM_FIELDS, *ITEM_FIELDS):
        for name in (f.name, f.zh, *f.aliases):
            assert seen.setdefault(normalize_header(name), f.name) == f.name, name


BAD_CELLS = [("total", "x"), ("total", "-1"), ("total", "1.001"), ("admit_date", "2008-02-30"),
             ("person_id", ""), ("visit_type", "spa"), ("self_pay", "999"), ("discharge_date", "2000-01-01")]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(st.just(None), st.sampled_from(BAD_CELLS), st.just("short"), st.just("long"),
                          st.just("blank")), max_size=25))
def test_every_row_is_settled_or_rejected(tmp_path: Path, kinds: list) -> None:
    """Property: rows_read == claims + rejects, rows are unique, and each bad row is rejected exactly once."""
    lines, bad_rows, row = [HEADER], set(), 0
    for i, kind in enumerate(kinds):
        if kind == "blank":
            lines.append("")
            row += 1
            continue
        row += 1
        text = line(claim_id=f"C{i}")
        if kind == "short":
            text = text.rsplit(",", 1)[0]
        elif kind == "long":
            text += ",x"
        elif kind is not None:
            text = line(claim_id=f"C{i}", **{kind[0]: kind[1]})
        bad_rows |= {row} if kind is not None else set()
        lines.append(text)
    result = read_claims(write(tmp_path, "\n".join(lines) + "\n"))
    assert result.rows_read == result.claims.height + result.rejects.height
    assert result.rows_read == sum(k != "blank" for k in kinds)
    assert set(result.rejects["row"]) == bad_rows
    assert set(result.claims["row"]).isdisjoint(bad_rows)
    assert result.rejects["message_en"].null_count() == 0 and result.rejects["raw"].null_count() == 0


def test_rows_of_empty_cells_are_blank_but_wide_ones_are_not(tmp_path: Path) -> None:
    """A ',,,' tail is skipped; an 'empty' row with more fields than the header is rejected, not dropped."""
    empty = "," * (HEADER.count(","))
    spaces = ",".join(["\t", *[" "] * HEADER.count(",")])  # whitespace-only cells: blank too
    result = read_claims(write(tmp_path, f"{HEADER}\n{line()}\n{empty}\n{empty},,x\n{spaces}\n , {line()[1:]}\n"))
    assert result.rows_read == 3 and result.claims.height == 1
    assert result.rejects["row"].to_list() == [3, 5] and result.rejects["reason"].to_list()[0] == "field_count"


def test_duplicate_header_text_is_an_error(tmp_path: Path) -> None:
    """The same header twice (both mapping to total) cannot be settled unambiguously."""
    with pytest.raises(InputError, match="both map to 'total'"):
        read_claims(write(tmp_path, "claim_id,person_id,admit_date,total,total\nC,P,2008-03-02,1,2\n"))


def test_map_can_ignore_a_column(tmp_path: Path) -> None:
    """Mapping a header to null drops it, which resolves a clash of two aliases."""
    text = "claim_id,person_id,admit_date,总费用,医疗费用总额\nC1,P1,2008-03-02,5,6\n"
    result = read_claims(write(tmp_path, text), mapping={"columns": {"总费用": None}})
    assert result.claims["total"].to_list() == [600] and result.header_map["总费用"] is None


def test_load_mapping_from_yaml(tmp_path: Path) -> None:
    """A MAP.yaml is read with the safe loader; YAML scalars become text and bad shapes are refused."""
    from medins.claims.aliases import load_mapping

    path = tmp_path / "map.yaml"
    path.write_text("columns:\n  钱: total\nvalues:\n  hospital_level:\n    三甲: 3\n"
                    "  emergency:\n    急: true\n", encoding="utf-8")
    mapping = load_mapping(path)
    src = write(tmp_path, "claim_id,person_id,admit_date,钱,hospital_level,emergency\n"
                          "C,P,2008-03-02,1,三甲,急\n")
    row = read_claims(src, mapping=mapping).claims.row(0, named=True)
    assert (row["total"], row["hospital_level"], row["emergency"]) == (100, 3, True)
    path.write_text("columns: [a, b]\n", encoding="utf-8")
    with pytest.raises(InputError, match="must be a mapping"):
        load_mapping(path)
    path.write_text("colums: {}\n", encoding="utf-8")
    with pytest.raises(InputError) as info:
        load_mapping(path)
    assert "'columns'" in (info.value.hint_en or "") and info.value.file == str(path)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from("ABCD"), st.sampled_from(["1.00", "2.50", "x", "1.001", ""]),
                          st.sampled_from(["H1", "H1", "H2"])), min_size=1, max_size=30))
def test_every_item_line_is_settled_or_rejected_with_its_claim(tmp_path: Path, lines: list) -> None:
    """Property: item lines accepted + rejected == rows read, and no claim is half-settled."""
    text = "claim_id,person_id,admit_date,hospital_name,item_amount\n" + "".join(
        f"{cid},P,2008-03-02,{hospital},{amount}\n" for cid, amount, hospital in lines)
    result = read_claims(write(tmp_path, text))
    assert result.rows_read == len(lines) == result.items.height + result.rejects.height
    settled = set(result.claims["claim_id"])
    assert settled.isdisjoint(result.rejects["claim_id"])
    for cid in settled:
        amounts = [a for c, a, _h in lines if c == cid]
        assert result.claims.filter(pl.col("claim_id") == cid)["total"].item() == sum(
            int(Decimal(a) * 100) for a in amounts)


def _cells_equal(a, b) -> bool:
    rows = a.cells.select("row")
    some = [rows.slice(rows.height - 1), rows.gather_every(2, offset=1), rows.reverse()]  # as rejects ask for them
    return (a.headers == b.headers and a.records == b.records and a.cells.equals(b.cells)
            and all(a.raw_text(r).equals(b.raw_text(r)) for r in [rows, *some]))


cell = st.one_of(st.sampled_from(["", "x", "1.50", '""', '"a,b"', '"q""uote"', '"two\nlines"', "住院", " ", "\r"]),
                 st.text(alphabet='ab,;"', max_size=4))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.lists(cell, min_size=1, max_size=5), min_size=1, max_size=8), st.sampled_from(["\n", "\r\n"]),
       st.booleans())
@example(records=[["", ""], ["", ",", ""]], newline="\n", last_newline=False)  # a wide, empty, unterminated line
def test_one_pass_csv_reader_declines_or_equals_the_general_reader(records, newline, last_newline) -> None:
    """The one-line-per-record pass (nearly every export) gives exactly the cells, field counts, row numbers
    and raw lines of the general reader — or declines (ragged rows, quoted breaks, blank lines, stray quotes)."""
    from medins.claims import readers

    text = newline.join(["h1,h2,h3", *(",".join(r) for r in records)]) + (newline if last_newline else "")
    data = text.encode()
    spare = "\x1f"
    fast = readers._csv_one_line_records(data, ",", spare)
    try:
        general = readers._csv_records(data, ",", spare)
    except pl.exceptions.PolarsError:
        general = None
    if fast is not None:
        assert general is not None and _cells_equal(fast, general)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=40).map(lambda b: b.translate(bytes(b'",\na'[i % 4] for i in range(256)))),
       st.integers(0, 40))
def test_byte_counts_by_numpy_equal_bytes_count(data: bytes, start: int) -> None:
    """The counts, the quote-pairing test and the line breaks a large piece's one pass (and its cut) take from
    numpy are what ``bytes.count`` and a scan give (numpy forced for every size here)."""
    from medins.claims import readers

    original = readers.NUMPY_BYTES, readers._BLOCK
    try:
        readers.NUMPY_BYTES, readers._BLOCK = 0, 3  # numpy for every size, a few bytes compared at a time
        by_numpy = ([readers.count_byte(data, b, start) for b in (b'"', b",", b"\n")], readers._quotes_paired(data),
                    readers.line_breaks(data, range(-1, len(data) + 2)), readers.line_breaks(data, [start]))
    finally:
        readers.NUMPY_BYTES, readers._BLOCK = original
    by_count = ([data.count(b, start) for b in (b'"', b",", b"\n")], data.count(b'"') == 2 * data.count(b'""'),
                dict(enumerate(at for at in range(len(data)) if data[at] == ord("\n"))))
    by_count = (*by_count, {i: at for i, at in by_count[2].items() if i == start})
    assert by_numpy == by_count
    assert (readers._quotes_paired(data), readers.line_breaks(data, range(-1, len(data) + 2)),
            readers.line_breaks(data, [start])) == by_count[1:]  # the small-data path


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, (1 << 64) - 1), max_size=40))
def test_the_bit_count_without_numpy_2_counts_as_numpy_2_does(words: list[int]) -> None:
    """``_popcount``'s table path (NumPy 1.x has no ``bitwise_count``; medins allows numpy>=1.24) gives each word's
    set bits, as Python counts them."""
    import numpy as np

    from medins.claims import readers

    array = np.array(words, dtype=np.uint64)
    expected = [bin(w).count("1") for w in words]
    saved = getattr(np, "bitwise_count", None)
    try:
        if saved is not None:
            del np.bitwise_count
        by_table = readers._popcount(array).tolist()
    finally:
        if saved is not None:
            np.bitwise_count = saved
    assert by_table == expected
    if saved is not None:
        assert readers._popcount(array).tolist() == expected


def test_one_pass_csv_reader_is_taken_for_plain_and_empty_quoted_cells() -> None:
    """The property above is not vacuous: plain rows and Polars' own "" empty cells take the one pass."""
    from medins.claims import readers

    for text in ("h1,h2\na,1\nb,2\n", 'h1,h2\na,""\n"",2', 'h1,h2\r\na,""""\r\n'):
        assert readers._csv_one_line_records(text.encode(), ",", "\x1f") is not None, text
    for text in ("h1,h2\na,1,x\nb\n", 'h1,h2\n"a,b",1\n', "h1,h2\na,1\n\nb,2\n"):
        assert readers._csv_one_line_records(text.encode(), ",", "\x1f") is None, text


#: Cells of the repetitive kinds, good and bad: dates, codes with a value table, 是/否, lists, levels.
PARSE_CELLS = {
    "admit_date": ["2008-03-02", "2008/3/2", "20080302", "2008-03-02 10:00:00", "2009-02-30", "08-03-02", " ", "x",
                   "２００８－０３－０２", "\u30002008-03-02"],
    "visit_type": ["inpatient", "住院", " 门诊 ", "INPATIENT", "unknown", "", "ｉｎｐａｔｉｅｎｔ"],
    "preapproved": ["是", "否", "true", "FALSE", "maybe", "", "ｔｒｕｅ"],
    "diagnosis": ["dialysis", "dialysis;transplant_antirejection", " ; ", "a|b", ""],
    "hospital_level": ["三级", "2", "2.0", "7", "-1", "x", ""],
    "total": ["100.00", "1,000", "12.345", "-1", "x", ""],
}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.fixed_dictionaries({name: st.sampled_from(cells) for name, cells in PARSE_CELLS.items()}),
                min_size=1, max_size=40))
def test_parsing_distinct_cells_equals_parsing_every_cell(rows: list[dict]) -> None:
    """A repetitive column read once per distinct cell and joined back gives exactly the values and error
    codes of reading every cell (with nulls — missing cells — among the distinct cells)."""
    from medins.claims import parse

    raw = pl.DataFrame(rows).with_columns(pl.when(pl.col(c) != "").then(pl.col(c)) for c in PARSE_CELLS)
    raw = raw.with_row_index("row", offset=1).with_columns(pl.col("row").cast(pl.Int64))
    required = ["admit_date", "visit_type", "total"]
    by_distinct = parse.parse_fields(raw, CLAIM_FIELDS, {}, required=required)
    original = parse._distinct_cells
    try:
        parse._distinct_cells = lambda *_args: {}  # every cell parsed where it is
        by_cell = parse.parse_fields(raw, CLAIM_FIELDS, {}, required=required)
    finally:
        parse._distinct_cells = original
    assert by_distinct.equals(by_cell)


def test_distinct_cells_number_each_columns_own_texts() -> None:
    """Each column's cells and positions are its own (new categories per column and per call): the same texts
    met in another order, in another column or an earlier frame, do not shift the numbering, and a row's
    position gives back its text (nulls the last cell)."""
    from medins.claims import parse

    fields = [FIELDS_BY_NAME["admit_date"], FIELDS_BY_NAME["discharge_date"]]
    first = pl.DataFrame({"admit_date": ["a", "b", None, "a"], "discharge_date": ["b", "c", "b", "a"]})
    second = pl.DataFrame({"admit_date": ["c", None, "a", "c"], "discharge_date": [None, None, "x", None]})
    for frame in (first, second, first):
        found = parse._distinct_cells(frame, fields, {})
        for name in frame.columns:
            cells = found[name]
            assert cells.cells.gather(cells.positions).to_list() == frame[name].to_list()
            assert cells.cells.to_list() == [*frame[name].drop_nulls().unique(maintain_order=True),
                                             *([None] if frame[name].null_count() else [])]


#: Money cells a fast path could misread: NFKC forms, full-width digits, thousands commas, ¥/元, signs,
#: exponent-looking text, whitespace, too many digits or decimals, words.
HOSTILE_MONEY = st.one_of(
    st.none(),
    st.from_regex(r"\A[0-9]{1,13}(\.[0-9]{0,4})?\Z"),
    st.sampled_from(["", " ", "0", "00.10", "1.", ".5", "+1", "-1", "-0", "1e3", "1E+4", "1_000", "1,000", "1,00",
                     "¥1,200.50", "￥12元", "12 元", "- ¥3", "１２００．５０", "１，２００", "\u30001.00", "1.00\t",
                     " 7 ", "−5", "nan", "inf", "12.345", "12.340", "99999999999.99", "100000000000.00",
                     "100000000000.01", "123456789012", "0x10", "1.2.3", "٣", "一百"]),
    st.text(alphabet="0123456789.,-+¥元eE ０１２．，\u3000", max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(HOSTILE_MONEY, min_size=1, max_size=30))
def test_plain_money_fast_path_equals_the_whole_grammar(cells: list) -> None:
    """Money read by the decimal cast where cells are plain (and the whole grammar elsewhere) gives exactly
    the values and codes of the whole grammar on every cell — required, optional with a default, negative."""
    from medins import money
    from medins.claims import parse
    from medins.claims.fields import FIELDS_BY_NAME

    fields = [FIELDS_BY_NAME["total"], FIELDS_BY_NAME["self_pay"]]
    raw = pl.DataFrame({"row": range(len(cells)), "total": cells, "self_pay": cells},
                       schema={"row": pl.Int64, "total": pl.String, "self_pay": pl.String})
    fast = parse.parse_fields(raw, fields, {}, required=["total"])
    original = money.is_plain_yuan
    try:  # no cell is plain: every one is read by the grammar's regex (in parse_fields and in amount_plan)
        parse.is_plain_yuan = money.is_plain_yuan = lambda text: text.is_null() & text.is_not_null()
        parse._cached_plan.cache_clear()  # plans are built once in a process: built again with the test
        slow = parse.parse_fields(raw, fields, {}, required=["total"])
    finally:
        parse.is_plain_yuan = money.is_plain_yuan = original
        parse._cached_plan.cache_clear()
    assert fast.equals(slow)


def test_plain_money_fast_path_takes_plain_cells_only() -> None:
    """The property above compares two real paths: plain yuan is read by the cast, anything else is not."""
    from medins.money import is_plain_yuan

    cells = ["0", "12.3", "12.34", "99999999999.99", "12.345", "100000000000", " 1", "1,000", "１", "+1", "1.", None]
    plain = pl.DataFrame({"t": cells}).select(is_plain_yuan(pl.col("t"))).to_series().to_list()
    assert plain == [True] * 4 + [False] * 8


#: Cell characters for the strip-free read: letters, digits, Chinese, every kind of whitespace Polars strips
#: (as a cell's edge or inside it), and characters NFKC turns into text starting with a space (˘, ﹉).
TRIM_CELL = st.text(alphabet="aZ09-.东院（） \t\u3000\u00a0\u2003\u200a\u205f\u0085\u02d8\ufe49", max_size=6)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(TRIM_CELL, TRIM_CELL, TRIM_CELL, TRIM_CELL, TRIM_CELL | st.sampled_from(["12.5", " 7"]),
                          st.sampled_from(["2008-03-02", "2008-03-02\u3000", "", "x"])), min_size=1, max_size=12))
@example([("C1", "P1", "东院", "inpatient", "12.5", "2008-03-02"), ("C2", "P1", "（东院）", "x", "7", "x"),
          ("C3", "", "", "", "", "")])
def test_a_piece_without_whitespace_read_unstripped_equals_the_stripped_read(rows: list) -> None:
    """A piece whose bytes hold no whitespace is read without stripping its ids and names: the claims and
    rejects are exactly those of stripping every cell (NFKC'd columns are stripped either way)."""
    from medins.claims import readers

    header = "claim_id,person_id,hospital_name,visit_type,total,admit_date\n"
    data = (header + "".join(",".join(r) + "\n" for r in rows)).encode()
    quick = readers.read_csv_piece(data, row_offset=0, encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(readers, "no_whitespace", lambda _data: False)
        slow = readers.read_csv_piece(data, row_offset=0, encoding="utf-8")
    assert quick.claims.equals(slow.claims)
    assert quick.rejects.equals(slow.rejects)
    assert quick.rows_read == slow.rows_read
    if rows[0][0] == "C1":  # the example above: no whitespace, so read unstripped, and a claim settled
        assert readers.no_whitespace(data) and quick.claims.height == 1 and quick.rejects.height == 2


def test_every_character_polars_strips_starts_with_a_byte_no_whitespace_looks_for() -> None:
    """The strip-free read is exact only if ``no_whitespace`` sees every character ``strip_chars`` strips: all
    of Unicode is stripped by Polars here, and each one it strips is a line feed or starts with a listed byte."""
    from medins.claims.readers import _WHITESPACE_LEADS, no_whitespace

    chars = [chr(c) for c in range(0x110000) if not 0xD800 <= c <= 0xDFFF]
    cells = pl.Series([f"a{c}" for c in chars])
    stripped = [c for c, cut in zip(chars, (cells.str.strip_chars() != cells).to_list(), strict=True) if cut]
    assert len(stripped) == 25  # Unicode's White_Space: a new one would be seen here
    for c in stripped:
        assert c == "\n" or c.encode()[:1] in _WHITESPACE_LEADS, repr(c)
        assert c == "\n" or not no_whitespace(f"x{c}y".encode())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(*[st.sampled_from([None, "", "bad_date:x", "field_count"])] * 3), max_size=20))
def test_codes_joined_only_where_a_row_has_one_equal_codes_joined_everywhere(rows: list) -> None:
    """``sparse`` (codes joined on the few rows that have one) gives exactly the codes of joining every row,
    empty codes included (joined to nothing: null)."""
    from medins.claims.parse import join_codes, sparse

    frame = pl.DataFrame(rows, schema=dict.fromkeys("abc", pl.String), orient="row")
    codes = [pl.col("a"), pl.col("b"), pl.col("c")]
    everywhere = frame.select(join_codes(*codes).alias("_codes")).to_series()
    assert sparse(frame, codes, join_codes(*codes)).equals(everywhere)


def test_rejects_of_the_forgiving_reader_quote_their_lines_as_they_are(tmp_path: Path) -> None:
    """A file Polars refuses (a stray quote) is read by the csv module; a reject still quotes its record as the
    file holds it — an empty quoted cell stays ``""``, a quoted line break stays two lines — not the cells written
    out again."""
    bad = f'{line(claim_id="B", total="abc")},""'
    broken = f'{line(claim_id="Q", admit_date="2008-13-45")},"two\r\nlines"'
    text = f"{HEADER},hospital_name\r\n{line(claim_id='A')},12\" monitor\r\n{bad}\r\n{broken}\r\n"
    result = read_claims(write(tmp_path, text))
    raws = dict(zip(result.rejects["claim_id"], result.rejects["raw"], strict=True))
    assert raws == {"B": bad, "Q": broken.replace("\r\n", "\n")}
    assert result.claims["hospital_name"].to_list() == ['12" monitor']


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.lists(st.lists(cell, min_size=1, max_size=5), min_size=1, max_size=8), st.sampled_from(["\n", "\r\n"]))
def test_the_forgiving_reader_quotes_the_lines_the_general_reader_quotes(records, newline) -> None:
    """Property: where the csv module's reader and Polars' general reader find the same records (they differ on a
    quote inside an unquoted cell, which only the csv module takes as text), it quotes each one's raw lines
    exactly as the general reader does."""
    from medins.claims import readers

    data = readers.universal_newlines(newline.join(["h1,h2,h3", *(",".join(r) for r in records)]).encode())
    try:
        general = readers._csv_records(data, ",", "\x1f")
    except pl.exceptions.PolarsError:
        general = None
    try:
        forgiving = readers._csv_python(data, ",")
    except InputError:
        return
    if general is None or forgiving.records != general.records:
        return
    rows = general.cells.select("row")
    if not rows.equals(forgiving.cells.select("row")) or not general.cells["_nfields"].equals(
            forgiving.cells["_nfields"]):
        return
    assert forgiving.raw_text(rows).equals(general.raw_text(rows))


@pytest.mark.parametrize("at", [1, 3])
def test_an_unclosed_quote_names_the_row_it_opens_on(tmp_path: Path, at: int) -> None:
    """A quote never closed takes in the rest of the file until the field is too large: the error names the data
    row where that record starts (as the rejects file numbers rows) and what to look for."""
    import csv

    limit = csv.field_size_limit(100)  # a small limit, beyond every other record's fields
    rows = [line(claim_id=f"C{i}") for i in range(1, 6)]
    rows[at - 1] = rows[at - 1].replace(",P", ',"P', 1)
    try:
        with pytest.raises(InputError) as caught:
            read_claims(write(tmp_path, "\n".join([HEADER, *rows, *(["x" * 60] * 3)]) + "\n"))
    finally:
        csv.field_size_limit(limit)
    assert f"from row {at} on" in caught.value.message_en and "field larger than field limit" in caught.value.message_en
    assert f"第 {at} 行" in caught.value.message_zh and "never closed" in (caught.value.hint("en") or "")


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(["a", "b", "", "住院", "门诊", None, "x" * 20, "ab", "a "]), max_size=40),
       st.integers(0, 12))
def test_a_column_of_a_few_texts_gives_the_categorical_cells_and_positions(cells: list[str | None],
                                                                          sample: int) -> None:
    """A column read by comparisons (at most ``_FEW_CELLS`` texts) gives the cells and positions the categorical cast
    gives: the cells as first met, the null cell last, each row the index of its own text; a column with more texts
    (found past the rows sampled first, whatever the sample's size) is left to the cast."""
    from medins.claims import parse

    column = pl.Series("admit_date", cells, pl.String)
    few_cells, saved = parse._few_cells, parse._FEW_SAMPLE
    parse._FEW_SAMPLE = sample
    try:
        found = few_cells(column)
        parse._few_cells = lambda _column: None  # the categorical cast
        cast = parse._distinct_cells(pl.DataFrame({"admit_date": column}), [FIELDS_BY_NAME["admit_date"]], {})
    finally:
        parse._few_cells, parse._FEW_SAMPLE = few_cells, saved
    texts = column.drop_nulls().unique(maintain_order=True).to_list()
    if len(texts) > parse._FEW_CELLS:
        assert found is None
        return
    assert found is not None, cells  # a column of a few texts is never left to the cast
    assert found.positions.dtype == pl.UInt32
    assert found.cells.to_list() == [*texts, *([None] if column.null_count() else [])]
    assert found.cells.gather(found.positions).to_list() == column.to_list()
    assert cast["admit_date"].cells.to_list() == found.cells.to_list()
    assert cast["admit_date"].positions.to_list() == found.positions.to_list()
