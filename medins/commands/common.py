"""Options and helpers shared by the commands: language, policy option, --set parsing, the console."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

LangOpt = Annotated[
    str | None, typer.Option("--lang", help="Label language: zh or en (default: from the locale).")
]
PolicyOpt = Annotated[str, typer.Option("--policy", "-p", help="Policy file path or built-in name.")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="Override a parameter for a what-if run: NAME=VALUE (repeatable)."),
]

SetFileOpt = Annotated[
    Path | None,
    typer.Option("--set-file", help="Parameters for a what-if run, in the policy's own form (values, tables, "
                 "scales): the policy's `parameters:` section as YAML. Applied before --set.", exists=True,
                 dir_okay=False),
]


def lang_of(value: str | None) -> Literal["zh", "en"]:
    from medins.errors import UsageError
    from medins.report.labels import default_lang

    if value is None:
        return default_lang()
    if value not in ("zh", "en"):
        raise UsageError(f"--lang must be zh or en, not {value!r}", f"--lang 只能是 zh 或 en,而不是 {value!r}")
    return value  # type: ignore[return-value]


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


def console():
    from rich.console import Console

    return Console()




def load_policies(names: list[str], sets: list[str] | None, set_file: Path | None) -> list:
    """Several policies with the same what-if parameters (``compare``, ``curve``): each takes the names it
    declares; a name none of them declares is an error (a typo must not be ignored silently)."""
    from medins.errors import UsageError
    from medins.policy.loader import check_policy_file, find_policy, load_policy

    overrides = parse_sets(sets)
    if len(names) == 1:
        return [load_policy(names[0], overrides, set_file)]
    policies = []
    for name in names:
        declares = check_policy_file(str(find_policy(name))).parameters
        known = {k: v for k, v in overrides.items() if k.split(".")[0].split("[")[0] in declares
                 or k == "benefit_year_start" or k.startswith("versions.")}
        policies.append(load_policy(name, known, set_file, only_known=True))
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
    return policies


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
