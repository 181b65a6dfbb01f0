"""Options and helpers shared by the commands: language, policy option, --set parsing, the console.

Why one place: every command must read the same option the same way (metavar a user reads, values
checked by the option's type so a bad value is Click's usage error, exit 2) and stop the same way
when a policy lacks a parameter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from medins.claims.fields import PERSON_CATEGORIES, VISIT_TYPES, ZONES

#: The bill vocabularies as option types (a value outside them is Click's usage error, exit 2).
Category = Literal[tuple(PERSON_CATEGORIES)]  # type: ignore[valid-type]
VisitType = Literal[VISIT_TYPES]  # type: ignore[valid-type]
Zone = Literal[ZONES]  # type: ignore[valid-type]

LangOpt = Annotated[
    Literal["zh", "en"] | None,
    typer.Option("--lang", metavar="zh|en", help="Label language: zh or en (default: from the locale)."),
]
PolicyOpt = Annotated[str, typer.Option("--policy", "-p", metavar="NAME|PATH",
                                        help="Policy file path or built-in name (see `medins policy list`).")]
PoliciesOpt = Annotated[list[str], typer.Option("--policy", "-p", metavar="NAME|PATH",
                                                help="Policy name or path (repeat: A, B, …).")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", metavar="NAME=VALUE", help="Override a parameter for a what-if run (repeatable)."),
]
EncodingOpt = Annotated[Literal["auto", "utf-8", "utf8", "gbk", "gb18030"],
                        typer.Option("--encoding", metavar="auto|utf-8|gbk|gb18030", help="Encoding of a CSV file.")]
MapOpt = Annotated[Path | None, typer.Option("--map", metavar="PATH", help="YAML mapping other headers/values to "
                                             "medins names.", exists=True, dir_okay=False, readable=True)]

SetFileOpt = Annotated[
    Path | None,
    typer.Option("--set-file", metavar="PATH", help="Parameters for a what-if run, in the policy's own form "
                 "(values, tables, scales): the policy's `parameters:` section as YAML. Applied before --set.",
                 exists=True, dir_okay=False),
]


def lang_of(value: str | None) -> Literal["zh", "en"]:
    """The label language: the option (already checked by its type), else the locale's."""
    from medins.report.labels import default_lang

    return default_lang() if value is None else value  # type: ignore[return-value]


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """``["a=1", "b.c=2%"]`` → ``{"a": "1", "b.c": "2%"}``; a malformed item is a usage error."""
    from medins.errors import UsageError

    out: dict[str, str] = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set expects NAME=VALUE, got {item!r}", f"--set 的格式应为 名称=值,而不是 {item!r}")
        out[key.strip()] = value.strip()
    return out


def yuan(value: str | None) -> str | None:
    """Click callback of a ``YUAN`` option: a non-negative amount with at most two decimals, else exit 2."""
    if value is None:
        return None
    from medins.money import MoneyError, to_fen

    try:
        to_fen(value)
    except MoneyError as exc:
        raise typer.BadParameter(f"{exc} / 应为不小于 0、最多两位小数的金额(元)") from None
    return value


def output_path(value: Path | None) -> Path | None:
    """Click callback of an output file option: its folder must exist and be writable (exit 2 otherwise)."""
    import os

    if value is None:
        return None
    folder = value.parent if str(value.parent) else Path(".")
    if value.is_dir():
        raise typer.BadParameter(f"{value} is a folder, not a file / {value} 是目录而不是文件")
    if not folder.is_dir():
        raise typer.BadParameter(f"the folder {folder} does not exist / 目录 {folder} 不存在")
    if not os.access(folder, os.W_OK) or (value.exists() and not os.access(value, os.W_OK)):
        raise typer.BadParameter(f"{value} is not writable / 无法写入 {value}")
    return value


def missing_parameters(compiled, missing: list[str]):
    """The usage error (exit 2) for a policy lacking ``missing``: what the source says, and how to supply each
    one (a ``--set`` that works when typed as shown, or ``--set-file``) — the same for every command."""
    from medins.errors import UsageError

    sources: dict[str, str] = {}
    for version in compiled.versions:
        sources.update(version.params.sources)
    names = ", ".join(missing)
    detail = "; ".join(f"{m}: {sources.get(m) or sources.get(m.split('.')[0], '')}" for m in missing)
    hint_en, hint_zh = missing_hint(compiled, missing)
    return UsageError(
        f"Policy {compiled.id} lacks {names}: the source document does not give it ({detail}).",
        f"政策 {compiled.id} 缺少参数 {names}:原始文件没有给出。",
        hint_en=hint_en,
        hint_zh=hint_zh,
    )


def console():
    from rich.console import Console

    return Console()


def load_policies(names: list[str], sets: list[str] | None, set_file: Path | None, *,
                  refuse_missing: bool = True) -> list:
    """Several policies with the same what-if parameters (``compare``, ``curve``): each takes the names it
    declares; a name none of them declares is an error (a typo must not be ignored silently). With
    ``refuse_missing`` a policy that still lacks a parameter stops here, before any claim is read (the
    same message ``calc`` gives for a bill that needs it)."""
    from medins.errors import UsageError
    from medins.policy.loader import check_policy_file, find_policy, load_policy

    overrides = parse_sets(sets)
    if len(names) == 1:
        policies = [load_policy(names[0], overrides, set_file, cache=True)]
        _refuse_missing(policies if refuse_missing else [])
        return policies
    policies = []
    for name in names:
        declares = check_policy_file(str(find_policy(name))).parameters
        known = {k: v for k, v in overrides.items() if k.split(".")[0].split("[")[0] in declares
                 or k == "benefit_year_start" or k.startswith("versions.")}
        policies.append(load_policy(name, known, set_file, only_known=True, cache=True))
    declared = {p for c in policies for p in c.model.parameters} | {"benefit_year_start"}
    unused = [k for k in overrides if k.split(".")[0].split("[")[0] not in declared and not k.startswith("versions.")]
    if set_file is not None:
        from medins.policy.yamlsource import load_yaml

        data, _pos = load_yaml(set_file.read_text(encoding="utf-8-sig"), str(set_file), strict=False)
        if isinstance(data, dict) and set(data) == {"parameters"}:
            data = data["parameters"]
        unused += [str(k) for k in (data if isinstance(data, dict) else {}) if k not in declared]
    if unused:
        raise UsageError(f"no policy of {', '.join(names)} has the parameter(s) {', '.join(unused)}",
                         f"{'、'.join(names)} 中没有任何政策有参数 {'、'.join(unused)}",
                         hint_en="see `medins policy show NAME` for each policy's parameters",
                         hint_zh="各政策的参数见 `medins policy show 名称`")
    _refuse_missing(policies if refuse_missing else [])
    return policies


def _refuse_missing(policies: list) -> None:
    for compiled in policies:
        missing = sorted(set().union(*(v.params.missing for v in compiled.versions)))
        if missing:
            raise missing_parameters(compiled, missing)


#: An example value per unit, shown in the hint of a missing parameter (it works when typed literally).
UNIT_EXAMPLES: dict[str, tuple[str, str, str]] = {
    "yuan": ("800", "an amount in yuan", "金额(元)"),
    "rate": ("55%", "a rate", "比例"),
    "number": ("1", "a number", "数字"),
    "date": ("2024-01-01", "a date", "日期"),
    "text": ("TEXT", "a text", "文本"),
    "mmdd": ("01-01", "the month and day the benefit year starts", "待遇年度起始月日"),
}


def missing_hint(compiled, names: list[str]) -> tuple[str, str]:
    """How to supply missing parameters, one ``--set NAME=VALUE`` per name with its kind and an example that
    works as typed; a scale shows both forms (one rate, or bands ``upto:rate``); then ``--set-file``."""
    en, zh = [], []
    params = compiled.model.parameters
    for name in names:
        base = params.get(name.split(".")[0])
        unit = "mmdd" if name == "benefit_year_start" else (base.unit if base is not None else None) or "number"
        if base is not None and (base.scale is not None or unit == "scale"):
            en.append(f'--set {name}=VALUE (a scale: one rate, e.g. 60%, or bands upto:rate, e.g. "5000:50%,:70%")')
            zh.append(f'--set {name}=值(分段表:一个比例,如 60%;或 上限:比例,如 "5000:50%,:70%")')
            continue
        example, what_en, what_zh = UNIT_EXAMPLES.get(unit, UNIT_EXAMPLES["number"])
        en.append(f"--set {name}=VALUE ({what_en}, e.g. {example})")
        zh.append(f"--set {name}=值({what_zh},如 {example})")
    in_file = all(n.split(".")[0] in params for n in names)  # --set-file holds parameters only
    return ("Supply it for a what-if run: " + "; ".join(en) + "." + (
        " Or write them as the policy's parameters section in a file and pass --set-file PARAMS.yaml "
        "(docs/writing-a-policy.md)." if in_file else ""),
            "可用 " + ";".join(zh) + " 提供后再计算。" + (
        "也可按政策文件 parameters 部分的写法写入参数文件,用 --set-file PARAMS.yaml 提供。" if in_file else ""))
