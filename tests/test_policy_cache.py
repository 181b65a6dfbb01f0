"""The compiled-policy cache (``medins.policy.cache``): a hit settles exactly as a fresh compile, every input
that changes the compiled policy misses, and a cache that is corrupt, forged, foreign or unwritable is harmless.

How a hit is told from a miss: ``loader._compile`` is replaced by one that fails, so a run that still
succeeds took its policy from the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import sys
from pathlib import Path

import pytest

import medins
from medins.policy import cache, loader
from medins.policy.loader import builtin_policies, load_policy
from tests.cli_support import run

ROOT = Path(__file__).resolve().parents[1]
BILL = str(ROOT / "examples" / "bill.json")


@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """An empty cache folder of this test's own."""
    path = tmp_path / "cache"
    monkeypatch.setenv("MEDINS_CACHE_DIR", str(path))
    monkeypatch.delenv("MEDINS_NO_CACHE", raising=False)
    return path


@pytest.fixture
def no_compile(monkeypatch):
    """Make every compile fail: call it to assert that what follows is served from the cache."""

    def forbid() -> None:
        def refuse(*_args, **_kwargs):
            raise AssertionError("compiled again: the cache was not used")

        monkeypatch.setattr(loader, "_compile", refuse)

    return forbid


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.pickle"))


def calc(capsys, *args: str) -> tuple[int, str]:
    code, out, err = run(capsys, "calc", BILL, *args)
    assert not err
    return code, out


# --- a hit is the same settlement ------------------------------------------------------------------------

@pytest.mark.parametrize("args", [("-f", "json"), ("--explain", "--lang", "en"), ("--explain", "--lang", "zh")])
def test_a_hit_gives_the_identical_settlement_and_explain(folder, no_compile, capsys, args) -> None:
    """SQ-T4 settled twice: the second run's policy comes from the cache, its output is byte-identical."""
    first = calc(capsys, "-p", "suqian-2007", *args)
    assert first[0] == 0 and len(entries(folder)) == 1
    no_compile()
    assert calc(capsys, "-p", "suqian-2007", *args) == first


@pytest.mark.parametrize("name", sorted(builtin_policies()))
def test_every_built_in_policy_comes_back_equal(folder, name) -> None:
    """What is stored loads back equal to what was compiled (models, typed values, versions, file)."""
    compiled = load_policy(name, cache=True)
    found = cache.load(cache.policy_key(loader.find_policy(name), loader._display_name(
        str(loader.find_policy(name))), None, None, False))
    assert found is not None and found is not compiled
    assert found == compiled and found.label() == compiled.label() and found.file == compiled.file


def test_the_api_default_leaves_the_disk_alone(folder) -> None:
    """``load_policy`` without ``cache=True`` (notebooks, the engine's callers) writes nothing."""
    load_policy("suqian-2007")
    assert not folder.exists()


# --- every input that matters misses ---------------------------------------------------------------------

def test_a_changed_policy_file_misses(folder, tmp_path, capsys) -> None:
    policy = tmp_path / "suqian.yaml"
    text = (ROOT / "policies" / "suqian-2007.yaml").read_text(encoding="utf-8")
    policy.write_text(text, encoding="utf-8")
    before = json.loads(calc(capsys, "-p", str(policy), "-f", "json")[1])
    policy.write_text(text.replace("out_of_city: 1000}", "out_of_city: 1200}"), encoding="utf-8")
    after = json.loads(calc(capsys, "-p", str(policy), "-f", "json")[1])
    assert (before["act_pay_dedc"], after["act_pay_dedc"]) == ("1000.00", "1200.00")
    assert len(entries(folder)) == 2


def test_a_changed_set_misses(folder, capsys) -> None:
    plain = json.loads(calc(capsys, "-p", "suqian-2007", "-f", "json")[1])
    changed = json.loads(calc(capsys, "-p", "suqian-2007", "--set", "deductible.out_of_city=900", "-f", "json")[1])
    again = json.loads(calc(capsys, "-p", "suqian-2007", "--set", "deductible.out_of_city=800", "-f", "json")[1])
    assert (plain["act_pay_dedc"], changed["act_pay_dedc"], again["act_pay_dedc"]) == ("1000.00", "900.00", "800.00")
    assert len(entries(folder)) == 3


def test_a_changed_set_file_misses(folder, tmp_path, capsys) -> None:
    params = tmp_path / "params.yaml"
    params.write_text("deductible: {in_district: 500, in_city: 800, out_of_city: 700}\n", encoding="utf-8")
    first = json.loads(calc(capsys, "-p", "suqian-2007", "--set-file", str(params), "-f", "json")[1])
    params.write_text("deductible: {in_district: 500, in_city: 800, out_of_city: 600}\n", encoding="utf-8")
    second = json.loads(calc(capsys, "-p", "suqian-2007", "--set-file", str(params), "-f", "json")[1])
    assert (first["act_pay_dedc"], second["act_pay_dedc"]) == ("700.00", "600.00")


def test_another_medins_version_misses(folder, monkeypatch, capsys, no_compile) -> None:
    """An entry is never trusted across versions: same inputs, another ``__version__``, compiled again."""
    first = calc(capsys, "-p", "suqian-2007", "-f", "json")
    monkeypatch.setattr(medins, "__version__", "0.0.0-other")
    monkeypatch.setattr(cache, "code_fingerprint", cache.code_fingerprint.__wrapped__)  # no memo of the old one
    no_compile()
    with pytest.raises(AssertionError, match="compiled again"):
        load_policy("suqian-2007", cache=True)
    monkeypatch.undo()
    assert calc(capsys, "-p", "suqian-2007", "-f", "json") == first


def test_edited_medins_sources_miss(folder, tmp_path, monkeypatch) -> None:
    """The fingerprint covers medins' own files: the same version with an edited module is another key."""
    fake = tmp_path / "medins"
    (fake / "policy").mkdir(parents=True)
    module = fake / "policy" / "schema.py"
    module.write_text("A = 1\n", encoding="utf-8")
    monkeypatch.setattr(cache, "__file__", str(fake / "policy" / "cache.py"))
    before = cache.code_fingerprint.__wrapped__()
    module.write_text("A = 22\n", encoding="utf-8")
    assert cache.code_fingerprint.__wrapped__() != before


def test_the_fingerprint_names_each_file_by_its_path_in_the_package(tmp_path, monkeypatch) -> None:
    """Each file counts under its path relative to the package (as ``os.path.relpath`` gives it), in sorted order,
    ``__pycache__`` and other files left out: the digest made here the slow way is the fingerprint's."""
    fake = tmp_path / "medins"
    for rel, text in (("api.py", "a"), ("policy/schema.py", "bb"), ("policy/messages.yaml", "c"),
                      ("policy/__pycache__/schema.cpython-311.pyc", "x"), ("report/notes.txt", "y"),
                      ("report/deep/er/tables.py", "ddd")):
        (fake / rel).parent.mkdir(parents=True, exist_ok=True)
        (fake / rel).write_text(text, encoding="utf-8")
    monkeypatch.setattr(cache, "__file__", str(fake / "policy" / "cache.py"))
    package = fake.resolve()
    digest = hashlib.sha256(f"{medins.__version__}\0{sys.version}\0{cache.pydantic_version()}".encode())
    for rel in ("api.py", "policy/messages.yaml", "policy/schema.py", "report/deep/er/tables.py"):
        path = os.path.join(package, *rel.split("/"))
        info = os.stat(path)
        digest.update(f"\0{os.path.relpath(path, package)}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    assert cache.code_fingerprint.__wrapped__() == digest.digest()


# --- a bad cache is harmless -----------------------------------------------------------------------------

def _only_entry(folder: Path) -> Path:
    (entry,) = entries(folder)
    return entry


@pytest.mark.parametrize("damage", ["garbage", "truncated", "flipped", "empty"])
def test_a_corrupt_entry_is_ignored_and_rewritten(folder, capsys, damage) -> None:
    first = calc(capsys, "-p", "suqian-2007", "--explain", "--lang", "en")
    entry = _only_entry(folder)
    for kind in (entry, entry.with_suffix(".plan")):  # the full entry and calc's plan entry alike
        data = kind.read_bytes()
        kind.write_bytes({"garbage": b"not a cache entry", "truncated": data[: len(data) // 2], "empty": b"",
                          "flipped": data[:-40] + bytes([data[-40] ^ 1]) + data[-39:]}[damage])
    assert cache.load(entry.stem) is None and cache.load(entry.stem, plan=True) is None
    assert calc(capsys, "-p", "suqian-2007", "--explain", "--lang", "en") == first
    # rewritten whole by the run that missed
    assert cache.load(entry.stem) is not None and cache.load(entry.stem, plan=True) is not None


def test_an_entry_naming_anything_else_is_never_run(folder, tmp_path) -> None:
    """A forged entry with a valid header and digest that would call ``os.mkdir``: refused, nothing runs."""
    load_policy("suqian-2007", cache=True)
    entry = _only_entry(folder)
    target = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (str(target),))

    payload = pickle.dumps(Evil(), protocol=pickle.HIGHEST_PROTOCOL)
    entry.write_bytes(cache.MAGIC + bytes.fromhex(entry.stem) + hashlib.sha256(payload).digest() + payload)
    assert cache.load(entry.stem) is None and not target.exists()
    assert load_policy("suqian-2007", cache=True).id == "suqian-2007"
    assert not target.exists()


def test_an_entry_of_another_key_is_not_used(folder) -> None:
    """An entry copied under another key's name (its header names its own key) is a miss."""
    load_policy("suqian-2007", cache=True)
    entry = _only_entry(folder)
    other = folder / f"{'0' * 64}.pickle"
    other.write_bytes(entry.read_bytes())
    other.chmod(0o600)
    assert cache.load("0" * 64) is None and cache.load(entry.stem) is not None


@pytest.mark.skipif(not hasattr(os, "geteuid"), reason="POSIX owners and modes")
@pytest.mark.parametrize("plan", [False, True], ids=["entry", "plan"])
def test_an_entry_others_may_write_is_not_trusted(folder, no_compile, plan) -> None:
    """The full entry and calc's plan entry alike: writable by others, it is a miss, compiled again."""
    load_policy("suqian-2007", cache=True)
    entry = _only_entry(folder).with_suffix(".plan" if plan else ".pickle")
    entry.chmod(0o666)
    assert cache.load(entry.stem, plan=plan) is None
    assert load_policy("suqian-2007", cache=True, plan=plan).id == "suqian-2007"  # compiled again, rewritten 0600
    assert not entry.stat().st_mode & 0o077
    no_compile()
    assert load_policy("suqian-2007", cache=True, plan=plan).id == "suqian-2007"


@pytest.mark.skipif(not hasattr(os, "symlink") or sys.platform == "win32", reason="POSIX symlinks")
@pytest.mark.parametrize("plan", [False, True], ids=["entry", "plan"])
def test_a_symlinked_entry_is_not_followed(folder, tmp_path, plan) -> None:
    load_policy("suqian-2007", cache=True)
    entry = _only_entry(folder).with_suffix(".plan" if plan else ".pickle")
    assert cache.load(entry.stem, plan=plan) is not None
    real = tmp_path / f"elsewhere{entry.suffix}"
    entry.rename(real)
    entry.symlink_to(real)
    assert cache.load(entry.stem, plan=plan) is None


def test_an_unwritable_cache_is_skipped(tmp_path, monkeypatch, capsys) -> None:
    """A cache folder that cannot exist (under a file) leaves every run working, with the same output."""
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder", encoding="utf-8")
    monkeypatch.setenv("MEDINS_CACHE_DIR", str(blocker / "cache"))
    first = calc(capsys, "-p", "suqian-2007", "-f", "json")
    assert first[0] == 0 and calc(capsys, "-p", "suqian-2007", "-f", "json") == first
    assert blocker.read_text(encoding="utf-8") == "not a folder" and not list(tmp_path.glob(".*.tmp"))


def test_no_cache_writes_nothing(folder, monkeypatch, capsys) -> None:
    monkeypatch.setenv("MEDINS_NO_CACHE", "1")
    assert calc(capsys, "-p", "suqian-2007", "-f", "json")[0] == 0
    assert not folder.exists()


def test_a_policy_with_errors_is_never_stored(folder, tmp_path, capsys) -> None:
    policy = tmp_path / "bad.yaml"
    policy.write_text((ROOT / "policies" / "suqian-2007.yaml").read_text(encoding="utf-8").replace(
        "unit: yuan", "unit: dollars", 1), encoding="utf-8")
    code, _out, err = run(capsys, "calc", BILL, "-p", str(policy))
    assert code == 2 and "dollars" in err
    assert not entries(folder)


# --- where the cache lives -------------------------------------------------------------------------------

def test_the_folder_follows_the_environment(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("MEDINS_NO_CACHE", raising=False)
    monkeypatch.setenv("MEDINS_CACHE_DIR", str(tmp_path / "mine"))
    assert cache.cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("MEDINS_CACHE_DIR")
    if sys.platform not in ("win32", "darwin"):
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        assert cache.cache_dir() == tmp_path / "xdg" / "medins"
        monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG rule: only an absolute path counts
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        assert cache.cache_dir() == tmp_path / "home" / ".cache" / "medins"
    monkeypatch.setenv("MEDINS_NO_CACHE", "1")
    assert cache.cache_dir() is None
