"""The CLI's plain coercion (``medins.commands.coercion``) gives typer's values and typer's errors.

Why: medins sets each parameter's runtime coercion so that ``calc`` builds no pydantic adapter; a value it
coerced differently, or an error worded differently, would change what users see. Every parameter of every
command is checked here against the coercion typer builds itself, for good and bad values alike; and the
hook must be active for the typer installed (a typer upgrade that moves its internals makes medins fall back
to typer's own path, and this test fail, so someone looks).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer.main
from typer._click import Context
from typer._coercion import build_runtime_param

from medins.cli import app
from medins.commands import coercion

ROOT = Path(__file__).resolve().parents[1]


def all_commands():
    """(command path, click command) for the root group and every command under it."""
    root = typer.main.get_command(app)
    out, todo = [], [("medins", root)]
    while todo:
        name, command = todo.pop()
        out.append((name, command))
        todo += [(f"{name} {sub}", cmd) for sub, cmd in getattr(command, "commands", {}).items()]
    return out


COMMANDS = all_commands()

#: Raw values as Click hands them over (strings from argv, defaults, lists of a repeated option), good and bad.
VALUES = ["x", "", " y ", "a\udcff", "zh", "en", "EN", "json", "table", "csv", "inpatient", "resident", "M", "m",
          "5", "0", "-1", "007", "+3", " 4", "1_0", "1.0", "1e3", "abc", "2", "3", "4", "64", "65", "100000",
          "100001", "99999999999999999999", "\u0661", "examples/bill.json", "examples//bill.json",
          "./examples/bill.json", "examples/bill.json/", "examples", "examples/", "no-such.json", "-", ".",
          "policies", 0, 1, 3, 41, 2001, 200_000, True, False, None, 1.5, b"x", Path("examples/bill.json"),
          Path("no-such.json"), ["a", "b"], ("examples/bill.json",), ("5", "x"), [], ()]


def outcome(runtime, value, param, ctx):
    try:
        got = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # the error itself is what is compared
        return ("error", type(exc).__name__, getattr(exc, "format_message", exc.__str__)())
    return ("value", type(got).__name__, got, [type(g).__name__ for g in got] if isinstance(got, list) else None)


@pytest.mark.parametrize(("name", "command"), COMMANDS, ids=[n for n, _ in COMMANDS])
def test_every_parameter_coerces_as_typer_does(name, command, monkeypatch) -> None:
    monkeypatch.chdir(ROOT)
    ctx = Context(command, info_name=name.split()[-1])
    params = command.get_params(ctx)
    for param in params:
        param._runtime_param = None
    coercion.install(params)
    for param in params:
        plain = param._runtime_param
        assert isinstance(plain, coercion.PlainRuntimeParam), (name, param.name)  # every medins annotation is plain
        theirs = build_runtime_param(param.type_descriptor)
        for value in VALUES:
            assert outcome(plain, value, param, ctx) == outcome(theirs, value, param, ctx), (name, param.name, value)


def test_calc_builds_no_adapter_of_typers(capsys, monkeypatch) -> None:
    """Through the real command line: calc's parameters (and the help option, and the root's) use the plain path."""
    import typer.core

    from tests.cli_support import run

    built = []
    real = typer.core.build_runtime_param
    monkeypatch.setattr(typer.core, "build_runtime_param", lambda d: built.append(d) or real(d))
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007", "--lang", "en",
                       "--set", "x=1", "-f", "json")
    assert code in (0, 2) and built == []
    code, out, _ = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007", "--lang", "en")
    assert code == 0 and out and built == []


def test_a_bad_value_still_gets_typers_message(capsys) -> None:
    from tests.cli_support import run

    code, _, err = run(capsys, "calc", str(ROOT / "examples/bill.json"), "--policy", "suqian-2007", "--lang", "fr")
    assert code == 2 and "'fr' is not one of 'zh', 'en'" in err
    code, _, err = run(capsys, "calc", "no-such-bill.json", "--policy", "suqian-2007")
    assert code == 2 and "File 'no-such-bill.json' does not exist" in err.replace("file '", "File '")
    code, _, err = run(capsys, "policy", "check", "policies/suqian-2007.yaml", "--points", "1")
    assert code == 2 and "greater than or equal to 2" in err


def test_an_unknown_typer_is_left_alone() -> None:
    """A parameter without typer's lazy slot (a typer that changed) keeps typer's own coercion."""
    command = typer.main.get_command(app).commands["calc"]
    param = command.params[0]
    del param._runtime_param
    coercion.install([param])
    assert not hasattr(param, "_runtime_param")
    coercion.install([object()])  # not a typer parameter at all: nothing happens


def _describe(command) -> list[tuple]:
    """What Typer built for each parameter: the parts a user meets (names, type, default, help, checks)."""
    out = []
    for p in command.params:
        d = p.type_descriptor
        info = d.parameter_info
        out.append((type(p).__name__, p.name, tuple(p.opts), tuple(p.secondary_opts), p.required, repr(p.default),
                    p.multiple, p.nargs, p.metavar, getattr(p, "help", None), repr(d.annotation), info.min, info.max,
                    info.exists, info.dir_okay, info.file_okay, info.readable, p.is_flag if hasattr(p, "is_flag")
                    else None))
    return out


def test_evaluated_annotations_build_the_same_parameters() -> None:
    """``cli._evaluate_annotations`` (annotations evaluated once, not by Typer three times) changes nothing Typer
    builds: a command with every kind of annotation medins uses, built from the strings and from the objects."""
    from medins import cli

    def make() -> typer.Typer:
        sub = typer.Typer()
        namespace: dict = {}
        exec(  # a module with string annotations, as medins' command modules have
            "from __future__ import annotations\n"
            "from pathlib import Path\nfrom typing import Annotated, Literal\nimport typer\n"
            "from medins.commands.common import LangOpt, PolicyOpt, SetOpt, SetFileOpt\n"
            "def cmd(bill: Annotated[Path, typer.Argument(metavar='BILL', exists=True, dir_okay=False)],\n"
            "        policy: PolicyOpt, fmt: Annotated[Literal['a', 'b'], typer.Option('--fmt')] = 'a',\n"
            "        flag: Annotated[bool, typer.Option('--flag')] = False, lang: LangOpt = None,\n"
            "        n: Annotated[int, typer.Option('--n', min=1, max=5)] = 2, set_: SetOpt = None,\n"
            "        set_file: SetFileOpt = None, many: Annotated[list[Path] | None, typer.Option('--many')] = None,\n"
            "        ) -> None:\n    pass\n", namespace)
        sub.command()(namespace["cmd"])
        sub.command("other")(namespace["cmd"])
        return sub

    strings = make()
    before = _describe(typer.main.get_command(strings).commands["cmd"])
    assert isinstance(strings.registered_commands[0].callback.__annotations__["bill"], str)
    cli._evaluate_annotations(strings)
    assert not isinstance(strings.registered_commands[0].callback.__annotations__["bill"], str)
    assert _describe(typer.main.get_command(strings).commands["cmd"]) == before


@pytest.mark.parametrize(("args", "alone"), [(["calc", "--help"], True), (["batch", "--help"], True),
                                             (["compare", "--help"], False), (["--help"], False)])
def test_main_evaluates_the_annotations_of_the_commands_it_builds(monkeypatch, capsys, args, alone) -> None:
    """``main`` evaluates the annotations of the app it runs: the one command for calc and batch, else all."""
    from medins import cli

    seen: list[list[str]] = []
    evaluate = cli._evaluate_annotations

    def recording(app: typer.Typer) -> None:
        seen.append([c.callback.__name__ for c in app.registered_commands])
        evaluate(app)
        if app.registered_groups:  # the policy group's commands too
            funcs = [info.callback for info in app.registered_commands + cli.policy_app.registered_commands]
        else:
            funcs = [info.callback for info in app.registered_commands]
        assert funcs and all(not isinstance(a, str) for f in funcs for a in f.__annotations__.values())

    monkeypatch.setattr(cli, "_evaluate_annotations", recording)
    monkeypatch.setattr(sys, "argv", ["medins", *args])
    with pytest.raises(SystemExit):
        cli.main()
    capsys.readouterr()
    if alone:
        assert seen == [[args[0]]]
    else:  # the whole app, then (recursively) the policy group's
        assert {"calc", "batch", "compare"} <= set(seen[0]) and "policy_list" in seen[1]
