"""Bill JSON (DESIGN.md §3) ↔ the one-row claims table and its items table.

Why: a single bill is settled by the same vectorised engine as a batch, as a one-row table, so it
is flattened to the same canonical columns. Unlike a batch row, a bad bill is refused as a whole —
it is one document a person typed — and every problem is reported at once, each with its key path,
what was found, what is allowed and a did-you-mean. The allowed keys come from the registry.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Collection, Mapping
from decimal import Decimal
from pathlib import Path

import polars as pl

from medins.claims.aliases import HOSPITAL_LEVELS, did_you_mean
from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS, Field
from medins.claims.parse import CLAIMS_SCHEMA, ITEMS_SCHEMA, default_of
from medins.claims.vocabulary import close_code
from medins.dates import age_on
from medins.errors import InputError, format_key_path
from medins.money import amounts_to_fen, fen_to_yuan
from medins.textnorm import nfkc

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_TOP_ORDER = ("id", "person", "visit", "amounts", "items", "history")


def _tree(fields: tuple[Field, ...]) -> dict:
    """Nested dict of the allowed keys, leaves are the fields (built once from the registry)."""
    root: dict = {}
    for f in fields:
        node = root
        for key in f.path[:-1]:
            node = node.setdefault(key, {})
        node[f.path[-1]] = f
    return root


CLAIM_TREE = _tree(CLAIM_FIELDS) | {"items": None}
ITEM_TREE = _tree(ITEM_FIELDS)


#: An integer literal longer than this is kept as Decimal: ``int()`` refuses 4,300 digits with a traceback,
#: and no field holds such a number (the money grammar then refuses it as too large).
_INT_DIGITS = 30


def _json_int(text: str) -> int | Decimal:
    return int(text) if len(text) <= _INT_DIGITS else Decimal(text)


class _Duplicates(dict):
    """A JSON object in which a key occurs more than once (the keys are kept in ``repeated``)."""

    repeated: list[str]


def _pairs(pairs: list[tuple[str, object]]) -> dict:
    """``object_pairs_hook``: a dict, or a :class:`_Duplicates` naming the keys given twice."""
    out = dict(pairs)
    if len(out) == len(pairs):
        return out
    dup = _Duplicates(out)
    seen: set[str] = set()
    dup.repeated = [k for k, _v in pairs if k in seen or seen.add(k)]  # type: ignore[func-returns-value]
    return dup


def load_bill(path: str | Path) -> dict:
    """Read a bill JSON file (UTF-8, BOM allowed); numbers with a point become Decimal, never float."""
    return read_json(path, ("bill", "账单"))


def read_json(path: str | Path, what: tuple[str, str] = ("file", "文件")) -> object:
    """Read a JSON file (UTF-8, BOM allowed; Decimal numbers) or raise an InputError saying why, never a traceback.

    Refused with a located message (never a traceback, never a silent choice): a key given twice in
    one object (JSON parsers keep the last value, so a corrected amount could be the wrong one),
    nesting deeper than the parser's stack, integers of thousands of digits (kept as Decimal and
    refused where used) and text holding a lone surrogate (``"\\ud800"``, which cannot be printed).
    """
    path = Path(path)
    en, zh = what
    try:
        with path.open(encoding="utf-8-sig") as handle:
            doc = json.load(handle, parse_float=Decimal, parse_constant=Decimal, parse_int=_json_int,
                            object_pairs_hook=_pairs)
    except json.JSONDecodeError as exc:
        raise InputError(
            message_en=f"not valid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}",
            message_zh=f"JSON 格式错误（第 {exc.lineno} 行第 {exc.colno} 列）：{exc.msg}",
            hint_en="check for a missing comma, quote or bracket just before that place",
            hint_zh="请检查该位置之前是否缺少逗号、引号或括号", file=str(path)) from None
    except UnicodeDecodeError as exc:
        raise InputError(message_en=f"the {en} is not UTF-8 text (bad byte at offset {exc.start})",
                         message_zh=f"{zh}文件不是 UTF-8 编码（第 {exc.start} 字节处有错误）",
                         hint_en="save it as UTF-8", hint_zh="请以 UTF-8 编码保存", file=str(path)) from None
    except RecursionError:
        raise InputError(message_en=f"the JSON is nested too deeply to be a {en}", message_zh=f"JSON 嵌套层数过多，不是{zh}",
                         hint_en="a bill nests at most four levels (visit.hospital.name)",
                         hint_zh="账单最多嵌套四层（如 visit.hospital.name）", file=str(path)) from None
    except OSError as exc:
        raise InputError(message_en=f"cannot read the {en}: {exc.strerror or exc}",
                         message_zh=f"无法读取{zh}：{exc.strerror or exc}", file=str(path)) from None
    _check_document(doc, str(path))
    return doc


def _check_document(doc: object, file: str) -> None:
    """Refuse repeated keys and lone surrogates anywhere in the document, naming the key path."""
    stack: list[tuple[tuple, object]] = [((), doc)]
    while stack:  # iterative: a document as deep as the parser allows must not exhaust Python's stack
        path, node = stack.pop()
        if isinstance(node, _Duplicates):
            key = node.repeated[0]
            where = format_key_path((*path, key))
            raise InputError(
                message_en=f"the key {key!r} is given more than once in the same object",
                message_zh=f"同一对象中键“{key}”出现了不止一次",
                hint_en="keep one of them: medins does not guess which value you meant",
                hint_zh="请只保留一个：medins 不会猜测您想要的是哪个值", file=file, key_path=where)
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            for text in (key, value):
                if isinstance(text, str) and _has_surrogate(text):
                    raise InputError(
                        message_en="the text holds a lone surrogate escape (such as \\ud800), which is no character",
                        message_zh="文本中含有孤立的代理项转义（如 \\ud800），它不是有效字符",
                        hint_en="write the character itself or its full surrogate pair",
                        hint_zh="请直接写出该字符或完整的代理对", file=file,
                        key_path=format_key_path((*path, key)) or None)
            if isinstance(value, (dict, list)):
                stack.append(((*path, key), value))


def _has_surrogate(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


class _Problems:
    """Collects every problem of a bill, then raises them as one InputError."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.items: list[tuple[str, str, str, str | None, str | None]] = []
        self.amounts: list[tuple[tuple, str, object, dict]] = []

    def read_amounts(self) -> None:
        """Read every amount of the bill (collected by ``_convert``) with :func:`amounts_to_fen`."""
        values = amounts_to_fen([value for _p, _n, value, _o in self.amounts])
        for (path, name, value, out), fen in zip(self.amounts, values, strict=True):
            if isinstance(fen, int):
                out[name] = fen
                continue
            found = str(value) if isinstance(value, Decimal) else repr(value)
            if len(found) > 60:
                found = found[:40] + "…"
            self.add(path, f"{fen}", f"金额 {found} 无效：{_money_zh(str(fen))}",
                     ("write yuan with at most two decimals, e.g. 1234.50 or \"1,234.50\" (no exponent)",
                      "请写成最多两位小数的元，例如 1234.50 或 \"1,234.50\"（不要用科学计数法）"))
        self.amounts = []

    def add(self, path: tuple, en: str, zh: str, hint: tuple[str, str] | None = None) -> None:
        where = format_key_path(path) or "the bill"
        self.items.append((where, en, zh, *(hint or (None, None))))

    def has(self, path: tuple) -> bool:
        return any(p == format_key_path(path) for p, *_rest in self.items)

    def raise_if_any(self) -> None:
        if not self.items:
            return
        first = self.items[0]
        hints_en = [f"{p}: {h}" for p, _e, _z, h, _hz in self.items if h]
        hints_zh = [f"{p}：{h}" for p, _e, _z, _h, h in self.items if h]
        raise InputError(
            message_en="\n".join(f"{p}: {e}" for p, e, _z, _h, _hz in self.items),
            message_zh="\n".join(f"{p}：{z}" for p, _e, z, _h, _hz in self.items),
            hint_en="; ".join(hints_en) or None, hint_zh="；".join(hints_zh) or None,
            file=self.source, key_path=first[0])


def bill_to_tables(bill: dict, *, source: str,
                   codes: Mapping[str, Collection[str]] | None = None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Validate a bill against the registry → (claims table of one row, items table).

    ``codes`` adds, by field, the extra codes a policy declares (``vocabulary:``): they are accepted
    next to the registry's closed vocabularies; any other unknown code is refused with a did-you-mean.

    ``id`` defaults to the file stem (or ``bill``) and ``person.id`` to ``person``; either
    ``amounts.total`` or a non-empty ``items`` list is required, and when both are given the items
    must add up to the total.
    """
    problems = _Problems(source)
    values: dict[str, object] = {}
    items: list[dict[str, object]] = []
    extra = {name: tuple(c) for name, c in (codes or {}).items()}
    _walk(bill, CLAIM_TREE, (), values, problems, extra)
    raw_items = bill.get("items") if isinstance(bill, dict) else None
    if raw_items is not None and not isinstance(raw_items, list):
        problems.add(("items",), f"must be a list of objects, found {type(raw_items).__name__}",
                     f"应为对象列表，实际为 {type(raw_items).__name__}")
    for i, raw in enumerate(raw_items if isinstance(raw_items, list) else []):
        item: dict[str, object] = {}
        _walk(raw, ITEM_TREE, ("items", i), item, problems, extra)
        items.append(item)
    problems.read_amounts()
    for i, (raw, item) in enumerate(zip(raw_items if isinstance(raw_items, list) else [], items, strict=True)):
        if "item_amount" not in item and isinstance(raw, dict) and not problems.has(("items", i, "amount")):
            problems.add(("items", i, "amount"), "is required", "为必填项")
    _complete(values, items, problems, source)
    problems.raise_if_any()
    # Built from rows (one conversion in Polars), not from a list per column: a bill's ~80 one-value columns cost
    # ~80 Python-side Series constructions, the most of this function's time; the same values and schema.
    # (each row's values in the schema's column order, whatever order the registry lists its fields in)
    named = {"row": 1, **{f.name: values.get(f.name, default_of(f)) for f in CLAIM_FIELDS}, "has_items": bool(items)}
    row = tuple(named[name] for name in CLAIMS_SCHEMA)
    item_rows = [tuple(line[name] for name in ITEMS_SCHEMA) for line in (
        {"claim_row": 1, **{f.name: it.get(f.name, default_of(f)) for f in ITEM_FIELDS}} for it in items)]
    return (pl.DataFrame([row], schema=CLAIMS_SCHEMA, orient="row"),
            pl.DataFrame(item_rows, schema=ITEMS_SCHEMA, orient="row"))


def _walk(node: object, tree: dict, path: tuple, out: dict, problems: _Problems,
          extra: Mapping[str, tuple[str, ...]]) -> None:
    if not isinstance(node, dict):
        found = _json_type(node)
        problems.add(path, f"must be an object, found {found}", f"应为对象，实际为 {found}")
        return
    for key, value in node.items():
        if key not in tree:
            allowed = ", ".join(tree)
            elsewhere = _placed_elsewhere(str(key), tree)
            guess = did_you_mean(str(key), tree)
            hint = ((f"{key!r} belongs under {elsewhere}", f"“{key}”应写在 {elsewhere} 下") if elsewhere
                    else (f"did you mean {guess!r}?", f"是否应为“{guess}”？") if guess else None)
            problems.add((*path, str(key)), f"unknown key {key!r}; allowed: {allowed}",
                         f"未知的键“{key}”；允许：{allowed}", hint)
        elif isinstance(tree[key], Field):
            if value is not None:  # JSON null = not given (unknown)
                _convert(tree[key], value, (*path, key), out, problems, extra.get(tree[key].name, ()))
        elif tree[key] is not None:
            _walk(value, tree[key], (*path, key), out, problems, extra)


def _placed_elsewhere(key: str, here: dict) -> str | None:
    """Where a known fact named ``key`` sits in the bill when it was written in the wrong block
    (``visit.deposit`` → ``amounts``): a better hint than the closest name of this block."""
    for f in CLAIM_FIELDS:
        parent = CLAIM_TREE
        for part in f.path[:-1]:
            parent = parent[part]
        if f.path[-1] == key and parent is not here:
            return ".".join(f.path[:-1]) or "the top level"
    return None


def _convert(f: Field, value: object, path: tuple, out: dict, problems: _Problems,
             extra: tuple[str, ...] = ()) -> None:
    """One leaf → its table value, or a problem naming what was found and what is allowed."""
    found = repr(value) if not isinstance(value, Decimal) else str(value)
    allowed: tuple[str, str] | None = None
    if f.kind == "money":  # read with the bill's other amounts, in one evaluation of the money grammar
        problems.amounts.append((path, f.name, value, out))
        return
    if f.kind == "str" and isinstance(value, str):
        code = nfkc(value).strip() if f.choices else value  # ｉｎｐａｔｉｅｎｔ is inpatient, as in a batch cell
        choices = (*f.choices, *extra) if f.choices else ()
        if not choices or code in choices:
            out[f.name] = code
            return
        guess = close_code(code, choices)
        if guess:  # the likely code in the hint: a list of sixty categories hides it
            problems.add(path, f"{found} is not allowed; expected one of {', '.join(choices)}",
                         f"{found} 无效；应为 {'、'.join(choices)} 之一",
                         (f"did you mean {guess!r}?", f"是否应为“{guess}”？"))
            return
        allowed = (f"one of {', '.join(choices)}", f" {'、'.join(choices)} 之一")
    elif f.kind == "date" and isinstance(value, str) and _ISO_DATE.match(value):
        try:
            out[f.name] = dt.date.fromisoformat(value)
            return
        except ValueError:
            allowed = ("a real calendar date", "真实存在的日期")
    elif f.kind == "bool" and isinstance(value, bool):
        out[f.name] = value
        return
    elif f.kind == "int" and isinstance(value, int) and not isinstance(value, bool):
        ok = value in HOSPITAL_LEVELS if f.name == "hospital_level" else value >= f.minimum
        if ok:
            out[f.name] = value
            return
        allowed = (("0, 1, 2 or 3", "0、1、2 或 3") if f.name == "hospital_level"
                   else (f"a whole number ≥ {f.minimum}", f"不小于 {f.minimum} 的整数"))
    elif f.kind == "list" and (isinstance(value, str) or (isinstance(value, list)
                                                           and all(isinstance(v, str) for v in value))):
        out[f.name] = [value] if isinstance(value, str) else list(value)
        return
    want = allowed or _KIND_WANT[f.kind]
    problems.add(path, f"{found} is not allowed; expected {want[0]}", f"{found} 无效；应为{want[1]}")


_KIND_WANT = {
    "str": ("text", "文本"), "date": ("a date as \"YYYY-MM-DD\"", "\"YYYY-MM-DD\" 格式的日期"),
    "bool": ("true or false", "true 或 false"), "int": ("a whole number", "整数"),
    "list": ("text or a list of texts", "文本或文本列表"),
}


def _money_zh(message: str) -> str:
    for en, zh in (("binary float", "不接受二进制浮点数"), ("more than two decimals", "超过两位小数"),
                   ("negative", "不能为负数"), ("larger than", "超过上限"), ("not a number", "不是数字"),
                   ("finite", "不是有限数"), ("empty", "为空"), ("has type", "类型不对")):
        if en in message:
            return zh
    return message


def _json_type(value: object) -> str:
    return {dict: "object", list: "list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "number")


def _complete(values: dict, items: list[dict], problems: _Problems, source: str) -> None:
    """Defaults, the total from the items, and the checks that involve two fields."""
    stem = Path(source).stem if source and source not in ("-", "<stdin>") else ""
    values.setdefault("claim_id", stem or "bill")
    values.setdefault("person_id", "person")
    if "admit_date" not in values and not problems.has(("visit", "admit_date")):
        problems.add(("visit", "admit_date"), "is required", "为必填项")
    if items and all("item_amount" in it for it in items):
        item_sum = sum(int(it["item_amount"]) for it in items)
        if "total" in values and values["total"] != item_sum:
            given, summed = fen_to_yuan(values["total"]), fen_to_yuan(item_sum)
            problems.add(("amounts", "total"), f"{given} differs from the sum of the items {summed}",
                         f"{given} 与明细金额合计 {summed} 不一致")
        values["total"] = item_sum
    elif not items and "total" not in values and not problems.has(("amounts", "total")):
        problems.add(("amounts", "total"), "is required (or give items)", "为必填项（或提供 items 明细）")
    _check_age(values, problems)
    total, self_pay, class_b, preselfpay = (values.get(k, 0) for k in ("total", "self_pay", "class_b", "preselfpay"))
    admit, discharge = values.get("admit_date"), values.get("discharge_date")
    if admit and discharge and discharge < admit:
        problems.add(("visit", "discharge_date"), f"{values['discharge_date']} is before the admission date",
                     f"{values['discharge_date']} 早于入院日期")
    if any(problems.has(("amounts", k)) for k in ("total", "self_pay", "class_b", "preselfpay")):
        return  # the amounts themselves are wrong: comparing them would only add noise
    if self_pay > total:
        problems.add(("amounts", "self_pay"),
                     f"{fen_to_yuan(self_pay)} is more than the total {fen_to_yuan(total)}",
                     f"{fen_to_yuan(self_pay)} 大于医疗费总额 {fen_to_yuan(total)}")
    elif sum(v for k, v in values.items() if k.startswith("paid_")) > total:
        paid = sum(v for k, v in values.items() if k.startswith("paid_"))
        problems.add(("amounts", "paid"), f"the payments already made add up to {fen_to_yuan(paid)}, more than the "
                     f"total {fen_to_yuan(total)}",
                     f"已支付金额合计 {fen_to_yuan(paid)} 大于医疗费总额 {fen_to_yuan(total)}")
    elif class_b > total - self_pay:
        problems.add(("amounts", "class_b"), f"{fen_to_yuan(class_b)} is more than the in-scope amount "
                     f"{fen_to_yuan(total - self_pay)}", f"{fen_to_yuan(class_b)} 大于政策范围内金额 "
                     f"{fen_to_yuan(total - self_pay)}")
    if self_pay <= total and preselfpay > total - self_pay:
        problems.add(("amounts", "preselfpay"), f"{fen_to_yuan(preselfpay)} is more than the in-scope amount "
                     f"{fen_to_yuan(total - self_pay)}", f"{fen_to_yuan(preselfpay)} 大于政策范围内金额 "
                     f"{fen_to_yuan(total - self_pay)}")


def _check_age(values: dict, problems: _Problems) -> None:
    """``person.age`` and ``person.birth_date`` both given must agree on the service date (the admission date).

    Why: a page states "a 40-year-old"; a hospital export states a birth date. Either is a fact the engine
    can use, but two that disagree mean one of them is wrong, and settling with either would be a guess.
    """
    age, birth, admit = values.get("age"), values.get("birth_date"), values.get("admit_date")
    if age is None or birth is None or admit is None:
        return
    counted = age_on(birth, admit)
    if counted != age:
        problems.add(("person", "age"), f"{age} disagrees with the birth date {birth}: "
                     f"{counted} whole years on the service date {admit}",
                     f"{age} 与出生日期 {birth} 不符：到就诊日期 {admit} 为 {counted} 周岁",
                     ("give either age or birth_date, or correct one of them",
                      "请只给出 age 或 birth_date 之一，或更正其中一个"))


def tables_to_bill(claims_row: dict, items: list[dict]) -> dict:
    """A claims-table row (and its items) → bill JSON; money as yuan text with two decimals.

    Unknown (null) values are left out, so reading the bill back gives the same row.
    """
    bill: dict = {}
    for f in CLAIM_FIELDS:
        if claims_row.get(f.name) is not None:
            node = bill
            for key in f.path[:-1]:
                node = node.setdefault(key, {})
            node[f.path[-1]] = _json_value(f, claims_row[f.name])
    if items:
        bill["items"] = [{f.path[0]: _json_value(f, it[f.name])
                          for f in ITEM_FIELDS if it.get(f.name) is not None} for it in items]
    return {key: bill[key] for key in _TOP_ORDER if key in bill}


def _json_value(f: Field, value: object) -> object:
    if f.kind == "money":
        return fen_to_yuan(int(value))  # type: ignore[call-overload]
    if f.kind == "date":
        return value.isoformat()  # type: ignore[union-attr]
    if f.kind == "list":
        return list(value)  # type: ignore[call-overload]
    return value
