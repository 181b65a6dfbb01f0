"""Start-up pays for what it uses: ``medins --help``/``--version`` import none of the heavy libraries, and ``calc``
with its policy in the cache imports no YAML reader, no checking machinery, no pydantic (its plan entry holds the
models as plain fields, and typer's parameter adapters are not built).

Why in a subprocess: the test process has imported everything already; only a fresh interpreter shows what a
command itself imports. (How long start-up takes is measured by ``benchmarks/cli.py``, never by a test.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Runs ``medins ARGS`` as ``python -m medins`` would, then writes what was imported to the file in argv[1].
PROBE = """
import gc, json, runpy, sys
out, sys.argv = sys.argv[1], ["medins", *sys.argv[2:]]
collections = sum(s["collections"] for s in gc.get_stats())
try:
    runpy.run_module("medins", run_name="__main__")
except SystemExit as exc:
    code = exc.code
else:
    code = 0
schema = sys.modules.get("medins.policy.schema")
built = [m.__name__ for m in vars(schema).values() if isinstance(m, type) and issubclass(m, schema.Model)
         and m.__pydantic_complete__] if schema else []
cli = sys.modules.get("medins.cli")
commands = [c.callback for c in cli.app.registered_commands] if cli else []
unevaluated = sorted(f.__name__ for f in commands if any(isinstance(a, str) for a in f.__annotations__.values()))
dataclasses = sorted(f"{name}.{value.__name__}" for name, module in list(sys.modules.items()) if name.startswith("medins")
                     for value in vars(module).values() if isinstance(value, type) and value.__module__ == name
                     and "__dataclass_fields__" in vars(value))
with open(out, "w", encoding="utf-8") as f:
    json.dump({"code": code, "modules": sorted(sys.modules), "built": built, "frozen": gc.get_freeze_count(),
               "collecting": gc.isenabled(), "unevaluated": unevaluated, "dataclasses": dataclasses,
               "collections": sum(s["collections"] for s in gc.get_stats()) - collections}, f)
"""

#: Heavy libraries and medins modules a command must not import unless it uses them.
HEAVY = ("pydantic", "pydantic_core", "polars", "yaml", "rich", "matplotlib", "xlsxwriter", "fastexcel",
         "charset_normalizer", "medins.api", "medins.engine", "medins.policy")
#: What settling one bill with a cached policy never needs.
NOT_FOR_CALC = ("yaml", "medins.policy.yamlsource", "medins.policy.tablecheck", "medins.policy.paramfile",
                "medins.policy.jsonschema", "medins.batch", "medins.partitioned", "medins.compare", "medins.audit",
                "medins.claims.readers", "medins.claims.writers", "medins.report.plots", "matplotlib", "xlsxwriter",
                "fastexcel", "charset_normalizer", "numpy", "medins.engine.scan",
                "typer._adapters",  # typer's pydantic adapters: medins.commands.coercion coerces instead
                "pydantic", "pydantic_core", "medins.policy.schema", "medins.policy.compiled",  # the plan entry
                "medins.policy.checks",
                "chinese_calendar")  # the working-day table is read back from the cache folder (engine/native.py)


#: What ``batch`` with its policy in the cache never needs: the plan entry holds the models as plain fields.
NOT_FOR_BATCH = ("pydantic", "pydantic_core", "medins.policy.schema", "medins.policy.compiled", "medins.policy.checks",
                 "yaml", "medins.policy.yamlsource", "medins.policy.tablecheck", "medins.policy.paramfile",
                 "medins.policy.jsonschema", "medins.policy.messages", "typer._adapters", "medins.compare",
                 "medins.audit", "medins.report.plots", "matplotlib", "rich.progress")
#: What a ``--jobs`` worker never needs besides: the command line (it settles partitions, nothing else).
NOT_FOR_WORKERS = (*NOT_FOR_BATCH, "typer", "click", "medins.cli", "medins.commands", "rich")


def probe(tmp_path: Path, *args: str) -> dict:
    out = tmp_path / f"probe-{len(list(tmp_path.glob('probe-*')))}.json"
    env = {**os.environ, "MEDINS_CACHE_DIR": str(tmp_path / "cache")}
    env.pop("MEDINS_NO_CACHE", None)
    subprocess.run([sys.executable, "-c", PROBE, str(out), *args], cwd=ROOT, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    return json.loads(out.read_text(encoding="utf-8"))


def imported(result: dict, names: tuple[str, ...]) -> list[str]:
    return [m for m in result["modules"] if any(m == n or m.startswith(n + ".") for n in names)]


@pytest.mark.parametrize("args", [("--help",), ("-h",), ("--version",)])
def test_help_and_version_import_nothing_heavy(tmp_path, args) -> None:
    result = probe(tmp_path, *args)
    assert result["code"] in (0, None)
    assert imported(result, HEAVY) == []


@pytest.mark.parametrize("args", [("-f", "json"), ("--lang", "en"), ("--explain", "--lang", "zh")])
def test_calc_with_a_cached_policy_skips_yaml_checks_and_schema_builds(tmp_path, args) -> None:
    """The first run compiles (and may import anything); the second takes the policy from the cache."""
    command = ("calc", "examples/bill.json", "-p", "suqian-2007", *args)
    first = probe(tmp_path, *command)
    assert first["code"] in (0, None) and "yaml" in first["modules"] and first["built"]
    second = probe(tmp_path, *command)
    assert second["code"] in (0, None)
    quoting = ("yaml",) if "--explain" in args else ()  # the explain table quotes clauses from sources.yaml
    assert imported(second, tuple(n for n in NOT_FOR_CALC if n not in quoting)) == []
    assert second["built"] == []  # no pydantic validator built: the models were unpickled, not validated
    if "--explain" not in args and "json" not in args:
        assert "medins.report.explain" not in second["modules"]
        assert "medins.report.explain_text" not in second["modules"]  # the explain view's words: --explain only
    # Each dataclass generates its methods at import (~0.4 ms, a frozen one ~0.7): the engine's own working classes
    # (never compared, hashed or copied) are plain classes (medins/engine/native.py, context.py, codes.py).
    plain = {"medins.engine.native.Native", "medins.engine.native._N", "medins.engine.context.Run",
             "medins.engine.context._Failed", "medins.engine.codes.Codes"}
    assert not plain & set(second["dataclasses"])
    assert len(second["dataclasses"]) <= 11, second["dataclasses"]  # a new one on calc's path: is it worth ~0.5 ms?
    assert second["collections"] == 0  # the collector was off from the first import on (medins/quietgc.py)
    # only calc's own annotations were evaluated (the other commands' are ~5 ms of start-up: medins.cli._only_command)
    assert "calc" not in second["unevaluated"] and {"batch", "premium", "audit"} <= set(second["unevaluated"])


def test_batch_of_a_small_file_imports_no_numpy(tmp_path) -> None:
    """Settling and writing a small claims file needs no numpy (a ``decimal.Decimal`` literal in a Polars
    expression imported it: a tenth of a second of every batch), nor when the policy comes from the cache."""
    for run in ("compiles the policy", "takes it from the cache"):
        result = probe(tmp_path, "batch", "examples/claims.csv", "--policy", "suqian-2007", "-o",
                       str(tmp_path / "out.csv"))
        assert result["code"] == 1, run  # some example rows are rejected on purpose
        assert (tmp_path / "out.csv").stat().st_size > 0
        assert imported(result, ("numpy",)) == [], run
        # the engine's modules were imported out of the collector's sight, and it collects the batch's own objects
        assert result["frozen"] > 10_000 and result["collecting"], run


@pytest.mark.parametrize("args", [(), ("--partitions", "2"), ("--lang", "en", "--jobs", "1", "--partitions", "3")])
def test_batch_with_a_cached_policy_imports_no_pydantic(tmp_path, args) -> None:
    """The second batch reads the plan entry: no pydantic, no schema models built, no YAML reader, no checks —
    in memory and partitioned alike — and one process (``--jobs 1``) imports no ``multiprocessing``."""
    command = ("batch", "examples/claims.csv", "--policy", "suqian-2007", "-o", str(tmp_path / "out.csv"), *args)
    first = probe(tmp_path, *command)
    assert first["code"] == 1 and "pydantic" in first["modules"] and first["built"]  # compiled, rows rejected
    settled = (tmp_path / "out.csv").read_bytes()
    second = probe(tmp_path, *command)
    assert second["code"] == 1 and (tmp_path / "out.csv").read_bytes() == settled
    assert imported(second, NOT_FOR_BATCH) == []
    assert second["built"] == []
    assert "medins.engine.settle" in second["modules"]  # it did settle here
    assert imported(second, ("multiprocessing",)) == []


#: The ``medins`` console script as pip writes it (the main module a spawned worker would run again).
#: The console script pip writes for ``medins = "medins.__main__:run"`` (pyproject.toml). A spawned worker runs it
#: again as ``__mp_main__``: its import of ``medins.__main__`` must stay light (no typer, no command line).
LAUNCHER = """import re
import sys
from medins.__main__ import run
if __name__ == "__main__":
    sys.argv[0] = re.sub(r"(-script\\.pyw|\\.exe)?$", "", sys.argv[0])
    sys.exit(run())
"""
#: Each process (workers included) writes the modules it imported when it ends, and whether it is a worker.
SITE = """import atexit, json, os, sys
def _dump():
    import multiprocessing
    with open(os.path.join(os.environ["MEDINS_TEST_MODULES"], f"{os.getpid()}.json"), "w", encoding="utf-8") as f:
        json.dump({"worker": multiprocessing.parent_process() is not None, "modules": sorted(sys.modules)}, f)
atexit.register(_dump)
"""


def test_batch_workers_import_neither_pydantic_nor_the_command_line(tmp_path) -> None:
    """``--jobs 2`` under the console script: each worker gets the policy's plan form, and running the launcher
    again (as every spawned worker does) imports only ``medins.__main__``: neither pydantic nor typer nor any
    command — and the workers settle the same."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITE, encoding="utf-8")
    (tmp_path / "medins").write_text(LAUNCHER, encoding="utf-8")
    dumps = tmp_path / "modules"
    env = {**os.environ, "MEDINS_CACHE_DIR": str(tmp_path / "cache"), "MEDINS_TEST_MODULES": str(dumps),
           "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("MEDINS_NO_CACHE", None)
    outputs = []
    for jobs in ("2", "2", "1"):  # the first compiles the policy; the last settles in one process
        dumps.mkdir(exist_ok=True)
        for old in dumps.iterdir():
            old.unlink()
        out = tmp_path / f"out-{len(outputs)}.csv"
        done = subprocess.run([sys.executable, str(tmp_path / "medins"), "batch", "examples/claims.csv", "--policy",
                               "suqian-2007", "-o", str(out), "--jobs", jobs, "--partitions", "2"], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
        assert done.returncode == 1, done.stderr.decode(errors="replace")
        outputs.append((out.read_bytes(), out.with_name(f"{out.stem}.rejects.csv").read_bytes()))
        if len(outputs) == 2:
            workers = [d for d in (json.loads(f.read_text(encoding="utf-8")) for f in dumps.iterdir()) if d["worker"]]
            assert len(workers) == 2
            for worker in workers:
                assert imported(worker, NOT_FOR_WORKERS) == []
                assert "medins.engine.settle" in worker["modules"]  # it did settle partitions
    assert outputs[0] == outputs[1] == outputs[2]
