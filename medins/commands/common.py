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


def load_policies(names: list[str], sets: list[str] | None) -> list:
    """Load each policy with the ``--set`` overrides; a commmand settling many claims refuses a policy
    that still lacks a parameter (the same message as ``calc`` gives for a bill that needs it)."""
    from medins.policy.loader import load_policy

    overrides = parse_sets(sets)
    policies = [load_policy(name, overrides) for name in names]
    for compiled in policies:
        missing = sorted(set().union(*(v.params.missing for v in compiled.versions)))
        if missing:
            raise missing_parameters(compiled, missing)
    return policies


def missing_parameters(compiled, missing: list[str]):
    """The usage error (exit 2) for a policy lacking ``missing``: what the source says, and the --set to use."""
    from medins.errors import UsageError

    sources: dict[str, str] = {}
    for version in compiled.versions:
        sources.update(version.params.sources)
    names = ", ".join(missing)
    example = " ".join(f"--set {m}=VALUE" for m in missing)
    detail = "; ".join(f"{m}: {sources.get(m, '')}" for m in missing)
    return UsageError(
        f"Policy {compiled.id} lacks {names}: the source document does not give it ({detail}).",
        f"政策 {compiled.id} 缺少参数 {names}:原始文件没有给出。",
        hint_en=f"Supply it for a what-if run: {example}",
        hint_zh=f"可用 {example} 提供该参数后再计算。",
    )


def console():
    from rich.console import Console

    return Console()
