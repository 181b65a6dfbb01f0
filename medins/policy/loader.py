"""Find, load, check and compile a policy — by path or by built-in name.

Why: ``--policy suqian-2007.yaml`` must work from any directory on a fresh install (the built-in
policies ship inside the wheel) and also accept a user's own file. Loading is where a policy is
checked like code: YAML safety and positions (``yamlsource``), the schema (pydantic), then every
expression parsed and its names resolved, all problems reported at once with ``file:line:col``.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from medins.errors import PolicyError, PolicyIssue, UsageError, close_names, format_key_path

if TYPE_CHECKING:  # imported where used: a policy found in the cache needs none of the checking machinery
    from medins.policy.compiled import CompiledPolicy
    from medins.policy.schema import Policy
    from medins.policy.yamlsource import Positions

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
    close = close_names(Path(stem).name, builtins, n=3)
    listing = ", ".join(builtins)
    hint_en = f"Did you mean {', '.join(close)}? " if close else ""
    hint_zh = f"是否想用 {', '.join(close)}?" if close else ""
    raise UsageError(
        f"No policy file or built-in policy named {name!r}.",
        f"找不到名为 {name!r} 的政策文件或内置政策。",
        hint_en=f"{hint_en}Built-in policies: {listing}. See `medins policy list`.",
        hint_zh=f"{hint_zh}内置政策:{listing}。见 `medins policy list`。",
    )


def load_policy(name: str, overrides: dict[str, str] | None = None, set_file: str | Path | None = None,
                *, only_known: bool = False, cache: bool = False, plan: bool = False) -> CompiledPolicy:
    """Load, check and compile a policy; raise PolicyError (all issues, of the policy or of ``set_file``) or
    UsageError (bad --set). ``set_file``: parameters in the policy's own form (``--set-file``), applied
    before ``overrides``; with ``only_known`` (one file for several policies) names the policy lacks are skipped.

    ``cache``: reuse (and keep) the compiled policy on disk (:mod:`medins.policy.cache`), keyed by the file's
    bytes, the overrides, the ``set_file`` and medins' code — the command line's choice, so that a second run
    skips YAML, validation, checks and compiling; only a policy without errors is ever kept. With ``plan`` the
    cached form may be the plan (``medins.policy.plan``: the models as plain fields, no pydantic import), for a
    caller that only settles and explains (``medins calc``, ``medins batch``)."""
    path = find_policy(name)
    key = None
    if cache:
        from medins.policy import cache as disk

        key = disk.policy_key(path, _display_name(str(path)), overrides, set_file, only_known)
        found = disk.load(key, plan=plan) if key else None
        if found is not None:
            return found
    model, file = _load_checked(str(path))
    replaced = None
    if set_file is not None:
        from medins.policy.paramfile import load_parameter_file

        replaced = load_parameter_file(set_file, model, only_known=only_known)
    compiled = _compile(model, file, overrides, replaced)
    if key and key == disk.policy_key(path, file, overrides, set_file, only_known):  # inputs unchanged meanwhile
        disk.store(key, compiled)
    return compiled


def _compile(model: Policy, file: str, overrides: dict[str, str] | None, replaced=None) -> CompiledPolicy:
    from medins.policy.compiled import compile_policy

    try:
        return compile_policy(model, file, overrides, replaced)
    except (ValueError, ArithmeticError) as exc:
        if isinstance(exc, ArithmeticError):  # a --set value like 1e999999 that Decimal cannot hold
            exc = ValueError(f"a --set value is too large or not a number: {', '.join(overrides or {})}")
        raise UsageError(
            str(exc), f"--set 参数无效:{exc}", hint_en="Use --set NAME=VALUE with a parameter shown by "
            "`medins policy show`.", hint_zh="用 --set 名称=值,名称见 `medins policy show`。"
        ) from None


def _load_checked(file: str) -> tuple[Policy, str]:
    """The checked model of ``file`` and its display name; remembered by the file's text, so that a file
    edited while a process runs (a notebook, the tests) is read again, never served stale."""
    from medins.policy.yamlsource import read_policy_text

    display = _display_name(file)
    return _checked(read_policy_text(file, display), display)


@cache
def _checked(text: str, display: str) -> tuple[Policy, str]:
    from medins.policy.messages import load_model_with_positions
    from medins.policy.schema import Policy
    from medins.policy.tablecheck import check_open_ended_tables

    model, positions = load_model_with_positions(text, display, Policy)
    issues = check_expressions(model, positions, display)
    issues += check_open_ended_tables(model, positions, display)
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
    """Whole-policy checks (``checks.py``: codes, names, literals, ranges), then scale references."""
    from medins.policy.checks import check_policy

    params = set(model.parameters)
    issues = check_policy(model, positions, filename)

    def issue(loc: tuple, found: str, en: str, zh: str, hint_en: str | None, hint_zh: str | None, code: str,
              allowed: str | None = None) -> None:
        line, col = positions.locate(loc)
        issues.append(PolicyIssue(file=filename, line=line, column=col, key_path=format_key_path(loc),
                                  found=repr(found), allowed=allowed, message_en=en, message_zh=zh,
                                  hint_en=hint_en, hint_zh=hint_zh, code=code))

    for loc, scale_name in _scale_refs(model):
        if scale_name not in params:
            close = close_names(scale_name, sorted(params), n=3)
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


__all__ = ["builtin_policies", "check_policy_file", "find_policy", "load_policy"]
