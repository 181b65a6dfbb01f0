"""The words of claims files: header and value aliases in, bilingual reject messages out.

Why: hospitals and insurers export the same facts under many names (医疗费总额, 总费用, …) and codes
(住院, 三级甲等, 区外市内). ``fields.py`` declares each field once with its zh label and header
aliases; this module adds the value vocabularies of Chinese exports and resolves a file's headers to
canonical names, so the parser only ever sees canonical columns and canonical codes. The reject
messages live here too, so what we accept and how we explain a refusal are read side by side.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from medins.claims.fields import CLAIM_FIELDS, ITEM_FIELDS, RECORDED_FIELDS, Field
from medins.claims.vocabulary import CLOSED_FIELDS, aliases_of, close_code
from medins.errors import InputError
from medins.money import MAX_YUAN, fen_to_yuan

#: Every field a claims file may carry: claim level first, then line-item level, then the settled amounts
#: an export records (read only by ``medins audit``; ``batch`` maps and ignores them).
ALL_FIELDS: dict[str, Field] = {f.name: f for f in (*CLAIM_FIELDS, *ITEM_FIELDS, *RECORDED_FIELDS)}

#: Valid hospital levels (0 = village clinic / community station); a bill or table outside is refused.
HOSPITAL_LEVELS = (0, 1, 2, 3)
TRUE_WORDS = ("是", "有", "y", "yes", "t", "true", "1")
FALSE_WORDS = ("否", "无", "n", "no", "f", "false", "0")

#: Hospital level words → "0".."3" (text: the int parser reads it); None = 未定级 (unknown).
_LEVELS: dict[str, str | None] = {"村卫生室": "0", "社区卫生服务站": "0", "未定级": None}
for _digit, _zh in (("1", "一"), ("2", "二"), ("3", "三")):
    _LEVELS.update({f"{_zh}级": _digit, f"{_zh}级医院": _digit, f"{_digit}级": _digit, f"{_zh}甲": _digit,
                    f"{_zh}乙": _digit, f"{_zh}丙": _digit})
    _LEVELS.update({f"{_zh}级{grade}等": _digit for grade in "甲乙丙特"})

#: Built-in value aliases of Chinese exports, by canonical field; keys are matched case-insensitively.
VALUE_ALIASES: dict[str, dict[str, str | None]] = {
    **{f: aliases_of(vocab.name) for f, vocab in CLOSED_FIELDS.items()},
    "hospital_level": _LEVELS,
    "sex": {"男": "M", "女": "F", "male": "M", "female": "F"},
    "item_class": {"甲": "A", "甲类": "A", "乙": "B", "乙类": "B", "丙": "C", "丙类": "C"},
}


def value_table(field: Field, user: Mapping[str, str | None] | None = None) -> dict[str, str | None]:
    """Lower-cased cell text → canonical value for one field: choices, built-ins, then ``--map`` values.

    Why one table: the parser applies it with a single vectorised ``replace_strict`` per column.
    """
    table: dict[str, str | None] = {c.lower(): c for c in field.choices}
    if field.kind == "bool":
        table |= dict.fromkeys(TRUE_WORDS, "true") | dict.fromkeys(FALSE_WORDS, "false")
    table |= {k.lower(): v for k, v in VALUE_ALIASES.get(field.name, {}).items()}
    table |= {str(k).strip().lower(): v for k, v in (user or {}).items()}
    return table


def normalize_header(header: str) -> str:
    """Header text as compared: no whitespace or BOM, case-folded, a unit suffix like ``(元)`` dropped."""
    text = re.sub(r"[\s\u3000\ufeff]+", "", header).casefold()
    return re.sub(r"[(（]元[)）]$", "", text)


def _registry_lookup() -> dict[str, tuple[int, str]]:
    """normalized header → (tier, canonical): 1 canonical name, 2 zh label, 3 alias (lower tier wins)."""
    lookup: dict[str, tuple[int, str]] = {}
    for f in ALL_FIELDS.values():
        for tier, names in ((1, (f.name,)), (2, (f.zh,)), (3, f.aliases)):
            for name in names:
                key = normalize_header(name)
                if key not in lookup or lookup[key][0] > tier:
                    lookup[key] = (tier, f.name)
    return lookup


HEADER_LOOKUP = _registry_lookup()
RECORDED_NAMES = frozenset(f.name for f in RECORDED_FIELDS)


def did_you_mean(word: str, candidates: Iterable[str]) -> str | None:
    """The closest candidate to ``word`` (for hints), or None when nothing is close."""
    from medins.errors import did_you_mean as close

    return close(word, candidates)


def resolve_headers(headers: list[str], columns: Mapping[str, str | None] | None = None,
                    *, recorded: bool = False) -> dict[str, str | None]:
    """Map each header to a canonical name (None = unmapped): ``--map`` first, then the registry.

    A ``--map`` entry mapping a header to null ignores that column. When two headers claim the same
    canonical column, the one found by the stronger rule wins (map > name > zh label > alias) and
    the other is reported unmapped; a tie is an error, because guessing which of two "total" columns
    to settle would silently change the result. The recorded settlement columns (``RECORDED_FIELDS``) are
    mapped only with ``recorded`` (``medins audit``): elsewhere they are unmapped, so two of them never
    stop a batch that does not read them.
    """
    user = {normalize_header(k): v for k, v in (columns or {}).items()}
    chosen: dict[str, tuple[int, str]] = {}  # canonical -> (tier, header)
    for header in headers:
        key = normalize_header(header)
        hit = (None if user[key] in (None, "") else (0, str(user[key]))) if key in user else HEADER_LOOKUP.get(key)
        if hit is None or (not recorded and hit[1] in RECORDED_NAMES):
            continue
        tier, name = hit
        if name in chosen and chosen[name][0] == tier:
            other = chosen[name][1]
            raise InputError(
                message_en=f"columns {other!r} and {header!r} both map to {name!r}",
                message_zh=f"列“{other}”和“{header}”都对应字段 {name}",
                hint_en=f"keep one, or say which one to use with --map (columns: {{{header}: {name}}})",
                hint_zh=f"删除其中一列，或用 --map 指定（columns: {{{header}: {name}}}）",
            )
        if name not in chosen or chosen[name][0] > tier:
            chosen[name] = (tier, header)
    winners = {header: name for name, (_tier, header) in chosen.items()}
    return {header: winners.get(header) for header in headers}


def check_required(header_map: Mapping[str, str | None], shape: str, *, file: str | None = None) -> None:
    """Refuse a file missing a required column, naming it, the headers found and a likely match."""
    present = {name for name in header_map.values() if name}
    headers = list(header_map)
    fields = [f for f in CLAIM_FIELDS if f.required and not (shape == "items" and f.name == "total")]
    fields += [f for f in ITEM_FIELDS if f.required and shape == "items"]
    missing = [f for f in fields if f.name not in present]
    if not missing:
        return
    names = ", ".join(f"{f.name} ({f.zh})" for f in missing)
    unmapped = [h for h, name in header_map.items() if h and name is None]
    hints = []
    for f in missing:
        guess = did_you_mean(f.zh, unmapped) or did_you_mean(f.name, unmapped)
        if guess:
            hints.append((f"is {guess!r} the {f.name} column?", f"“{guess}”是否为{f.zh}列？"))
    found = ", ".join(repr(h) for h in headers) or "none"
    raise InputError(
        message_en=f"required column(s) missing: {names}; headers found: {found}",
        message_zh=f"缺少必需的列：{'、'.join(f.zh for f in missing)}；文件中的表头：{found}",
        hint_en=" ".join(h[0] for h in hints) + " Map other headers with --map MAP.yaml "
        f"(e.g. columns: {{YOUR_HEADER: {missing[0].name}}}); known headers include "
        + ", ".join(sorted(k for k, (_t, n) in HEADER_LOOKUP.items() if n == missing[0].name)),
        hint_zh="".join(h[1] for h in hints)
        + f"可用 --map MAP.yaml 指定表头（例如 columns: {{原表头: {missing[0].name}}}）",
        file=file)


def check_mapping(mapping: Mapping | None, *, file: str | None = None) -> tuple[dict, dict]:
    """Validate a ``--map`` document → (columns, values); names must be canonical field names."""
    if not mapping:
        return {}, {}
    if not isinstance(mapping, Mapping):
        raise _map_error("the map", ("must be a mapping with keys 'columns' and 'values'",
                                     "应为包含 columns 和 values 的映射"), file, None)
    unknown = set(mapping) - {"columns", "values"}
    if unknown:
        key = sorted(map(str, unknown))[0]
        problem = ("unknown key; allowed: columns, values", "未知的键；允许：columns、values")
        raise _map_error(key, problem, file, did_you_mean(key, ["columns", "values"]))
    _mapping(mapping.get("columns"), "columns", file)
    for key, node in (_mapping(mapping.get("values"), "values", file) or {}).items():
        _mapping(node, f"values.{key}", file)
    columns = {str(k): _text(v) for k, v in (mapping.get("columns") or {}).items()}
    values = {str(k): {_text(a): _text(b) for a, b in (v or {}).items()} for k, v in
              (mapping.get("values") or {}).items()}
    targets = [*((f"columns.{k}", v) for k, v in columns.items()), *((f"values.{k}", k) for k in values)]
    for where, name in targets:
        if name is not None and name not in ALL_FIELDS:
            raise _map_error(where, (f"{name!r} is not a claims field", f"“{name}”不是理赔字段"), file,
                             did_you_mean(name, ALL_FIELDS))
    return columns, values


def with_values(mapping: Mapping | None, extra: Mapping[str, Mapping[str, str]]) -> dict | None:
    """``mapping`` (a ``--map`` document) with more value entries by field; the user's own entries win."""
    if not extra:
        return dict(mapping) if mapping else None
    doc = dict(mapping or {})
    values = {str(k): dict(v or {}) for k, v in (doc.get("values") or {}).items()}
    for name, table in extra.items():
        values[name] = {**table, **values.get(name, {})}
    doc["values"] = values
    return doc


def _mapping(node: object, where: str, file: str | None) -> Mapping | None:
    if node is None or isinstance(node, Mapping):
        return node
    raise _map_error(where, (f"must be a mapping (header: name), found {type(node).__name__}",
                             f"应为映射（原名: 新名），实际为 {type(node).__name__}"), file, None)


def load_mapping(path: str | Path) -> dict:
    """Read a ``--map MAP.yaml`` file (the policies' safe YAML reader: located syntax, encoding and nesting
    errors) and validate it."""
    from medins.policy.yamlsource import load_yaml, read_policy_text

    doc, _ = load_yaml(read_policy_text(path), str(path))
    doc = doc or {}
    check_mapping(doc, file=str(path))
    return doc


def _text(value: object) -> str | None:
    """YAML scalars → text (``true`` → "true", 3 → "3"); None stays None (= ignore / unknown)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _map_error(where: str, problem: tuple[str, str], file: str | None, suggestion: str | None) -> InputError:
    hint = f"did you mean {suggestion!r}?" if suggestion else None
    return InputError(
        message_en=f"--map {where}: {problem[0]}", message_zh=f"--map {where}：{problem[1]}",
        hint_en=hint, hint_zh=f"是否应为 {suggestion!r}？" if suggestion else None, file=file, key_path=where,
    )


# --- reject messages ------------------------------------------------------------------------------

_CELL_MESSAGES: dict[str, tuple[str, str]] = {
    "missing_field": ("{col} is empty, but it is required", "{col}为空，但这是必填项"),
    "bad_date": ("{col} has {val}, which is not a date (use YYYY-MM-DD, YYYY/MM/DD or YYYYMMDD)",
                 "{col}的值{val}不是有效日期（应为 YYYY-MM-DD、YYYY/MM/DD 或 YYYYMMDD）"),
    "not_a_number": ("{col} has {val}, which is not a number", "{col}的值{val}不是数字"),
    "sub_fen": ("{col} has {val}, which has more than two decimals (less than one fen)",
                "{col}的值{val}超过两位小数（不足一分）"),
    "too_large": ("{col} has {val}, which is more than " + f"{MAX_YUAN} yuan",
                  "{col}的值{val}超过上限 " + f"{MAX_YUAN} 元"),
    "negative_amount": ("{col} has {val}, which is negative", "{col}的值{val}为负数"),
    "negative_number": ("{col} has {val}, which is negative", "{col}的值{val}为负数"),
    "below_minimum": ("{col} has {val}, which is below {minimum} (an ordinal starts at 1)",
                      "{col}的值{val}小于 {minimum}（序号从 1 开始）"),
    "unknown_code": ("{col} has {val}, which is not a known value; allowed: {allowed}",
                     "{col}的值{val}无法识别；允许：{allowed}"),
    "not_a_bool": ("{col} has {val}, which is not yes or no (use 是/否, Y/N, 1/0 or true/false)",
                   "{col}的值{val}不是“是/否”（应为 是/否、Y/N、1/0 或 true/false）"),
}
_ROW_MESSAGES: dict[str, tuple[str, str]] = {
    "field_count": ("the row has {found} fields but the header has {expected}",
                    "该行有 {found} 个字段，而表头有 {expected} 个"),
    "discharge_before_admit": ("the discharge date {discharge_date} is before the admission date "
                               "{admit_date}",
                               "出院日期 {discharge_date} 早于入院日期 {admit_date}"),
    "self_pay_above_total": ("the self-paid amount {self_pay} is more than the total {total}",
                             "全自费金额 {self_pay} 大于医疗费总额 {total}"),
    "class_b_above_in_scope": ("the class B amount {class_b} is more than the in-scope amount "
                               "(total {total} minus self-paid {self_pay})",
                               "乙类金额 {class_b} 大于政策范围内金额"
                               "（医疗费总额 {total} 减全自费金额 {self_pay}）"),
    "paid_above_total": ("the payments given as already paid (paid_* columns) add up to more than the total {total}",
                         "已支付金额(paid_* 列)合计大于医疗费总额 {total}"),
    "preselfpay_above_in_scope": ("the self-pay-first amount {preselfpay} is more than the in-scope amount "
                                  "(total {total} minus self-paid {self_pay})",
                                  "先行自付金额 {preselfpay} 大于政策范围内金额"
                                  "（医疗费总额 {total} 减全自费金额 {self_pay}）"),
    "conflicting_claim_fields": ("the lines of claim {claim_id} disagree on {conflicts}",
                                 "结算单 {claim_id} 的各明细行在 {conflicts} 上不一致"),
    "encoding": ("the row holds bytes that are not text in the file's encoding (the first at byte {offset} "
                 "of the file), so it is not read rather than misread",
                 "该行含有不符合文件编码的字节（第一个位于文件第 {offset} 字节），为免误读，该行未读取"),
    "claim_has_bad_line": ("another line of claim {claim_id} is rejected, so the whole claim is held back",
                           "结算单 {claim_id} 的其他明细行有错误，整张结算单暂不结算"),
}


def reject_message(code: str, rec: dict, headers: Mapping[str, str], expected: int) -> tuple[str, str]:
    """(en, zh) sentence for one reject code, quoting the cell as read (``rec["text:<field>"]``)
    or the typed values of a cross-field check; ``headers`` gives each field's original header."""
    kind, _, name = code.partition(":")
    if kind in _CELL_MESSAGES:
        f = ALL_FIELDS[name]
        header = headers.get(name, name)
        col_en = f'column "{header}"' + (f" ({name})" if header != name else "")
        value = rec.get(f"text:{name}")
        allowed = ", ".join(map(str, HOSPITAL_LEVELS if name == "hospital_level" else f.choices))
        en, zh = _CELL_MESSAGES[kind]
        en, zh = (en.format(col=col_en, val=repr(value), allowed=allowed, minimum=f.minimum),
                  zh.format(col=f"列“{header}”" + (f"（{f.zh}）" if header == name else ""), val=f"“{value}”",
                            allowed=allowed, minimum=f.minimum))
        guess = close_code(str(value), f.choices) if kind == "unknown_code" and value is not None else None
        if guess:  # the likely code first: a list of sixty categories hides it
            en, zh = f"{en} (did you mean {guess!r}?)", f"{zh}（是否应为“{guess}”？）"
        return en, zh
    values = {k: _show(v) for k, v in rec.items() if k in ("total", "self_pay", "class_b", "preselfpay",
                                                           "admit_date",
                                                           "discharge_date", "claim_id", "_conflicts")}
    conflicts = ", ".join(headers.get(n, n) for n in values.pop("_conflicts", "").split(", ") if n)
    values = {"found": rec.get("_nfields"), "expected": expected, "conflicts": conflicts, **values}
    if code == "encoding":
        from medins.claims.readers import first_bad_offset

        values["offset"] = first_bad_offset(rec.get("raw"))
    en, zh = _ROW_MESSAGES.get(code, (code, code))
    return en.format(**values), zh.format(**values)


def _show(value: object) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return fen_to_yuan(value)
    return "" if value is None else str(value)
