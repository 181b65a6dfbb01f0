"""The ``medins`` command line: parse, call the API, render. Nothing is computed here.

Why thin: every number comes from the engine through ``medins.api``; the CLI only turns arguments
into calls and results into tables. Heavy libraries (polars, pydantic) are imported inside the
commands so ``medins --help`` stays fast. Exit codes are one contract for every command: 0 ok;
1 rows rejected (or discrepancies); 2 a user error (a clear bilingual message, never a traceback);
3 a bug (the traceback, and a request to report it) — decided at the one boundary, :func:`main`.
"""

from __future__ import annotations

import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import typer
from typer.core import TyperGroup

from medins.commands.analysis import compare, curve, policy_diff
from medins.commands.audit import audit
from medins.commands.batch import batch
from medins.commands.coercion import install as install_plain_coercion
from medins.commands.common import LangOpt, PolicyOpt, SetFileOpt, SetOpt, console, lang_of, missing_parameters, parse_sets
from medins.commands.premium import premium
from medins.quietgc import SMALL_COMMANDS
from medins.quietgc import quiet_gc as _quiet_gc

#: ``-h`` as well as ``--help`` on every command and group.
CONTEXT = {"help_option_names": ["-h", "--help"]}


class CloseNamesGroup(TyperGroup):
    """A command group whose "did you mean" offers close names only (``medins.errors.close_names``).

    Why: Click offers any option or command within difflib's 0.6 — ``--explian`` got "Possible options:
    --explain, --lang" — and a far-off suggestion misleads more than none. The rule is medins' one rule for
    every suggestion (bill keys, policy keys, codes, ``--set`` parameters).

    It also gives its own parameters and its commands' the plain coercion of ``medins.commands.coercion``
    (typer's values and errors without building a pydantic adapter per parameter), just before they parse.
    """

    def parse_args(self, ctx, args):  # type: ignore[no-untyped-def]
        install_plain_coercion(self.get_params(ctx))  # with the help option Click adds
        with _close_option_hints():
            return super().parse_args(ctx, args)

    def invoke(self, ctx):  # type: ignore[no-untyped-def]
        with _close_option_hints():  # a subcommand parses its options inside its group's invoke
            return super().invoke(ctx)

    def resolve_command(self, ctx, args):  # type: ignore[no-untyped-def]
        try:
            name, command, rest = super().resolve_command(ctx, args)
        except Exception as exc:  # Click's UsageError "No such command" (suggest_commands is off: ours instead)
            from medins.errors import close_names

            close = close_names(args[0], self.commands, n=3) if args and hasattr(exc, "message") else []
            if close:
                exc.message = f"{exc.message.rstrip('.')}. Did you mean {', '.join(repr(c) for c in close)}?"
            raise
        if command is not None and not isinstance(command, CloseNamesGroup):  # a group installs its own
            # a context as make_context will make it, parsing nothing: the help option it adds is cached on
            # the command, so its parameters are all there
            child = command.context_class(command, parent=ctx, info_name=name, **command.context_settings)
            install_plain_coercion(command.get_params(child))
        return name, command, rest


@contextmanager
def _close_option_hints() -> Iterator[None]:
    """Keep only the close names among the options Click suggests for an unknown option (``NoSuchOption``)."""
    try:
        yield
    except Exception as exc:
        if hasattr(exc, "option_name") and getattr(exc, "possibilities", None):
            from medins.errors import close_names

            exc.possibilities = close_names(exc.option_name, exc.possibilities, n=3) or None
        raise
#: Exit code of a bug in medins (2 is every user error, 1 rejected rows).
BUG_EXIT = 3

app = typer.Typer(
    name="medins",
    help="Chinese medical-insurance (医保) policies as reviewable YAML: settle bills and claims exactly.",
    invoke_without_command=True,
    pretty_exceptions_show_locals=False,
    pretty_exceptions_enable=False,
    add_completion=True,
    context_settings=CONTEXT,
    rich_markup_mode=None,  # plain click help: rendering help through rich would triple the start-up time
    cls=CloseNamesGroup, suggest_commands=False,
)
policy_app = typer.Typer(help="List, show, check, diff and export the schema of policies; list a policy's sources.",
                         invoke_without_command=True, rich_markup_mode=None, context_settings=CONTEXT,
                         cls=CloseNamesGroup, suggest_commands=False)
app.add_typer(policy_app, name="policy")


def _version(value: bool) -> None:
    if value:
        from medins import __version__

        sys.stdout.write(f"medins {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _root(ctx: typer.Context, version: Annotated[bool, typer.Option(
        "--version", "-V", callback=_version, is_eager=True, help="Print the version and exit.")] = False) -> None:
    """Chinese medical-insurance (医保) policies as reviewable YAML: settle bills and claims exactly."""
    _help_without_command(ctx)


@policy_app.callback()
def _policy_root(ctx: typer.Context) -> None:
    """List, show, check, diff and export the schema of policies; list a policy's sources."""
    _help_without_command(ctx)


def _help_without_command(ctx: typer.Context) -> None:
    """A group called without a command prints its help and exits 0 (it is a question, not a mistake)."""
    if ctx.invoked_subcommand is None and not ctx.resilient_parsing:
        sys.stdout.write(ctx.get_help() + "\n")
        raise typer.Exit(0)


@app.command()
def calc(
    bill: Annotated[Path, typer.Argument(metavar="BILL", help="Bill JSON (see docs/bill.md).", exists=True,
                                         dir_okay=False, readable=True)],
    policy: PolicyOpt,
    format: Annotated[Literal["table", "json"], typer.Option("--format", "-f", metavar="table|json",
                                                             help="Output format.")] = "table",
    explain: Annotated[bool, typer.Option("--explain", help="Show every step with its policy clause.")] = False,
    lang: LangOpt = None,
    set_: SetOpt = None,
    set_file: SetFileOpt = None,
) -> None:
    """Settle one bill: what the fund pays, what the patient pays, and why."""
    from medins.api import load_policy, settle_bill
    from medins.claims.bill import load_bill

    language = lang_of(lang)
    compiled = load_policy(policy, parse_sets(set_), set_file, cache=True, plan=True)  # settles and explains only
    data = load_bill(bill)
    result = settle_bill(compiled, data, source=bill.stem, trace=explain or format == "json")
    _stop_on_missing(result, compiled)
    _stop_on_inconsistent_history(result, data, str(bill))
    if format == "json":
        import json

        sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=2) + "\n")
    else:
        from medins.report.tables import explain_table, settlement_table

        screen = console()
        screen.print(settlement_table(result, language))
        if explain:
            screen.print(explain_table(result["steps"], language))
    if any(r.startswith("policy_error:") for r in result["reasons"]):
        raise typer.Exit(1)  # the policy could not settle this bill: not an answer to rely on


app.command()(batch)
app.command()(premium)
app.command()(compare)
app.command()(curve)
app.command()(audit)
policy_app.command("diff")(policy_diff)


def _stop_on_missing(result: dict, compiled) -> None:
    """A claim that needs a number the policy lacks stops with exit 2 and how to supply it."""
    missing = sorted({r.split(":", 1)[1] for r in result["reasons"] if r.startswith("missing_parameter:")})
    if missing:
        raise missing_parameters(compiled, missing)


#: What each ``inconsistent_history:<field>`` means, and what to give instead (en, zh).
_HISTORY_WORDS = {
    "deductible_paid": (
        "history.deductible_paid {deductible_paid} does not fit history.inscope {inscope}: a per-year deductible "
        "is paid first, so after in-scope spending the deductible paid so far is the smaller of that spending "
        "and the standard (never more than the spending)",
        "history.deductible_paid {deductible_paid} 与 history.inscope {inscope} 不符:按年度计算的起付线先由个人"
        "负担,年内已付起付线应为年内政策范围内累计与起付标准中较小者(不会超过累计金额)",
        "give history.deductible_paid as it was this year (or leave history out for the year's first claim)",
        "请按实际填写 history.deductible_paid(本年度第一笔结算可不填 history)"),
    "fund_paid": (
        "history.fund_paid {fund_paid} is above the policy's yearly cap for this kind of care",
        "history.fund_paid {fund_paid} 超过政策对此类费用的年度最高支付限额",
        "check history.fund_paid: it counts what the fund paid this benefit year for this kind of care",
        "请核对 history.fund_paid:应为本结算年度基金对此类费用已支付的金额"),
}


def _stop_on_inconsistent_history(result: dict, bill: dict, source: str) -> None:
    """A bill whose history contradicts itself stops with exit 2, never a second deductible in silence."""
    fields = [r.split(":", 1)[1] for r in result["reasons"] if r.startswith("inconsistent_history:")]
    if not fields:
        return
    from medins.errors import InputError

    history = bill.get("history") or {}
    given = {k: history.get(k, "0 (not given / 未填)") for k in ("deductible_paid", "inscope", "fund_paid")}
    en, zh, hint_en, hint_zh = _HISTORY_WORDS[fields[0]]
    raise InputError(en.format(**given), zh.format(**given), hint_en=hint_en, hint_zh=hint_zh, file=source,
                     key_path=f"history.{fields[0]}")


@policy_app.command("list")
def policy_list(lang: LangOpt = None) -> None:
    """List the built-in policies with region, scheme and years."""
    from medins.report.policies import policy_list_table

    console().print(policy_list_table(lang_of(lang)))


@policy_app.command("show")
def policy_show(name: Annotated[str, typer.Argument(metavar="NAME|PATH", help="Policy file or built-in name.")],
                lang: LangOpt = None,
                set_: SetOpt = None) -> None:
    """Show a policy as readable tables: parameters with citations, rules, admissibility."""
    from medins.policy.loader import load_policy
    from medins.report.policies import policy_view

    console().print(policy_view(load_policy(name, parse_sets(set_), cache=True), lang_of(lang)))


#: Files ``policy check`` refuses by their suffix: data a user may pass by mistake, named as what they are.
NOT_POLICIES = {".csv": ("claims file", "理赔数据文件"), ".xlsx": ("claims file", "理赔数据文件"),
                ".parquet": ("claims file", "理赔数据文件"), ".json": ("bill or JSON file", "账单或 JSON 文件")}


@policy_app.command("check")
def policy_check(
    files: Annotated[list[Path], typer.Argument(metavar="PATH", help="Policy files to validate.",
                                                exists=True, dir_okay=False, readable=True)],
    lang: LangOpt = None,
    monotone: Annotated[bool, typer.Option("--monotone", help=(
        "Also settle a grid of totals for every visit type, zone, level and category the policy reads, and "
        "report every place where a bigger bill gets less from the fund or costs the patient less (exit 1)."))] = False,
    to: Annotated[int, typer.Option("--to", metavar="YUAN", min=1, help="--monotone: the grid's largest total, yuan.")
                  ] = 200_000,
    points: Annotated[int, typer.Option("--points", metavar="N", min=2, max=100_000,
                                        help="--monotone: totals on the grid.")] = 2_001,
    set_: SetOpt = None,
) -> None:
    """Validate policy files like a compiler: every problem, located, at once."""
    from rich.text import Text

    from medins.errors import PolicyError
    from medins.policy.loader import check_policy_file
    from medins.report.errors import render_issues

    language = lang_of(lang)
    screen = console()
    failed: list = []
    for file in files:
        if file.suffix.lower() in NOT_POLICIES:
            from medins.errors import UsageError

            raise UsageError(f"{file} is a {NOT_POLICIES[file.suffix.lower()][0]}, not a policy (policies are YAML)",
                             f"{file} 是{NOT_POLICIES[file.suffix.lower()][1]},不是政策文件(政策文件为 YAML)",
                             hint_en="medins policy check POLICY.yaml", hint_zh="medins policy check 政策.yaml")
        try:
            check_policy_file(str(file))
            screen.print(Text(f"✓ {file}", style="green"))
            from medins.policy.warnings import policy_warnings
            from medins.report.errors import render_warnings

            warnings = policy_warnings(str(file))
            if warnings:
                screen.print(render_warnings(warnings, language))
        except PolicyError as exc:
            failed.extend(exc.issues)
    if failed:
        screen.print(render_issues(failed, language))
        raise typer.Exit(2)
    if set_ and not monotone:  # the what-if values are checked too: a bad --set is a usage error, not ignored
        from medins.policy.loader import load_policy

        for file in files:
            load_policy(str(file), parse_sets(set_))
    if monotone and not _check_monotone(files, language, to, points, parse_sets(set_)):
        raise typer.Exit(1)


def _check_monotone(files: list[Path], language, to: int, points: int, sets: dict) -> bool:
    """Settle each policy's grid; False when some bigger bill gets less from the fund (or costs the patient less)."""
    from medins.errors import UsageError
    from medins.monotone import find_falls
    from medins.policy.loader import load_policy
    from medins.report.monotone import monotone_renderable

    clean = True
    for file in files:
        result = find_falls(load_policy(str(file), sets, cache=True), to_yuan=to, points=points)
        if not result["settled"]:
            reasons = ", ".join(result["reasons"]) or "-"
            raise UsageError(f"{file}: no bill on the grid is settled ({reasons}): nothing to check",
                             f"{file}:网格上没有可结算的账单({reasons}),无法检查单调性",
                             hint_en="supply the missing parameters with --set NAME=VALUE",
                             hint_zh="请用 --set 名称=值 提供缺失的参数")
        console().print(monotone_renderable(str(file), result, language))
        clean = clean and not result["falls"].height
    return clean


@policy_app.command("sources")
def policy_sources(policy: Annotated[str, typer.Argument(metavar="NAME|PATH", help="Policy file or built-in name.")],
                   lang: LangOpt = None) -> None:
    """List the bundled source document a policy encodes and every clause it cites, quoted."""
    from medins.policy.loader import load_policy
    from medins.report.policies import sources_view

    console().print(sources_view(load_policy(policy, cache=True).model, lang_of(lang)))


@policy_app.command("schema")
def policy_schema() -> None:
    """Print the policy JSON Schema (for editor completion and validation)."""
    import json

    from medins.policy.jsonschema import policy_json_schema

    sys.stdout.write(json.dumps(policy_json_schema(), ensure_ascii=False, indent=2) + "\n")


def _evaluate_annotations(typer_app: typer.Typer) -> None:
    """Evaluate each command function's annotations once, in place (as without ``from __future__ import annotations``).

    Why: Typer reads every command's signature three times while it builds the command tree (on every run,
    ``--help`` included), each time evaluating the annotation strings afresh — a third of building the tree.
    ``inspect.get_annotations(eval_str=True)`` is the evaluation Typer's own ``inspect.signature(eval_str=True)``
    does, so it builds the same parameters from the same objects, once. :func:`main` calls it on the app it runs,
    after :func:`_only_command`: ``calc`` and ``batch`` evaluate their own annotations, not every command's
    (all fourteen cost ~5 ms); a function evaluated already is left as it is.
    """
    if not isinstance(typer_app, typer.Typer):  # an app stood in by a caller (a test): Typer's own path
        return
    import inspect

    infos = [*typer_app.registered_commands, typer_app.registered_callback]
    for info in infos:
        func = getattr(info, "callback", None)
        if func is not None and any(isinstance(a, str) for a in getattr(func, "__annotations__", {}).values()):
            func.__annotations__ = inspect.get_annotations(func, eval_str=True)
    for group in typer_app.registered_groups:
        if group.typer_instance is not None:
            _evaluate_annotations(group.typer_instance)


def main() -> None:
    """Console entry point: the one boundary where errors become messages and exit codes.

    A :class:`~medins.errors.MedinsError` (the user's mistake) is rendered in the chosen language and
    exits with its code (2); Click's own usage errors exit 2 as Click prints them; anything else is a
    bug in medins: its traceback, a bilingual request to report it, and exit 3.
    """
    from medins.errors import MedinsError, UsageError, unencodable_path

    gc_was_enabled = _quiet_gc(sys.argv[1:2])
    try:
        bad = unencodable_path(sys.argv[1:])
        if bad is not None:  # bytes that are not UTF-8 (a file name from a GBK system): nothing could print it
            shown = sys.argv[1 + bad[0]].encode("utf-8", "replace").decode()
            raise UsageError(f"argument {shown!r} is not valid UTF-8 text", f"参数 {shown!r} 不是有效的 UTF-8 文本",
                             hint_en="rename the file (or retype the value) in UTF-8",
                             hint_zh="请用 UTF-8 重命名该文件(或重新输入该值)")
        with _only_command(app, sys.argv[1:2]):
            _evaluate_annotations(app)  # of the commands this run builds (one, for calc and batch): ~5 ms for all
            app()
    except MedinsError as exc:
        from rich.console import Console

        from medins.report.errors import render_error, render_issues

        lang = _argv_lang()
        stderr = Console(stderr=True)
        issues = getattr(exc, "issues", None)
        stderr.print(render_issues(issues, lang) if issues else render_error(exc, lang))
        sys.exit(exc.exit_code)
    except Exception:  # the boundary: a bug must say so, not look like a user error
        import traceback

        traceback.print_exc()
        sys.stderr.write(
            "\nThis is a bug in medins, not a mistake of yours. Please report it with the command and the "
            "traceback above.\n这是 medins 的程序错误,不是您的操作问题。请连同上面的命令和 traceback 一起报告。\n")
        sys.exit(BUG_EXIT)
    finally:
        if gc_was_enabled:
            gc.enable()


@contextmanager
def _only_command(whole: typer.Typer, command: list[str]) -> Iterator[None]:
    """While a small command or ``batch`` runs, the app holds that command alone (the others put back after).

    Why: Typer builds the Click command of every command and group on each run, reading each function's parameters
    three times (~8 ms: the most of ``calc``'s dispatch), to run one. That command's parsing, help and errors
    read only its own command (and the root's options, which stay): the same words either way, from the one
    Typer app. Any other first argument (an option, a group, a typo to suggest a name for) gets the whole app.
    """
    if not command or command[0] not in ALONE_COMMANDS or not isinstance(whole, typer.Typer):
        yield
        return
    commands, groups = whole.registered_commands, whole.registered_groups
    whole.registered_commands = [c for c in commands if c.name == command[0] or (
        c.name is None and c.callback is not None and c.callback.__name__ == command[0])]
    whole.registered_groups = []
    try:
        yield
    finally:
        whole.registered_commands, whole.registered_groups = commands, groups


#: Commands run on an app holding them alone (:func:`_only_command`): the small ones (:mod:`medins.quietgc`), and
#: ``batch``, whose start-up is paid before every claims file (it keeps the collector: its memory matters).
ALONE_COMMANDS = SMALL_COMMANDS | {"batch"}


def _argv_lang() -> Literal["zh", "en"]:
    """The --lang of the command line if it is valid, else the locale's (errors come before parsing ends)."""
    from medins.report.labels import default_lang

    lang = default_lang()
    for i, arg in enumerate(sys.argv):
        if arg == "--lang" and i + 1 < len(sys.argv) and sys.argv[i + 1] in ("zh", "en"):
            lang = sys.argv[i + 1]  # type: ignore[assignment]
        elif arg.startswith("--lang=") and arg[7:] in ("zh", "en"):
            lang = arg[7:]  # type: ignore[assignment]
    return lang


if __name__ == "__main__":  # pragma: no cover
    main()
