"""``calc`` and ``batch`` run on an app holding that command alone (``medins.cli._only_command``): the same words
and codes.

Why tested: Typer builds every command's Click command on each run, so a small command is given an app with just
itself; its help, its usage errors, its output and its exit code must be those the whole app gives, and the
whole app must be back once ``main()`` returns (a program that calls ``main()`` again runs any command).
"""

from __future__ import annotations

import contextlib
import re
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


#: ``batch`` cases; OUT is replaced by a file in the test's folder.
BATCH_CASES = [
    ("batch", "--help"),
    ("batch",),
    ("batch", "examples/claims.csv"),
    ("batch", "examples/claims.csv", "--policy", "suqian-2007"),
    ("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "OUT", "--polcy", "x"),
    ("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "OUT", "--jobs", "0"),
    ("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "OUT", "--format", "xml"),
    ("batch", "examples/claims.csv", "--policy", "no-such-policy", "-o", "OUT"),
    ("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "OUT", "--lang", "en"),
    ("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", "OUT", "--partitions", "2", "--lang", "zh"),
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


@pytest.mark.parametrize("args", BATCH_CASES)
def test_batch_alone_says_what_the_whole_app_says(monkeypatch, capsys, tmp_path, args) -> None:
    """Help, usage errors, a user error, and a run (its summary and its files) are those of the whole app."""
    args = tuple(str(tmp_path / "out.csv") if a == "OUT" else a for a in args)
    commands, groups = list(cli.app.registered_commands), list(cli.app.registered_groups)
    alone = _main(monkeypatch, capsys, args)
    assert cli.app.registered_commands == commands and cli.app.registered_groups == groups  # the whole app is back
    written = sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir())
    monkeypatch.setattr(cli, "_only_command", lambda whole, command: contextlib.nullcontext())
    whole = _main(monkeypatch, capsys, args)
    assert sorted((p.name, p.read_bytes()) for p in tmp_path.iterdir()) == written

    def timeless(said: tuple[object, str, str]) -> tuple[object, str, str]:  # the summary says how long it took
        return said[0], *(re.sub(r"\d+\.\d\d (s|秒)", "T", text) for text in said[1:])

    assert timeless(alone) == timeless(whole)
    if "--lang" in args:  # a run: some example rows are rejected on purpose
        assert alone[0] == 1 and [name for name, _ in written] == ["out.csv", "out.rejects.csv"]


def test_calc_alone_holds_calc_and_nothing_else_while_it_runs(monkeypatch) -> None:
    with cli._only_command(cli.app, ["calc"]):
        assert [c.callback.__name__ for c in cli.app.registered_commands] == ["calc"]
        assert cli.app.registered_groups == []
    assert len(cli.app.registered_commands) > 1 and cli.app.registered_groups
    with cli._only_command(cli.app, ["batch"]):
        assert [c.callback.__name__ for c in cli.app.registered_commands] == ["batch"]
    with cli._only_command(cli.app, ["compare"]):  # neither small nor batch: the whole app
        assert len(cli.app.registered_commands) > 1 and cli.app.registered_groups
    with cli._only_command(cli.app, ["policy"]):  # a group: the whole app
        assert len(cli.app.registered_commands) > 1 and cli.app.registered_groups
