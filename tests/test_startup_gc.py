"""A small command runs with the garbage collector off, and :func:`medins.cli.main` gives it back on return.

Why: ``calc`` turns the collector off for speed (``medins.cli._quiet_gc``); a program that calls ``main()``
and goes on (these tests, an embedding) must find the collector as it was, and ``batch``, whose memory
matters, must keep it.
"""

from __future__ import annotations

import gc
import sys

import pytest

from medins import cli


def _run_main(monkeypatch, *args: str) -> list[bool]:
    """Run ``medins ARGS`` through ``main()``; return whether the collector was on inside the command."""
    seen: list[bool] = []
    real_app = cli.app

    def app() -> None:
        seen.append(gc.isenabled())
        real_app()

    monkeypatch.setattr(cli, "app", app)
    monkeypatch.setattr(sys, "argv", ["medins", *args])
    with pytest.raises(SystemExit):
        cli.main()
    return seen


def test_calc_runs_without_the_collector_and_main_turns_it_on_again(monkeypatch, capsys) -> None:
    assert gc.isenabled()
    seen = _run_main(monkeypatch, "calc", "examples/bill.json", "--policy", "suqian-2007", "-f", "json")
    assert seen == [False]
    assert gc.isenabled()


def test_calc_leaves_a_collector_turned_off_by_the_caller_off(monkeypatch, capsys) -> None:
    gc.disable()
    try:
        _run_main(monkeypatch, "calc", "examples/bill.json", "--policy", "suqian-2007")
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_batch_and_help_keep_the_collector(monkeypatch, capsys) -> None:
    assert _run_main(monkeypatch, "batch", "--help") == [True]
    assert _run_main(monkeypatch, "--help") == [True]
    assert gc.isenabled()
