"""`medins premium`: contributions of a person or a family."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from medins.commands.common import LangOpt, PolicyOpt, SetOpt, console, lang_of, parse_sets


def premium(
    policy: PolicyOpt,
    birth_date: Annotated[str | None, typer.Option("--birth-date", help="YYYY-MM-DD (age on the payment date).")] = None,
    sex: Annotated[str | None, typer.Option("--sex", help="M or F.")] = None,
    category: Annotated[str | None, typer.Option("--category", help="Person category, e.g. low_income.")] = None,
    paid_date: Annotated[str | None, typer.Option("--paid-date", help="Payment date (default: today).")] = None,
    input_: Annotated[list[str] | None, typer.Option("--input", help="NAME=VALUE, e.g. wage=6000 (repeatable).")] = None,
    family: Annotated[Path | None, typer.Option("--family", help="JSON list of persons {birth_date, sex, category, "
                                                "inputs} paying together.", exists=True, dir_okay=False)] = None,
    format: Annotated[str, typer.Option("--format", "-f", help="table or json.")] = "table",
    lang: LangOpt = None,
    set_: SetOpt = None,
) -> None:
    """Contributions: what the person (or family), employer and government pay under a policy."""
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from medins.errors import UsageError
    from medins.money import fen_to_yuan
    from medins.policy.loader import load_policy
    from medins.premium import premium as compute

    language = lang_of(lang)
    compiled = load_policy(policy, parse_sets(set_))

    def day(text: str | None, what: str) -> date | None:
        try:
            return date.fromisoformat(text) if text else None
        except ValueError:
            raise UsageError(f"{what} must be YYYY-MM-DD, not {text!r}", f"{what} 应为 YYYY-MM-DD,而不是 {text!r}") from None

    def numbers(items) -> dict[str, Decimal]:
        out = {}
        for key, raw in (items.items() if isinstance(items, dict) else parse_sets(items).items()):
            try:
                out[key] = Decimal(str(raw))
            except InvalidOperation:
                raise UsageError(f"--input {key} must be a number, not {raw!r}", f"--input {key} 必须是数字") from None
        return out

    if family is not None:
        import json

        people = json.loads(family.read_text(encoding="utf-8"))
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


