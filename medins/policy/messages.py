"""Pydantic validation errors → located, bilingual :class:`~medins.errors.PolicyIssue`.

Why: pydantic's errors say ``rules.0.bands.0.rate: Input should be less than or equal to 1`` —
English only, no line, and nothing about what is allowed. Policy authors need the line and
column, the allowed keys or choices, a did-you-mean and the text in Chinese. The wording lives
in ``messages.yaml`` (one dictionary, editable by translators); this module walks the pydantic
model along each error's ``loc`` to compute what is allowed there, drops pydantic's union-branch
parts from ``loc``, and places the issue with :class:`~medins.policy.yamlsource.Positions`.

Validators give bilingual messages by raising :class:`PolicyValueError` (or, without importing
medins, a ``ValueError("en || zh || hint en || hint zh")``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cache
from importlib import resources
from types import UnionType
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import AliasChoices, BaseModel, Tag, ValidationError

from medins.errors import PolicyError, PolicyIssue, did_you_mean, format_key_path, show

if TYPE_CHECKING:  # the YAML reader is imported where YAML is read: the schema imports this module for
    from medins.policy.yamlsource import KeyPath, PathItem, Positions  # PolicyValueError, a cached policy needs no YAML

M = TypeVar("M", bound=BaseModel)
_TAGLIKE = re.compile(r"^[a-z][a-z-]*\[.*\]$")  # pydantic union-branch names: function-after[...], list[int]
_SEQUENCES = (list, tuple, set, frozenset, Sequence)
_HEAVY = frozenset({"literal_error", "enum", "model_type", "dict_type", "missing"})
_UNKNOWN = frozenset({"extra_forbidden", "unexpected_keyword_argument"})  # the latter: pydantic dataclasses
_MISSING = frozenset({"missing", "missing_argument", "union_tag_not_found"})


class PolicyValueError(ValueError):
    """Raise from a pydantic validator to report a policy mistake in both languages.

    ``code`` becomes the issue's code (e.g. ``bands_unordered``); ``loc`` is a path *below* the
    validated value (e.g. ``("bands", 2, "upto")`` from a model validator) so that the issue points
    at the offending entry; ``found``/``allowed`` override what the issue shows. Pydantic keeps
    the exception in ``ctx["error"]``, which is how the fields get here.
    """

    def __init__(
        self, message_en: str, message_zh: str, *, hint_en: str | None = None, hint_zh: str | None = None,
        code: str = "invalid_value", loc: tuple[PathItem, ...] = (), found: object = None,
        allowed: str | None = None,
    ) -> None:  # fmt: skip
        super().__init__(message_en)
        self.message_en, self.message_zh = message_en, message_zh
        self.hint_en, self.hint_zh = hint_en, hint_zh
        self.code, self.loc, self.found, self.allowed = code, tuple(loc), found, allowed


@cache
def dictionary() -> dict[str, Mapping[str, Any]]:
    """The error dictionary from ``messages.yaml``, by pydantic error type (``"*"``: fallback)."""
    from medins.policy.yamlsource import load_yaml

    text = resources.files(__package__).joinpath("messages.yaml").read_text(encoding="utf-8")
    entries, _ = load_yaml(text, "medins/policy/messages.yaml")
    return {kind: entry for entry in entries for kind in entry["types"]}  # type: ignore[union-attr]


def _unwrap(tp: Any) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` and ``Optional``; return the bare type and the metadata seen."""
    meta: list[Any] = []
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            meta.extend(tp.__metadata__)
            tp = tp.__origin__
        elif origin in (Union, UnionType) and len(args := _non_none(tp)) == 1:
            tp = args[0]
        else:
            return (None if tp in (Any, object) else tp), meta


def _non_none(tp: Any) -> list[Any]:
    return [a for a in get_args(tp) if a is not type(None)]


def _members(tp: Any) -> list[Any]:
    """Members of a union pydantic reports per branch (more than one non-None member)."""
    members = _non_none(tp) if get_origin(tp) in (Union, UnionType) else []
    return members if len(members) > 1 else []


def _fields(tp: Any) -> dict[str, Any] | None:
    fields = getattr(tp, "__pydantic_fields__", None) if isinstance(tp, type) else None
    return fields if isinstance(fields, dict) else None


def _keys(tp: Any, name: str, info: Any) -> list[str]:
    """Input keys that reach field ``name``: its alias(es), and its name when that is accepted."""
    alias = info.validation_alias if info.validation_alias is not None else info.alias
    keys = [c for c in alias.choices if isinstance(c, str)] if isinstance(alias, AliasChoices) else []
    keys += [alias] if isinstance(alias, str) else []
    config = getattr(tp, "model_config", None) or getattr(tp, "__pydantic_config__", None) or {}
    if not keys or config.get("validate_by_name") or config.get("populate_by_name"):
        keys.append(name)
    return keys


def allowed_keys(tp: Any) -> list[str]:
    """Keys a mapping validated by model ``tp`` may hold (aliases first), in declaration order."""
    fields = _fields(tp) or {}
    return list(dict.fromkeys(k for name, info in fields.items() for k in _keys(tp, name, info)))


def _pick(members: list[Any], part: PathItem) -> Any:
    """The union member a pydantic branch name (``Cat``, ``decimal``, a tag value) refers to."""
    for member in members:
        base, meta = _unwrap(member)
        if any(isinstance(m, Tag) and m.tag == part for m in meta):
            return member
        if isinstance(base, type) and part in (base.__name__, base.__name__.lower()):
            return member
        for info in (_fields(base) or {}).values():
            if part in (_literals(_unwrap(info.annotation)[0]) or ()):
                return member
    return None


def _plain(value: object) -> object:
    return value.value if isinstance(value, Enum) else value


@dataclass
class _Walk:
    """Where an error's loc leads: the cleaned path and what the model says about that spot."""

    tp: Any
    data: object
    path: list[PathItem] = field(default_factory=list)
    owner: Any = None  # the model holding the last key (for the allowed keys)
    meta: list[Any] = field(default_factory=list)  # constraints (ge/le …) on the final value
    union: tuple[KeyPath, str] | None = None  # the first union crossed and the branch taken
    about_key: bool = False  # the error is about a mapping key itself ("[key]")


def walk(model: Any, loc: Sequence[PathItem], data: object) -> _Walk:
    """Follow ``loc`` through ``model`` (and the input ``data``), skipping union-branch parts."""
    w = _Walk(tp=model, data=data)
    for i, part in enumerate(loc):
        tp, meta = _unwrap(w.tp)
        if members := _members(tp):
            w.union = w.union or (tuple(w.path), str(part))
            w.tp, w.meta = _pick(members, part), w.meta + meta
            continue
        if part == "[key]":
            w.about_key = True
            continue
        w.owner, w.meta = None, []
        if (fields := _fields(tp)) is not None and isinstance(part, str):
            w.owner = tp
            info = next((f for n, f in fields.items() if part in _keys(tp, n, f)), None)
            w.tp, w.meta = (info.annotation, list(info.metadata)) if info else (None, [])
        elif (origin := get_origin(tp) or tp) in _SEQUENCES and isinstance(part, int):
            args = [a for a in get_args(tp) if a is not Ellipsis]
            fixed = origin is tuple and len(args) > 1  # tuple[A, B] rather than tuple[A, ...]
            w.tp = (args[part] if part < len(args) else None) if fixed else args[0] if args else None
        elif origin in (dict, Mapping):
            w.tp = get_args(tp)[1] if len(get_args(tp)) == 2 else None
        else:
            known = part in w.data if isinstance(w.data, dict) else _item(w.data, part) is not None
            if not known and (i < len(loc) - 1 or _TAGLIKE.match(str(part))):
                continue  # an unidentified union branch
            w.tp = None
        w.path.append(part)
        w.data = w.data.get(part) if isinstance(w.data, dict) else _item(w.data, part)
    tp, meta = _unwrap(w.tp)
    w.tp, w.meta = tp, w.meta + meta
    return w


def _item(data: object, part: PathItem) -> object:
    ok = isinstance(data, list) and isinstance(part, int) and -len(data) <= part < len(data)
    return data[part] if ok else None  # type: ignore[index]


def _literals(tp: Any) -> list[str] | None:
    if get_origin(tp) is Literal:
        return [str(_plain(a)) for a in get_args(tp)]
    if isinstance(tp, type) and issubclass(tp, Enum):
        return [str(m.value) for m in tp]
    return None


def _range(meta: list[Any], ctx: Mapping[str, Any]) -> str | None:
    """``0 ≤ x ≤ 1`` from the field's constraints (both sides when known), else from ctx."""
    names = ("gt", "ge", "lt", "le")
    bounds = {k: getattr(m, k) for m in meta for k in names if getattr(m, k, None) is not None}
    bounds = bounds or {k: ctx[k] for k in names if k in ctx}
    low = f"{bounds['gt']} < " if "gt" in bounds else f"{bounds['ge']} ≤ " if "ge" in bounds else ""
    high = f" < {bounds['lt']}" if "lt" in bounds else f" ≤ {bounds['le']}" if "le" in bounds else ""
    return f"{low}x{high}" if low or high else None


class _Fill(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _fill(template: str | None, values: Mapping[str, str]) -> str | None:
    return None if template is None else template.format_map(_Fill(values))


def _found(kind: str, err: Mapping[str, Any], custom: PolicyValueError | None, w: _Walk) -> str | None:
    """What the issue shows as found: the key for an unknown key, nothing for a missing one."""
    if kind in _UNKNOWN:
        return show(w.path[-1] if w.path else "")
    if kind in _MISSING:
        return None
    if kind == "union_tag_invalid":
        return show(err.get("ctx", {}).get("tag"))
    if custom and (custom.found is not None or custom.loc):
        return show(custom.found if custom.found is not None else w.data)
    if kind in ("value_error", "assertion_error") and isinstance(err["input"], dict | list):
        return None  # a whole mapping is no help; the message says what is wrong
    return show(err["input"])


def _choices(kind: str, err: Mapping[str, Any], w: _Walk) -> tuple[list[str] | None, str | None]:
    """The allowed keys or choices at the error (None if not a choice) and a did-you-mean."""
    ctx = err.get("ctx") or {}
    if kind in _UNKNOWN:
        choices, word = allowed_keys(w.owner), str(w.path[-1]) if w.path else ""
    elif kind == "union_tag_invalid":
        choices = [t.strip(" '") for t in str(ctx.get("expected_tags", "")).split(",") if t.strip()]
        word = str(ctx.get("tag"))
    elif kind in ("literal_error", "enum"):
        choices = _literals(w.tp) or re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        word = str(err["input"])
    else:
        return None, None
    return choices or None, did_you_mean(word, choices) if choices else None


def _split(text: str) -> list[str | None]:
    """``"en || zh || hint en || hint zh"`` → ``[en, hint en, zh, hint zh]``; ``[]`` without ``||``."""
    parts: list[str | None] = [p.strip() or None for p in text.split("||")]
    if len(parts) < 2:
        return []
    en, zh, hint_en, hint_zh = [*parts, None, None][:4]
    return [en, hint_en, zh, hint_zh]


def _issue(err: Mapping[str, Any], model: Any, positions: Positions, file: str) -> tuple[PolicyIssue, _Walk]:
    """One pydantic error → its issue (texts from the dictionary or the validator) and its walk."""
    kind, loc, ctx = err["type"], tuple(err["loc"]), dict(err.get("ctx") or {})
    custom = ctx.get("error") if isinstance(ctx.get("error"), PolicyValueError) else None
    w = walk(model, loc + (custom.loc if custom else ()), positions.data)
    discriminator = str(ctx.get("discriminator", "")).strip("'")
    if kind in ("union_tag_invalid", "union_tag_not_found") and discriminator.isidentifier():
        w.path.append(discriminator)  # point at the tag key rather than the whole mapping
        w.data = w.data.get(discriminator) if isinstance(w.data, dict) else None
    path = tuple(w.path)
    fallback = dictionary()["*"]
    entry = dictionary().get(kind, fallback)
    found = _found(kind, err, custom, w)
    choices, suggestion = _choices(kind, err, w)
    bound = next((ctx[k] for k in ("ge", "gt", "le", "lt") if k in ctx), None)
    values = {k: str(_plain(v)) for k, v in ctx.items()}
    values.update(key=str(path[-1]) if path else "", found=found or "", msg=str(err.get("msg", "")))
    values.update(bound=str(bound), suggestion=suggestion or "")
    if kind in ("value_error", "assertion_error"):
        values["error"] = str(ctx.get("error", values["msg"]))
    if choices is not None:
        allowed = ", ".join(choices)
    else:
        allowed = _range(w.meta, ctx) if bound is not None else _fill(entry.get("allowed"), values)
    values["allowed"] = allowed or ""
    texts: list[str | None] = []
    for lang in ("en", "zh"):
        values["parent"] = format_key_path(path[:-1]) or ("文件顶层" if lang == "zh" else "the top level")
        message = _fill(entry[lang], values) or ""
        if isinstance(ctx.get("error"), str):  # pydantic's detail, e.g. "month value is outside …"
            message += f"（{ctx['error']}）" if lang == "zh" else f" ({ctx['error']})"
        hint = entry.get(f"hint_{lang}")
        if suggestion and entry.get(f"suggest_{lang}"):
            hint = entry[f"suggest_{lang}"]
        elif str(bound) in ("1", "1.0", "1.00") and entry.get(f"hint_fraction_{lang}"):
            hint = entry[f"hint_fraction_{lang}"]
        texts += [message, _fill(hint, values)]
    code = kind if entry is fallback else str(entry["code"])  # a custom error type is its own code
    if custom:
        texts = [custom.message_en, custom.hint_en, custom.message_zh, custom.hint_zh]
        code, allowed = custom.code, custom.allowed or allowed
    elif kind in ("value_error", "assertion_error") or entry is fallback:
        texts = _split(values.get("error", values["msg"])) or texts
    message_en, hint_en, message_zh, hint_zh = texts
    line, column = positions.locate(path, "key" if kind in _UNKNOWN or w.about_key else "value")
    issue = PolicyIssue(
        file=file, line=line, column=column, key_path=format_key_path(path), found=found, allowed=allowed,
        message_en=message_en or "", message_zh=message_zh or "", hint_en=hint_en, hint_zh=hint_zh, code=code,
    )  # fmt: skip
    return issue, w


def _prune_unions(items: list[tuple[PolicyIssue, _Walk, str]]) -> list[PolicyIssue]:
    """Keep, for each union, only the branch the author most likely meant.

    Pydantic reports every member of a plain union; the branch with the fewest errors wins, a
    mismatched literal tag or a wrong container type counting heavily. For a union of scalars
    (all errors at the union itself) the kept issue lists what every member would accept.
    """
    groups: dict[KeyPath, dict[str, list[int]]] = {}
    for i, (_, w, _) in enumerate(items):
        if w.union is not None:
            groups.setdefault(w.union[0], {}).setdefault(w.union[1], []).append(i)
    drop: set[int] = set()
    merged: dict[int, PolicyIssue] = {}
    for prefix, branches in groups.items():
        if len(branches) < 2:
            continue
        ranked = sorted(branches.values(), key=lambda ids: sum(1 + 9 * (items[i][2] in _HEAVY) for i in ids))
        drop.update(i for ids in ranked[1:] for i in ids)
        every = [i for ids in branches.values() for i in ids]
        if all(tuple(items[i][1].path) == prefix for i in every):
            best, entry = items[ranked[0][0]][0], dictionary()["_union"]
            allowed = " | ".join(dict.fromkeys(items[i][0].allowed for i in every if items[i][0].allowed))
            values = {"found": best.found or "", "allowed": allowed}
            texts = {k: _fill(entry.get(k), values) for k in ("en", "zh", "hint_en", "hint_zh")}
            merged[ranked[0][0]] = replace(
                best, allowed=allowed or None, code=str(entry["code"]), message_en=texts["en"] or "",
                message_zh=texts["zh"] or "", hint_en=texts["hint_en"], hint_zh=texts["hint_zh"],
            )  # fmt: skip
    return [merged.get(i, issue) for i, (issue, _, _) in enumerate(items) if i not in drop]


def issues_from_validation_error(
    exc: ValidationError, positions: Positions, filename: str, model: type[BaseModel]
) -> list[PolicyIssue]:
    """One located, bilingual issue per pydantic error (union branches pruned), in pydantic's order."""
    items = [(*_issue(err, model, positions, filename), err["type"]) for err in exc.errors(include_url=False)]
    return _prune_unions(items)


def load_model(text: str, filename: str, model: type[M]) -> M:
    """Load YAML ``text`` and validate it as ``model``; raise PolicyError with every issue at once."""
    return load_model_with_positions(text, filename, model)[0]


def load_model_with_positions(text: str, filename: str, model: type[M]) -> tuple[M, Positions]:
    """Like :func:`load_model`, also returning the positions (for checks made after validation)."""
    from medins.policy.yamlsource import load_yaml

    data, positions = load_yaml(text, filename, strict=False)
    issues = list(positions.issues)
    result: M | None = None
    try:
        result = model.model_validate(data)
    except ValidationError as exc:
        issues += issues_from_validation_error(exc, positions, filename, model)
    if issues or result is None:
        issues.sort(key=lambda i: (i.line is None, i.line or 0, i.column or 0))
        raise PolicyError(issues)
    return result, positions
