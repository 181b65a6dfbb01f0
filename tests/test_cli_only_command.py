"""``calc`` runs on an app holding that command alone (``medins.cli._only_command``): the same words and codes.

Why tested: Typer builds every command's Click command on each run, so a small command is given an app with just
itself; its help, its usage errors, its output and its exit code must be those the whole app gives, and the
whole app must be back once ``main()`` returns (a program that calls ``main()`` again runs any command).
"""

from __future__ import annotations

import contextlib
import sys

import pytest

from medins import cli

CASES = [
    ("calc", "--help"),
    ("calc",),
    ("calc", "examples/bill.json"),
    ("calc", "examples/bill.json", "--policy", "suqian-2007", "--explian"),
    ("calc", "examples/bill.json", "--policy", "suqian-2007", "-f", "xml"),
    ("calc", "examples/bill.json", "--policy", "suqian-2007", "--version"),
    ("calc", "examples/bill.json", "--policy", "suqian-2007", "-f", "json"),
    ("calc", "examples/bill.json", "--policy", "suqian-2007", "--explain", "--lang", "en"),
]


def _main(monkeypatch, capsys, args: tuple[str, ...]) -> tuple[object, str, str]:
    monkeypatch.setattr(sys, "argv", ["medins", *args])
    code: object = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args", CASES)
def test_calc_alone_says_what_the_whole_app_says(monkeypatch, capsys, args) -> None:
    commands, groups = list(cli.app.registered_commands), list(cli.app.registered_groups)
    alone = _main(monkeypatch, capsys, args)
    assert cli.app.registered_commands == commands and cli.app.registered_groups == groups  # the whole app is back
    monkeypatch.setattr(cli, "_only_command", lambda whole, command: contextlib.nullcontext())
    whole = _main(monkeypatch, capsys, args)
    assert alone == whole


def test_calc_alone_holds_calc_and_nothing_else_while_it_runs(monkeypatch) -> None:
    with cli._only_command(cli.app, ["calc"]):
        assert [c.callback.__name__ for c in cli.app.registered_commands] == ["calc"]
        assert cli.app.registered_groups == []
    assert len(cli.app.registered_commands) > 1 and cli.app.registered_groups
    with cli._only_command(cli.app, ["batch"]):  # not a small command: the whole app
        assert len(cli.app.registered_commands) > 1 and cli.app.registered_groups
