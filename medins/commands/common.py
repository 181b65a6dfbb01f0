"""Options and helpers shared by the commands: language, policy option, --set parsing, the console."""

from __future__ import annotations

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


