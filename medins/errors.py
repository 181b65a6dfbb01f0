"""User-facing errors of medins.

Why: a policy file is reviewed like code, so a mistake in it must read like a compiler error —
``file:line:col``, the key path, what was found, what is allowed and a hint — in both Chinese and
English, and all mistakes of a file at once. Every error a user can cause derives from
:class:`MedinsError`; the command line catches that base, renders it (``medins.report.errors``)
and exits with ``exit_code`` instead of printing a traceback.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Literal

Lang = Literal["zh", "en"]

_PLAIN_KEY = re.compile(r"^[^\s.\[\]\"']+$")


def format_key_path(path: Iterable[str | int]) -> str:
    """``("rules", 1, "bands", 0, "rate")`` → ``"rules[1].bands[0].rate"``.

    Keys that would make the path ambiguous (dots, brackets, blanks, empty) are written ``["a.b"]``.
    """
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        part = str(part)
        if _PLAIN_KEY.match(part):
            out += f".{part}" if out else part
        else:
            out += '["' + part.replace('"', '\\"') + '"]'
    return out


def show(value: object, limit: int = 60) -> str:
    """Repr-like text of an input as written (``'0.55x'``, ``null``, ``true``), cut at ``limit``."""
    if value is None or isinstance(value, bool):
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, int | float | Decimal):
        text = str(value)
    else:
        text = repr(value.value if isinstance(value, Enum) else value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


#: How alike (difflib's ratio, case ignored) a name must be to a known one before a "did you mean" offers it.
#: Why this high: a hint must be right when given — ``totl`` → ``total`` (0.89), ``hosptal`` → ``hospital``
#: (0.93) are; ``deposit`` → ``hospital`` (0.53) or ``--explian`` → ``--lang`` is not, and is worse than none.
CLOSE_ENOUGH = 0.75


def close_names(word: str, choices: Iterable[str], n: int = 1) -> list[str]:
    """The up to ``n`` names of ``choices`` closest to ``word`` (ignoring case) at ``CLOSE_ENOUGH`` or above.

    The one rule for every did-you-mean of medins: bill and policy keys, codes, parameters, policies, names.
    A word of 3 or more letters that begins exactly one choice is close too (``hifp`` → ``hifp_pay``)."""
    lowered: dict[str, str] = {}
    for choice in choices:
        lowered.setdefault(str(choice).lower(), str(choice))
    key = str(word).lower()
    found = difflib.get_close_matches(key, list(lowered), n=n, cutoff=CLOSE_ENOUGH)
    if not found and len(key) >= 3:
        begun = [c for c in lowered if c.startswith(key)]
        found = begun if len(begun) == 1 else []
    return [lowered[m] for m in found]


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The closest of ``choices`` to ``word`` (ignoring case), or None if nothing is close."""
    found = close_names(word, choices)
    return found[0] if found else None


def unencodable_path(doc: object) -> tuple | None:
    """The key path of a string (key or value) in ``doc`` that UTF-8 cannot encode — a lone surrogate such as
    ``"\\ud800"``, which JSON and YAML escapes can produce but no output can print — or None.

    Iterative, so a document nested as deep as its parser allowed is walked without recursion.
    """
    stack: list[tuple[object, tuple]] = [(doc, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, str):
            if not _encodes(node):
                return path
        elif isinstance(node, dict):
            for key, value in node.items():
                if isinstance(key, str) and not _encodes(key):
                    return (*path, key.encode("utf-8", "replace").decode())
                stack.append((value, (*path, key)))
        elif isinstance(node, list):
            stack.extend((value, (*path, i)) for i, value in enumerate(node))
    return None


def _encodes(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _restore(cls: type, args: tuple, state: dict) -> Exception:
    error = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class MedinsError(Exception):
    """Base of every error caused by the user's input or command line (not by a bug in medins)."""

    exit_code: int = 1

    def __reduce__(self):
        """Pickle by state, so an error raised in a batch worker process reaches the command line whole."""
        return (_restore, (type(self), self.args, self.__dict__))


class _MessageError(MedinsError):
    """An error that is one bilingual message with an optional hint (not a list of issues)."""

    exit_code = 2

    def __init__(
        self,
        message_en: str,
        message_zh: str,
        hint_en: str | None = None,
        hint_zh: str | None = None,
    ) -> None:
        super().__init__(message_en)
        self.message_en = message_en
        self.message_zh = message_zh
        self.hint_en = hint_en
        self.hint_zh = hint_zh

    def message(self, lang: Lang) -> str:
        return self.message_zh if lang == "zh" else self.message_en

    def hint(self, lang: Lang) -> str | None:
        return self.hint_zh if lang == "zh" else self.hint_en

    def __str__(self) -> str:
        return self.message_en


class UsageError(_MessageError):
    """The command line itself is wrong (unknown option value, missing file, conflicting flags)."""


class InputError(_MessageError):
    """A bill or claims file is unusable as a whole (wrong encoding, no header, missing column).

    Per-row problems of a bill are reported by the settlement itself; this is for files that
    cannot be read at all.
    """

    def __init__(
        self,
        message_en: str,
        message_zh: str,
        hint_en: str | None = None,
        hint_zh: str | None = None,
        file: str | None = None,
        key_path: str | None = None,
    ) -> None:
        super().__init__(message_en, message_zh, hint_en=hint_en, hint_zh=hint_zh)
        self.file = file
        self.key_path = key_path

    def __str__(self) -> str:
        prefix = "".join(f"{part}: " for part in (self.file, self.key_path) if part)
        return prefix + self.message_en


class UnreadableCsvError(InputError):
    """The csv module gave up on a record of a CSV (most often a field whose opening quote is never closed, which
    takes in every line after it until the field is too large): ``row`` is the record's data-row number, as in
    the rejects file (the header is row 0).

    Why a type of its own: a large file's pieces are parsed before the rows of the pieces before them are known,
    each numbering its rows from 1; the piece's collector renumbers the error (:meth:`after`).
    """

    def __init__(self, row: int, reason: str, file: str | None = None) -> None:
        super().__init__(
            message_en=f"cannot read the CSV from row {row} on: {reason}",
            message_zh=f"无法读取 CSV 文件第 {row} 行起的内容：{reason}",
            hint_en=f'check the quotes of row {row}: a field whose opening quote (") is never closed takes in every '
                    "line after it",
            hint_zh=f"请检查第 {row} 行的引号：左引号（\"）未闭合的字段会吞掉其后的所有行",
            file=file)
        self.row, self.reason = row, reason

    def after(self, offset: int, file: str | None = None) -> UnreadableCsvError:
        """The same error in a file whose records before this piece's are ``offset``."""
        return UnreadableCsvError(self.row + offset, self.reason, file or self.file)


class OutputError(_MessageError):
    """The outputs of a run could not be written (disk full, no permission, a folder in the way).

    Raised with nothing replaced: the files of an earlier run stay as they were and the run's
    temporaries are removed (``medins.atomic``).
    """


class OutputLocked(OutputError):
    """Another run is writing the same output (``medins.runlock``); ``pid`` names it when known."""

    def __init__(self, message_en: str, message_zh: str, hint_en: str | None = None, hint_zh: str | None = None,
                 pid: int | None = None) -> None:
        super().__init__(message_en, message_zh, hint_en=hint_en, hint_zh=hint_zh)
        self.pid = pid


@dataclass(frozen=True, kw_only=True)
class PolicyIssue:
    """One problem in a policy (or other YAML) file, located and explained in both languages.

    ``line``/``column`` are 1-based; ``key_path`` is dotted with list indices as ``[2]`` ("" for
    the document itself); ``found`` is a repr-like rendering of the offending input and
    ``allowed`` what would have been accepted; ``code`` is a stable machine-readable kind
    (``unknown_key``, ``duplicate_key``, ``yaml_syntax``, ``missing_key``, ``bad_number`` …).
    """

    file: str
    line: int | None
    column: int | None
    key_path: str
    found: str | None = None
    allowed: str | None = None
    message_en: str
    message_zh: str
    hint_en: str | None = None
    hint_zh: str | None = None
    code: str

    def location(self) -> str:
        """``file:line:col``, leaving out the parts that are unknown."""
        parts = [self.file]
        if self.line is not None:
            parts.append(str(self.line))
            if self.column is not None:
                parts.append(str(self.column))
        return ":".join(parts)

    def message(self, lang: Lang) -> str:
        return self.message_zh if lang == "zh" else self.message_en

    def hint(self, lang: Lang) -> str | None:
        return self.hint_zh if lang == "zh" else self.hint_en

    def format(self, lang: Lang = "en") -> str:
        """One line: ``file:line:col: key_path: message (found …; allowed …) Hint: …``."""
        zh = lang == "zh"
        text = f"{self.location()}: "
        if self.key_path:
            text += f"{self.key_path}: "
        text += self.message(lang)
        details = []
        if self.found is not None:
            details.append(("实际 " if zh else "found ") + self.found)
        if self.allowed is not None:
            details.append(("允许 " if zh else "allowed ") + self.allowed)
        if details:
            text += ("（" + "；".join(details) + "）") if zh else (" (" + "; ".join(details) + ")")
        hint = self.hint(lang)
        if hint:
            text += (" 提示：" if zh else " Hint: ") + hint
        return text

    def __str__(self) -> str:
        return self.format("en")


class PolicyError(MedinsError):
    """A policy file has one or more problems; ``issues`` holds all of them, in file order."""

    exit_code = 2

    def __init__(self, issues: Sequence[PolicyIssue]) -> None:
        self.issues: list[PolicyIssue] = list(issues)
        super().__init__(str(self))

    def format(self, lang: Lang = "en") -> str:
        return "\n".join(issue.format(lang) for issue in self.issues)

    def __str__(self) -> str:
        return self.format("en")
