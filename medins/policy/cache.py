"""The compiled-policy cache on disk: a second ``medins calc`` skips YAML, validation, checks and compiling.

Why: loading a policy is most of what a one-bill command does that is not settling it (the YAML parse, the
pydantic validation with its schema build, the whole-policy checks, the compile). Its result depends only on
the policy file's bytes, the ``--set``/``--set-file`` inputs and the code that compiled it, so it is kept,
keyed by exactly those, and reused.

Where: ``$MEDINS_CACHE_DIR``, else the platform's user cache folder (``$XDG_CACHE_HOME/medins`` or
``~/.cache/medins``; ``~/Library/Caches/medins`` on macOS; ``%LOCALAPPDATA%\\medins\\Cache`` on Windows; the
same places ``platformdirs`` gives, which medins does not depend on). ``MEDINS_NO_CACHE=1`` turns it off.

What is trusted, and why pickle is safe here: an entry is a pickle, because the compiled policy (frozen
pydantic models, Decimals, dates, dataclasses) must come back exactly as compiled, types included, and
rebuilding it from JSON would be a second path that could disagree with the loader. A pickle may name any
callable, so an entry is read only when all of these hold, else it is ignored (and rewritten on the miss):

* it is a regular file (not a symlink), owned by the current user and writable by no one else (POSIX), so
  another user of a shared ``MEDINS_CACHE_DIR`` cannot plant one;
* its header names exactly this key (the SHA-256 of the policy bytes, the overrides, the ``--set-file``
  bytes, medins' version, a fingerprint of medins' own source files, Python's and pydantic's versions), so
  an entry is never trusted across versions or after the code changed;
* its payload hashes to the digest in the header (a truncated or flipped file is corrupt, not a policy);
* it unpickles with an allow-list of medins' own policy classes plus ``Decimal`` and ``date``: nothing else
  can be named, so even a forged entry cannot run code, only fail to load.

Two entries per key: ``KEY.pickle``, the compiled policy as the loader made it (pydantic models and all), for
every command; and ``KEY.plan``, the same with each model written as its fields
(:class:`medins.policy.plan.PlainModel`), for ``medins calc`` and ``medins batch`` (``load_policy(..., plan=True)``),
and the form a batch's worker processes are handed (:func:`plan_of`): reading it imports neither pydantic nor the
schema models — most of what ``calc`` spent on a cached policy, a fifth of ``batch``'s start-up. The plan
entry is held to the same four rules, with an allow-list of its own that names no schema class.

A cache that cannot be created, written or read is skipped without a word: it is an optimisation, never a
reason for a command to fail.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import stat
import sys
import tempfile
from collections.abc import Mapping
from contextlib import suppress
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from medins.policy.compiled import CompiledPolicy

#: First line of every entry; bump the number when the entry layout changes.
MAGIC = b"medins-compiled-policy 1\n"
#: First line of every plan entry (``KEY.plan``: the models as plain fields); bump it with its layout.
PLAN_MAGIC = b"medins-compiled-plan 1\n"
#: Classes an entry may name besides the policy models (``medins.policy.schema``).
ALLOWED = {
    "decimal": frozenset({"Decimal"}),
    "datetime": frozenset({"date"}),
    "medins.policy.plan": frozenset({"CompiledPolicy", "CompiledVersion", "ParamSet", "ScaleBand"}),
    "medins.policy.expr": frozenset({"MissingEntry"}),
}
#: What a plan entry may name: the same, with the plain model instead of any schema class.
PLAN_ALLOWED = {**ALLOWED, "medins.policy.plan": ALLOWED["medins.policy.plan"] | {"plain_model"}}


def cache_dir() -> Path | None:
    """The folder of entries, or None when the cache is off (``MEDINS_NO_CACHE``) or there is no home."""
    if os.environ.get("MEDINS_NO_CACHE"):
        return None
    given = os.environ.get("MEDINS_CACHE_DIR")
    if given:
        return Path(given)
    try:
        if sys.platform == "win32":
            local = os.environ.get("LOCALAPPDATA")
            return Path(local) / "medins" / "Cache" if local else None
        if sys.platform == "darwin":
            return Path.home() / "Library" / "Caches" / "medins"
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        return (Path(xdg) if os.path.isabs(xdg) else Path.home() / ".cache") / "medins"
    except RuntimeError:  # no home folder to be found
        return None


@cache
def code_fingerprint() -> bytes:
    """What the compiled form depends on besides its inputs: medins' version and sources, Python, pydantic.

    Each source file counts by path, size and modification time (a stat, not a read: cheap on every run), so
    an edited or reinstalled medins misses even when ``__version__`` did not change.
    """
    from medins import __version__

    digest = hashlib.sha256(f"{__version__}\0{sys.version}\0{pydantic_version()}".encode())
    package = Path(__file__).resolve().parent.parent
    start = len(str(package)) + 1  # a path under the package less ``package/``: its relative path, as relpath gives
    for root, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".yaml")):
                path = os.path.join(root, name)
                info = os.stat(path)
                digest.update(f"\0{path[start:]}\0{info.st_size}\0{info.st_mtime_ns}".encode())
    return digest.digest()


def pydantic_version() -> str:
    """pydantic's ``VERSION``, read from its ``version.py`` without importing pydantic (which ``calc`` or ``batch`` with a
    cached plan never needs); imported only when the file does not say it plainly."""
    loaded = sys.modules.get("pydantic.version")
    if loaded is None:
        import importlib.util
        import re

        spec = importlib.util.find_spec("pydantic")
        for folder in (spec.submodule_search_locations or []) if spec else []:
            with suppress(OSError):
                text = Path(folder, "version.py").read_text(encoding="utf-8")
                found = re.search(r"""^VERSION = ['"]([^'"\n]+)['"]$""", text, re.M)
                if found:
                    return found.group(1)
        import pydantic.version as loaded
    return loaded.VERSION


def policy_key(policy: Path, display: str, overrides: Mapping[str, str] | None, set_file: str | Path | None,
               only_known: bool) -> str | None:
    """The entry name for compiling ``policy`` with these inputs; None when an input cannot be read (the
    loader then reports that itself)."""
    digest = hashlib.sha256(MAGIC + code_fingerprint())
    try:
        parts: list[bytes] = [display.encode("utf-8", "surrogateescape"), Path(policy).read_bytes(),
                              repr(list((overrides or {}).items())).encode("utf-8", "surrogateescape"),
                              b"only_known" if only_known else b""]
        if set_file is not None:
            parts += [str(set_file).encode("utf-8", "surrogateescape"), Path(set_file).read_bytes()]
    except OSError:
        return None
    for part in parts:  # length-prefixed: no two different input lists hash the same bytes
        digest.update(len(part).to_bytes(8, "big") + part)
    return digest.hexdigest()


def load(key: str, *, plan: bool = False) -> CompiledPolicy | None:
    """The compiled policy stored under ``key``, or None (no entry, not ours, corrupt, or no cache).

    ``plan``: its plan entry, the models as :class:`~medins.policy.plan.PlainModel` (for the engine alone)."""
    payload = _read_entry(f"{key}.{'plan' if plan else 'pickle'}", (PLAN_MAGIC if plan else MAGIC) + bytes.fromhex(key))
    if payload is None:
        return None
    from medins.policy.plan import CompiledPolicy

    try:
        compiled = (_PlanUnpickler if plan else _PolicyUnpickler)(io.BytesIO(payload)).load()
    except Exception:  # a payload that hashes right but does not load (a class renamed): a miss, rewritten
        return None
    return compiled if isinstance(compiled, CompiledPolicy) else None


def store(key: str, compiled: CompiledPolicy) -> None:
    """Keep ``compiled`` under ``key``: written whole beside its place, then renamed (readers never see half).

    Anything that goes wrong (no folder, no permission, a full disk, something that does not pickle) leaves
    the cache as it was."""
    folder = cache_dir()
    if folder is None:
        return
    for magic, suffix, dump in ((MAGIC, "pickle", _dump), (PLAN_MAGIC, "plan", _dump_plan)):
        _write(folder, key, magic, suffix, dump, compiled)


def plan_of(compiled: CompiledPolicy) -> CompiledPolicy:
    """``compiled`` as a plan entry holds it, every schema model as its fields (``compiled`` itself when it is
    one already, or when it does not pickle as a plan: a policy built by hand).

    Why: a process handed a policy (``medins batch --jobs N``'s workers) imports whatever its pickle names; the
    plan names no schema class, so a worker settles without importing pydantic and the schema models, whichever
    form the caller loaded. The engine reads the models' fields only, so both settle the same
    (``tests/test_plan_cache.py``).
    """
    from medins.policy.plan import PlainModel

    if isinstance(compiled.model, PlainModel):
        return compiled
    try:
        return _PlanUnpickler(io.BytesIO(_dump_plan(compiled))).load()
    except Exception:  # not a compiled policy of schema models: handed over as it is
        return compiled


def _dump(compiled: CompiledPolicy) -> bytes:
    return pickle.dumps(compiled, protocol=pickle.HIGHEST_PROTOCOL)


def _dump_plan(compiled: CompiledPolicy) -> bytes:
    """``compiled`` pickled with every schema model as its fields (:func:`medins.policy.plan.plain_model`)."""
    out = io.BytesIO()
    _PlanPickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(compiled)
    return out.getvalue()


def _write(folder: Path, key: str, magic: bytes, suffix: str, dump, compiled: object) -> None:
    """One entry, written whole beside its place, then renamed; nothing on any failure. ``magic``: the header
    before the payload's digest (for a policy's entries, followed by the key's bytes)."""
    tmp = None
    try:
        payload = dump(compiled)
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{key}.", suffix=".tmp")  # 0600: the owner's alone
        header = magic if suffix == "table" else magic + bytes.fromhex(key)
        with os.fdopen(fd, "wb") as out:
            out.write(header + hashlib.sha256(payload).digest() + payload)
        os.replace(tmp, folder / f"{key}.{suffix}")
        tmp = None
    except Exception:  # an optimisation must not fail the command
        pass
    finally:
        if tmp is not None:
            with suppress(OSError):
                os.unlink(tmp)


#: First line of a table entry (``NAME-KEY.table``: a table of numbers the engine derives from a library's data).
TABLE_MAGIC = b"medins-table 1\n"


def load_table(name: str, key: bytes) -> bytes | None:
    """The payload stored by :func:`store_table` under ``name`` and ``key`` (32 bytes), or None (no entry, not ours,
    corrupt, or no cache): the same rules as a compiled policy's entry, and a table is only bytes (never unpickled)."""
    return _read_entry(f"{name}-{key.hex()}.table", TABLE_MAGIC + key)


def _read_entry(filename: str, header: bytes) -> bytes | None:
    """The payload of the cache entry ``filename`` if it is ours (:func:`_read_own_file`), starts with ``header`` and
    its payload hashes to the digest after the header; else None (a miss)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        data = _read_own_file(folder / filename)
    except OSError:
        return None
    if data is None or not data.startswith(header):
        return None
    digest, payload = data[len(header):len(header) + 32], data[len(header) + 32:]
    return payload if hashlib.sha256(payload).digest() == digest else None


def store_table(name: str, key: bytes, payload: bytes) -> None:
    """Keep ``payload`` under ``name`` and ``key`` for :func:`load_table` (written whole, then renamed; nothing on any
    failure)."""
    folder = cache_dir()
    if folder is not None:
        _write(folder, f"{name}-{key.hex()}", TABLE_MAGIC + key, "table", lambda data: data, payload)


def _read_own_file(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file of this user that nobody else may write, else None."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        if hasattr(os, "geteuid") and (info.st_uid != os.geteuid() or info.st_mode & 0o022):
            return None
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read()
    finally:
        os.close(fd)


class _PolicyUnpickler(pickle.Unpickler):
    """An unpickler that can name only the classes of a compiled policy (see the module's docstring)."""

    def find_class(self, module: str, name: str) -> type:
        if name in ALLOWED.get(module, ()):
            return super().find_class(module, name)
        if module == "medins.policy.schema":
            from medins.policy import schema

            found = getattr(schema, name, None)
            if isinstance(found, type) and issubclass(found, schema.Model):
                return found
        raise pickle.UnpicklingError(f"a compiled-policy cache entry may not name {module}.{name}")


class _PlanPickler(pickle.Pickler):
    """Pickles a schema model as :func:`~medins.policy.plan.plain_model` of its class name and fields."""

    def reducer_override(self, obj: object) -> object:
        from pydantic import BaseModel  # writing follows a compile: pydantic is loaded already

        if isinstance(obj, BaseModel):
            from medins.policy.plan import plain_model

            return plain_model, (type(obj).__name__, {name: getattr(obj, name) for name in type(obj).model_fields})
        return NotImplemented


class _PlanUnpickler(pickle.Unpickler):
    """An unpickler for plan entries: the compiled policy's classes and the plain model, no schema class."""

    def find_class(self, module: str, name: str) -> type:
        if name in PLAN_ALLOWED.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a compiled-plan cache entry may not name {module}.{name}")
