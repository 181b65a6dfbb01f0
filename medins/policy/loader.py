"""Find, load, check and compile a policy — by path or by built-in name.

Why: ``--policy suqian-2007.yaml`` must work from any directory on a fresh install (the built-in
policies ship inside the wheel) and also accept a user's own file. Loading is where a policy is
checked like code: YAML safety and positions (``yamlsource``), the schema (pydantic), then every
expression parsed and its names resolved, all problems reported at once with ``file:line:col``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from functools import cache
from pathlib import Path

from medins.errors import PolicyError, PolicyIssue, UsageError, format_key_path
from medins.policy.compiled import CLAIM_NAMES, DERIVED_NAMES, ITEM_NAMES, CompiledPolicy, compile_policy
from medins.policy.expr import ExprError, Expression
from medins.policy.messages import load_model_with_positions
from medins.policy.schema import ItemSelector, Policy, Premiums, iter_expressions
from medins.policy.yamlsource import Positions, read_policy_text

_HERE = Path(__file__).resolve().parent.parent


def policy_dirs() -> list[Path]:
    """Built-in policy folders: inside the wheel, or the repository's ``policies/`` when run from a clone."""
    return [d for d in (_HERE / "_policies", _HERE.parent / "policies") if d.is_dir()]


def builtin_policies() -> dict[str, Path]:
    """Built-in policy id → file."""
    found: dict[str, Path] = {}
    for folder in policy_dirs():
        for path in sorted(folder.glob("*.yaml")):
            found.setdefault(path.stem, path)
    return found


def find_policy(name: str) -> Path:
    """A path if it exists, else a built-in policy by id (with or without ``.yaml``)."""
    path = Path(name)
    if path.is_file():
        return path
    builtins = builtin_policies()
    stem = name[:-5] if name.endswith(".yaml") else name[:-4] if name.endswith(".yml") else name
    if Path(stem).name in builtins and ("/" not in stem or not path.parent.exists()):
        return builtins[Path(stem).name]
    close = difflib.get_close_matches(Path(stem).name, list(builtins), n=3)
    listing = ", ".join(builtins)
    hint_en = f"Did you mean {', '.join(close)}? " if close else ""
    hint_zh = f"是否想用 {', '.join(close)}?" if close else ""
    raise UsageError(
        f"No policy file or built-in policy named {name!r}.",
        f"找不到名为 {name!r} 的政策文件或内置政策。",
        hint_en=f"{hint_en}Built-in policies: {listing}. See `medins policy list`.",
        hint_zh=f"{hint_zh}内置政策:{listing}。见 `medins policy list`。",
    )


def load_policy(name: str, overrides: dict[str, str] | None = None) -> CompiledPolicy:
    """Load, check and compile a policy; raise PolicyError (all issues) or UsageError (bad --set)."""
    path = find_policy(name)
    return _compile(*_load_checked(str(path)), overrides)


def _compile(model: Policy, file: str, overrides: dict[str, str] | None) -> CompiledPolicy:
    try:
        return compile_policy(model, file, overrides)
    except (ValueError, ArithmeticError) as exc:
        if isinstance(exc, ArithmeticError):  # a --set value like 1e999999 that Decimal cannot hold
            exc = ValueError(f"a --set value is too large or not a number: {', '.join(overrides or {})}")
        raise UsageError(
            str(exc), f"--set 参数无效:{exc}", hint_en="Use --set NAME=VALUE with a parameter shown by "
            "`medins policy show`.", hint_zh="用 --set 名称=值,名称见 `medins policy show`。"
        ) from None


@cache
def _load_checked(file: str) -> tuple[Policy, str]:
    display = _display_name(file)
    text = read_policy_text(file, display)
    model, positions = load_model_with_positions(text, display, Policy)
    issues = check_expressions(model, positions, display)
    if issues:
        raise PolicyError(issues)
    return model, display


def check_policy_file(file: str) -> Policy:
    """``medins policy check``: every problem of one file, or the model."""
    return _load_checked(str(Path(file)))[0]


def _display_name(file: str) -> str:
    path = Path(file)
    for folder in policy_dirs():
        if path.resolve().parent == folder.resolve():
            return path.name
    return file


def check_expressions(model: Policy, positions: Positions, filename: str) -> list[PolicyIssue]:
    """Parse every expression; unknown names and unknown scale parameters become located issues."""
    params = set(model.parameters)
    base = CLAIM_NAMES | DERIVED_NAMES | params
    issues: list[PolicyIssue] = []

    def issue(loc: tuple, found: str, en: str, zh: str, hint_en: str | None, hint_zh: str | None, code: str,
              allowed: str | None = None) -> None:
        line, col = positions.locate(loc)
        issues.append(PolicyIssue(file=filename, line=line, column=col, key_path=format_key_path(loc),
                                  found=repr(found), allowed=allowed, message_en=en, message_zh=zh,
                                  hint_en=hint_en, hint_zh=hint_zh, code=code))

    for loc, expr_text, holder in iter_expressions(model):
        known = set(base)
        if isinstance(holder, ItemSelector):
            known |= ITEM_NAMES
        if loc and loc[0] == "premiums" and model.premiums is not None:
            known |= set(model.premiums.inputs)
        try:
            expr = Expression.parse(expr_text)
        except ExprError as exc:
            issue(loc, expr_text, f"expression does not parse: {exc}", f"表达式无法解析:{exc}",
                  "Expressions use Python-like syntax: a + b, x if c else y, min(a, b), table[key], 55%.",
                  "表达式语法类似 Python:a + b、x if c else y、min(a, b)、table[key]、55%。", "bad_expression")
            continue
        for name in sorted(expr.names - known):
            if name.startswith("cat_"):
                continue
            close = difflib.get_close_matches(name, sorted(known), n=3)
            hint = f"Did you mean {', '.join(close)}?" if close else "Declare it under parameters, or use a claim field."
            issue(loc, expr_text, f"unknown name {name!r} in expression", f"表达式中有未知名称 {name!r}",
                  hint, f"是否想用 {', '.join(close)}?" if close else "请在 parameters 中声明,或使用理赔字段。",
                  "unknown_name")
    for loc, scale_name in _scale_refs(model):
        if scale_name not in params:
            close = difflib.get_close_matches(scale_name, sorted(params), n=3)
            issue(loc, scale_name, f"no parameter named {scale_name!r}", f"没有名为 {scale_name!r} 的参数",
                  f"Did you mean {', '.join(close)}?" if close else "Declare a scale parameter.",
                  f"是否想用 {', '.join(close)}?" if close else "请声明一个 scale 参数。", "unknown_parameter")
        else:
            param = model.parameters[scale_name]
            if param.scale is None and param.unit not in ("rate", "scale"):
                issue(loc, scale_name, f"parameter {scale_name!r} is not a scale or a rate",
                      f"参数 {scale_name!r} 不是分段表或比例", "Give it a scale: [{upto: …, rate: …}].",
                      "请为它提供 scale:[{upto: …, rate: …}]。", "not_a_scale")
    return issues


def _scale_refs(model: Policy) -> Iterator[tuple[tuple, str]]:
    for i, rule in enumerate(model.rules):
        if rule.bands and rule.bands.scale:
            yield ("rules", i, "bands", "scale"), rule.bands.scale
        for j, layer in enumerate(rule.layers):
            if layer.bands.scale:
                yield ("rules", i, "layers", j, "bands", "scale"), layer.bands.scale


__all__ = ["Premiums", "builtin_policies", "check_policy_file", "find_policy", "load_policy"]
