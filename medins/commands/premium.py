"""`medins premium`: contributions of a person or a family."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer

from medins.commands.common import Category, LangOpt, PolicyOpt, SetOpt, console, lang_of, parse_sets


def premium(
    policy: PolicyOpt,
    birth_date: Annotated[str | None, typer.Option("--birth-date", metavar="YYYY-MM-DD",
                                                   help="Birth date (age on the payment date).")] = None,
    sex: Annotated[Literal["M", "F"] | None, typer.Option("--sex", metavar="M|F", help="Sex: M or F.")] = None,
    category: Annotated[Category | None, typer.Option("--category", metavar="NAME", show_choices=False,
                                                      help="Person category, e.g. low_income (docs/fields.md).")] = None,
    paid_date: Annotated[str | None, typer.Option("--paid-date", metavar="YYYY-MM-DD",
                                                  help="Payment date (default: today).")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", metavar="NAME=VALUE",
                                                     help="An input, e.g. wage=6000 (repeatable).")] = None,
    family: Annotated[Path | None, typer.Option("--family", metavar="PATH", help="JSON list of persons {birth_date, "
                                                "sex, category, inputs} paying together.", exists=True,
                                                dir_okay=False, readable=True)] = None,
    format: Annotated[Literal["table", "json"], typer.Option("--format", "-f", metavar="table|json",
                                                             help="Output format.")] = "table",
    lang: LangOpt = None,
    set_: SetOpt = None,
) -> None:
    """Contributions: what the person (or family), employer and government pay under a policy."""
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from medins.errors import UsageError
    from medins.money import MAX_YUAN, fen_to_yuan
    from medins.policy.loader import load_policy
    from medins.premium import premium as compute

    language = lang_of(lang)
    compiled = load_policy(policy, parse_sets(set_), cache=True)

    def day(text: str | None, what: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise UsageError(f"{what} must be YYYY-MM-DD, not {text!r}", f"{what} 应为 YYYY-MM-DD,而不是 {text!r}") from None

    def numbers(items) -> dict[str, Decimal]:
        out = {}
        for key, raw in (items.items() if isinstance(items, dict) else parse_sets(items).items()):
            try:
                value = Decimal(str(raw))
            except InvalidOperation:
                raise UsageError(f"--input {key} must be a number, not {raw!r}", f"--input {key} 必须是数字") from None
            if not value.is_finite() or abs(value) > MAX_YUAN:
                raise UsageError(f"--input {key} must be a number up to {MAX_YUAN:,}, not {raw!r}",
                                 f"--input {key} 必须是不超过 {MAX_YUAN} 的数字")
            out[key] = value
        return out

    if family is not None:
        people = _family(family)
    else:
        people = [{"birth_date": birth_date, "sex": sex, "category": category, "inputs": {}}]
    shared_inputs = numbers(input_)
    paid = day(paid_date, "--paid-date")
    results = []
    for person in people:
        inputs = {**shared_inputs, **numbers(person.get("inputs") or {})}
        results.append(compute(compiled, person_category=person.get("category"), sex=person.get("sex"),
                               birth_date=day(person.get("birth_date"), "birth_date"), paid_date=paid, inputs=inputs))
    if format == "json":
        import json

        rows = [{"group": r.group, "period": r.period, "shares": {k: fen_to_yuan(v) for k, v in r.shares.items()},
                 "total": fen_to_yuan(r.total), "source": r.source} for r in results]
        sys.stdout.write(json.dumps(rows if family else rows[0], ensure_ascii=False, indent=2) + "\n")
        return
    from medins.report.premium import premium_table

    console().print(premium_table(compiled, results, language))




def _family(path: Path) -> list[dict]:
    """The persons of ``--family``: a JSON list of objects whose ``sex`` is M or F; anything else exits 2."""
    from medins.claims.bill import read_json
    from medins.claims.fields import PERSON_CATEGORIES
    from medins.errors import InputError

    people = read_json(path)
    if not isinstance(people, list) or not all(isinstance(p, dict) for p in people):
        raise InputError("--family must be a JSON list of persons {birth_date, sex, category, inputs}",
                         "--family 应为人员对象的 JSON 列表 {birth_date, sex, category, inputs}", file=str(path))
    for i, person in enumerate(people):
        if person.get("sex") not in (None, "M", "F"):
            raise InputError(f"sex must be M or F, not {person['sex']!r}", f"sex 只能是 M 或 F,而不是 {person['sex']!r}",
                             file=str(path), key_path=f"[{i}].sex")
        if person.get("category") not in (None, *PERSON_CATEGORIES):
            names = ", ".join(PERSON_CATEGORIES)
            raise InputError(f"unknown category {person['category']!r}; expected one of {names}",
                             f"未知人员类别 {person['category']!r};应为 {names} 之一", file=str(path),
                             key_path=f"[{i}].category")
    return people
